// Builds the addons the tests load (build/, build-cpu/, build-gyp/) when missing or
// stale, once per vitest run, so `npx vitest` works on a fresh clone too.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
  const r = spawnSync(process.execPath, [join(root, 'scripts/ensure-native.mjs'), '--all'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('building the native addon failed (node scripts/ensure-native.mjs --all)');
}
