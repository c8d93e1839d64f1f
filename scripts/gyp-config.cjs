#!/usr/bin/env node
// Answers binding.gyp's build-time questions, so the gyp file stays declarative:
//   node scripts/gyp-config.cjs sources <key>      the sources.json list, space-separated
//   node scripts/gyp-config.cjs cuda               the CUDA toolkit root, or "" (cpu variant)
//   node scripts/gyp-config.cjs trt-include <M>    TensorRT <M> include folder, or ""
//   node scripts/gyp-config.cjs provider <M>       1 when the TensorRT <M> provider can be built, else 0
//   node scripts/gyp-config.cjs uv-include         Node's include folder where it holds uv.h (the doorbell), or ""
// CUDA: TENSORRT_NODE_CUDA=0 forces the cpu variant; CUDA_PATH, CUDA_HOME or /usr/local/cuda.
// TensorRT: TENSORRT_INCLUDE_DIR_<M>, TENSORRT_ROOT_<M>, or TENSORRT_INCLUDE_DIR / TENSORRT_ROOT
// told apart by NvInferVersion.h (the same settings CMakeLists.txt reads).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const env = process.env;

function sources(key) {
  const list = JSON.parse(fs.readFileSync(path.join(root, 'native/sources.json'), 'utf8'))[key] ?? [];
  return list.join(' ');
}

function cudaRoot() {
  if (env.TENSORRT_NODE_CUDA === '0') return '';
  for (const dir of [env.CUDA_PATH, env.CUDA_HOME, '/usr/local/cuda']) {
    if (dir && fs.existsSync(path.join(dir, 'include/cuda_runtime_api.h')) &&
        fs.existsSync(path.join(dir, 'lib64/libcudart_static.a'))) {
      return dir;
    }
  }
  return '';
}

function headerMajor(inc) {
  try {
    const text = fs.readFileSync(path.join(inc, 'NvInferVersion.h'), 'utf8');
    const m = /#define\s+(?:NV_TENSORRT_MAJOR|TRT_MAJOR_ENTERPRISE)\s+(\d+)/.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function trtInclude(major) {
  for (const suffix of ['', '_10', '_11']) {
    const inc = env[`TENSORRT_INCLUDE_DIR${suffix}`] ||
      (env[`TENSORRT_ROOT${suffix}`] ? path.join(env[`TENSORRT_ROOT${suffix}`], 'include') : '');
    if (!inc) continue;
    if (suffix === `_${major}` || (suffix === '' && headerMajor(inc) === major)) {
      if (headerMajor(inc) === major) return inc;
    }
  }
  return '';
}

function uvInclude() {
  const dir = path.resolve(process.execPath, '../../include/node');
  return fs.existsSync(path.join(dir, 'uv.h')) ? dir : '';
}

const [what, arg] = process.argv.slice(2);
switch (what) {
  case 'sources': process.stdout.write(sources(arg)); break;
  case 'cuda': process.stdout.write(cudaRoot()); break;
  case 'uv-include': process.stdout.write(uvInclude()); break;
  case 'trt-include': process.stdout.write(trtInclude(Number(arg))); break;
  case 'provider':
    process.stdout.write(sources('provider') && trtInclude(Number(arg)) && cudaRoot() ? '1' : '0');
    break;
  default:
    process.stderr.write(`gyp-config: unknown question ${what}\n`);
    process.exit(2);
}
