#!/usr/bin/env node
// Makes sure the local addon builds exist and are newer than native/ sources, so
// `npm test` and `npm run bench` work right after `npm ci` on a fresh clone. Builds only
// what is missing or stale (cmake-js builds incrementally). Not an npm lifecycle script:
// npm lists `prepare` among a package's install scripts, and this package has none.
//
//   node scripts/ensure-native.mjs            build/ (cmake-js, CUDA where found)
//   node scripts/ensure-native.mjs --all      also build-cpu/ (cpu variant) and build-gyp/ (node-gyp),
//                                            which the addon tests run against
// TENSORRT_NODE_SKIP_BUILD=1 skips everything.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = new Set(process.argv.slice(2));

if (process.env.TENSORRT_NODE_SKIP_BUILD === '1') process.exit(0);

function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(root, 'native'));
  for (const f of ['CMakeLists.txt', 'binding.gyp']) {
    if (existsSync(join(root, f))) newest = Math.max(newest, statSync(join(root, f)).mtimeMs);
  }
  return newest;
}

function fresh(file, sources) {
  return existsSync(file) && statSync(file).mtimeMs >= sources;
}

function run(cmd, argv) {
  process.stderr.write(`tensorrt-node: ${cmd} ${argv.join(' ')}\n`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`tensorrt-node: building the native addon failed (${cmd} ${argv.join(' ')})\n`);
    unlock();
    process.exit(r.status ?? 1);
  }
}

// Several test runs may start at once: one builds, the others wait for it.
const lockDir = join(tmpdir(), `tensorrt-node-ensure-${createHash('sha1').update(root).digest('hex').slice(0, 12)}.lock`);
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
function lock() {
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      return;
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
      } catch {
        owner = 0;
      }
      if (owner && !alive(owner)) rmSync(lockDir, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}
function unlock() {
  rmSync(lockDir, { recursive: true, force: true });
}

// Builds `file` with `npm run <script>` when missing or older than the sources, then
// marks it fresh (a no-op incremental build leaves the old mtime).
function ensure(file, script) {
  if (fresh(file, sources)) return;
  run(npm, ['run', script]);
  const now = new Date();
  utimesSync(file, now, now);
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let sources = newestSource();
const wanted = [['build/Release/tensorrt_node.node', 'build:native']];
if (args.has('--all')) {
  wanted.push(['build-cpu/Release/tensorrt_node.node', 'build:native:cpu']);
  wanted.push(['build-gyp/Release/tensorrt_node.node', 'build:gyp']);
}
if (wanted.some(([f]) => !fresh(join(root, f), sources))) {
  lock();
  try {
    sources = newestSource();
    for (const [f, script] of wanted) ensure(join(root, f), script);
  } finally {
    unlock();
  }
}
