import { spawnSync } from 'node:child_process';
import type { NativeBuildInfo, NativeCudaInfo } from './binding.js';

export type TestLoadResult =
  | { ok: true; build: NativeBuildInfo; cuda: NativeCudaInfo }
  | { ok: false; error: string };

// Loads the addon in a fresh process and reports what it sees, so a binary that
// crashes or misbehaves on this machine never takes the caller down (node-llama-cpp
// does the same before picking a GPU build).
const CHILD = `
const m = { exports: {} };
process.dlopen(m, process.argv[1]);
const b = m.exports;
process.stdout.write(JSON.stringify({ build: b.buildInfo(), cuda: b.cudaInfo() }));
`;

export function testLoad(path: string, timeoutMs = 30_000): TestLoadResult {
  const r = spawnSync(process.execPath, ['-e', CHILD, path], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { ok: false, error: `test-load of ${path} failed: ${r.error.message}` };
  if (r.status !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`;
    const stderr = r.stderr.trim().split('\n').slice(-3).join(' | ');
    return { ok: false, error: `test-load of ${path} ${how}${stderr ? `: ${stderr}` : ''}` };
  }
  try {
    const parsed = JSON.parse(r.stdout) as { build: NativeBuildInfo; cuda: NativeCudaInfo };
    return { ok: true, build: parsed.build, cuda: parsed.cuda };
  } catch {
    return { ok: false, error: `test-load of ${path} printed no report` };
  }
}
