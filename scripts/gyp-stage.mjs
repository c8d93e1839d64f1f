// A staging folder for node-gyp runs (build:gyp, prebuild). node-gyp always builds
// into <cwd>/build, which is where cmake-js's local build lives; building from a
// staging folder that links to the real sources leaves build/ untouched, so a
// gyp build never hides the addon from tests running at the same time.
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));

export function stage(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(root, 'binding.gyp'), join(dir, 'binding.gyp'));
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const link of ['native', 'scripts', 'node_modules']) symlinkSync(join(root, link), join(dir, link));
  return dir;
}

/** node-gyp's own binary, and the environment that points it at Node's headers without a download. */
export function nodeGyp() {
  const require = createRequire(import.meta.url);
  const bin = join(dirname(require.resolve('node-gyp/package.json')), 'bin/node-gyp.js');
  const env = { ...process.env };
  if (!env.npm_config_nodedir) {
    // Without headers at hand node-gyp downloads them. The running Node's own come first (the
    // official, distribution and nvm installs carry <prefix>/include/node), then npm's nodedir
    // where configured: npm 12 warns that its next major will no longer read that setting.
    const own = dirname(dirname(process.execPath));
    if (existsSync(join(own, 'include/node/node_api.h'))) {
      env.npm_config_nodedir = own;
    } else {
      const r = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' });
      const dir = r.status === 0 ? r.stdout.trim() : '';
      if (dir && dir !== 'undefined' && existsSync(join(dir, 'include/node/node_api.h'))) env.npm_config_nodedir = dir;
    }
  }
  return { bin, env };
}

export function run(cmd, args, options) {
  process.stderr.write(`> ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.status !== 0) {
    process.stderr.write(`failed: ${cmd} ${args.join(' ')} (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}
