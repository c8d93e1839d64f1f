#!/usr/bin/env node
// Makes sure the local addon builds exist and are newer than native/ sources, so
// `npm test` works right after `npm ci` on a fresh clone. Builds only what is
// missing or stale (cmake-js builds incrementally).
//
//   node scripts/ensure-native.mjs            build/ (cmake-js, CUDA where found)
//   node scripts/ensure-native.mjs --all      also build-cpu/ (cpu variant) and build-gyp/ (node-gyp)
//   node scripts/ensure-native.mjs --if-git   (npm prepare) only in a git checkout, never in an installed package
// TENSORRT_NODE_SKIP_BUILD=1 skips everything.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = new Set(process.argv.slice(2));

if (process.env.TENSORRT_NODE_SKIP_BUILD === '1') process.exit(0);
if (args.has('--if-git') && !existsSync(join(root, '.git'))) process.exit(0);

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
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`tensorrt-node: building the native addon failed (${cmd} ${argv.join(' ')})\n`);
    process.exit(r.status ?? 1);
  }
}

const sources = newestSource();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
if (!fresh(join(root, 'build/Release/tensorrt_node.node'), sources)) run(npm, ['run', 'build:native']);
if (args.has('--all')) {
  if (!fresh(join(root, 'build-cpu/Release/tensorrt_node.node'), sources)) run(npm, ['run', 'build:native:cpu']);
  if (!fresh(join(root, 'build-gyp/Release/tensorrt_node.node'), sources)) run(npm, ['run', 'build:gyp']);
}
