#!/usr/bin/env node
// `npm run prebuild`: fills prebuilds/<platform>-<arch>/ with one binary per variant,
// built by prebuildify (node-gyp, binding.gyp) from a staging folder:
//   tensorrt_node.cpu.napi.glibc.node       always
//   tensorrt_node.cuda13.napi.glibc.node    where a CUDA 13 toolkit is found
//   tensorrt_node.cuda12.napi.glibc.node    where a CUDA 12 toolkit is found
// Toolkits: CUDA_PATH, /usr/local/cuda, /usr/local/cuda-<major>.<minor>, and runtime-only
// roots that scripts/fetch-cudart.mjs puts in .cache/cudart-<major>. The variant
// is a file-name tag that src/native/candidates.ts reads (node-gyp-build ignores it).
// TensorRT providers built alongside (TENSORRT_ROOT_10/11, see README) land beside them.
//
//   node scripts/prebuild.mjs --arch=arm64   on an x64 machine: the cpu variant for linux-arm64,
//                                            cross-compiled by aarch64-linux-gnu-g++ (this
//                                            machine's CUDA toolkits are x64's, so no cuda variant)
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { nodeGyp, root, run, stage } from './gyp-stage.mjs';

function toolkitMajor(dir) {
  try {
    const text = readFileSync(join(dir, 'include/cuda_runtime_api.h'), 'utf8');
    const m = /#define\s+CUDART_VERSION\s+(\d+)/.exec(text);
    return m && existsSync(join(dir, 'lib64/libcudart_static.a')) ? Math.floor(Number(m[1]) / 1000) : 0;
  } catch {
    return 0;
  }
}

const arch = process.argv.find((a) => a.startsWith('--arch='))?.slice('--arch='.length) || process.arch;
const cross = arch !== process.arch;
if (cross && !(process.arch === 'x64' && arch === 'arm64')) {
  process.stderr.write(`prebuild: cross-compiles from x64 to arm64 only, not from ${process.arch} to ${arch}\n`);
  process.exit(2);
}
const crossEnv = cross
  ? { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar', LINK: 'aarch64-linux-gnu-g++', PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip' }
  : {};

const toolkits = new Map(); // major -> root
const dirs = [process.env.CUDA_PATH, '/usr/local/cuda'];
try {
  for (const d of readdirSync('/usr/local').sort().reverse()) if (/^cuda-\d+\.\d+$/.test(d)) dirs.push(join('/usr/local', d));
} catch {
  // no /usr/local
}
try {
  for (const d of readdirSync(join(root, '.cache')).sort()) if (/^cudart-\d+$/.test(d)) dirs.push(join(root, '.cache', d));
} catch {
  // nothing fetched
}
for (const dir of cross ? [] : dirs) {
  const major = dir ? toolkitMajor(dir) : 0;
  if (major >= 12 && !toolkits.has(major)) toolkits.set(major, dir);
}

const require = createRequire(import.meta.url);
const prebuildify = join(require.resolve('prebuildify/package.json'), '../bin.js');
const { bin: nodeGypBin, env: baseEnv } = nodeGyp();
const staging = join(root, 'build-gyp', `prebuild-stage-${process.pid}`);

if (!toolkits.has(12) && !cross) {
  process.stderr.write('prebuild: no CUDA 12 runtime found: no cuda12 variant (drivers older than 580 need it); `npm run fetch:cudart` brings one\n');
}
const variants = [['cpu', { TENSORRT_NODE_CUDA: '0' }]];
for (const [major, dir] of toolkits) variants.push([`cuda${major}`, { CUDA_PATH: dir, TENSORRT_NODE_CUDA: '1' }]);

for (const [variant, extra] of variants) {
  stage(staging);
  run(
    process.execPath,
    [prebuildify, '--napi', `--target=node@${process.versions.node}`, `--arch=${arch}`, '--strip', '--tag-libc', `--name=tensorrt_node.${variant}`, `--cwd=${staging}`, `--out=${root}`],
    { env: { ...baseEnv, ...crossEnv, ...extra, PREBUILD_NODE_GYP: nodeGypBin } },
  );
}
rmSync(staging, { recursive: true, force: true });
const dir = join(root, 'prebuilds', `${process.platform}-${arch}`);
process.stderr.write(`prebuilds: ${readdirSync(dir).join(', ')}\n`);
