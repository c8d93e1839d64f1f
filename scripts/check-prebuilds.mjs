#!/usr/bin/env node
// Checks the prebuilt binaries (CI; scripts/prebuild-portable.sh).
//
//   node scripts/check-prebuilds.mjs --abi    what each binary in prebuilds/linux-*/ asks of the
//                                             system's C and C++ libraries (readelf, which reads
//                                             every architecture): no libstdc++ at all, and glibc
//                                             symbol versions no newer than GLIBC_FLOOR
//   node scripts/check-prebuilds.mjs --load   each addon variant in prebuilds/<platform>-<arch>/ of
//                                             the Node that runs it loads (TENSORRT_NODE_ADDON_PATH),
//                                             says what it is, has its doorbell, and an engine on
//                                             the classifier the package uses equals onnxruntime-node
//                                             bit for bit; run on this machine and inside Debian 11,
//                                             there also by an arm64 Node under qemu
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const prebuilds = join(root, 'prebuilds');
const dir = join(prebuilds, `${process.platform}-${process.arch}`);
// onnxruntime-node's own floor (its libonnxruntime.so asks for GLIBC_2.28): where it runs, the addon must load.
const GLIBC_FLOOR = [2, 28];
const mode = process.argv[2];

const binaries = (d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.node') || f.endsWith('.so')).sort() : []);
const files = binaries(dir);
if (files.length === 0) {
  console.error(`check-prebuilds: no binaries in ${dir} (npm run prebuild, or prebuild:portable)`);
  process.exit(1);
}

const version = (v) => v.split('.').map(Number);
/** Orders glibc versions: [2, 17] before [2, 28] before [2, 28, 1]. */
const compare = (a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0);

function checkAbi() {
  const problems = [];
  const all = readdirSync(prebuilds)
    .filter((d) => d.startsWith('linux-'))
    .sort()
    .flatMap((d) => binaries(join(prebuilds, d)).map((f) => join(d, f)));
  for (const f of all) {
    const path = join(prebuilds, f);
    // The libraries needed (-d) and the dynamic symbols with their versions (--dyn-syms), in one read.
    const dump = execFileSync('readelf', ['-W', '-d', '--dyn-syms', path], { encoding: 'utf8' });
    const needed = [...dump.matchAll(/\(NEEDED\)\s+Shared library: \[(\S+)\]/g)].map((m) => m[1]);
    const versioned = [...dump.matchAll(/ (\S+?)@@?GLIBC_([0-9.]+)/g)].map((m) => ({ version: version(m[2]), name: `${m[1]}@GLIBC_${m[2]}` }));
    const newest = versioned.map((v) => v.version).sort(compare).at(-1)?.join('.') ?? 'none';
    const tooNew = versioned.filter((v) => compare(v.version, GLIBC_FLOOR) > 0).map((v) => v.name);
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
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { engineEqualsOnnxruntime } from ${JSON.stringify(pathToFileURL(join(root, 'scripts', 'engine-check.mjs')).href)};
const want = process.argv[1];
const tnp = createRequire(${JSON.stringify(join(root, 'package.json'))})('./dist/index.cjs');
const info = tnp.runtimeInfo();
if (!info.addon.loaded || info.addon.variant !== want) throw new Error(want + ' prebuild: ' + JSON.stringify(info.addon));
if (!info.addon.doorbell) throw new Error(want + ' prebuild has no doorbell (uv.h not found at build time)');
const host = tnp.allocHost(1 << 20);
host.fill(7);
if (host.length !== 1 << 20 || host[12345] !== 7) throw new Error(want + ': allocHost gave ' + host.length + ' bytes');
tnp.releaseHost(host);
const { boxResults } = await engineEqualsOnnxruntime({ Engine: tnp.Engine, ort, label: want + ' prebuild', options: { backend: 'onnxruntime' } });
console.log(want + ' prebuild loads (CUDA runtime ' + (info.addon.cudaRuntime ?? 'none') + ', doorbell), allocHost, an engine equal to onnxruntime-node on 4 inputs (' + boxResults + ' through the result box)');
`;

function checkLoad() {
  const problems = [];
  const glibc = process.report.getReport().header.glibcVersionRuntime;
  console.log(`loading on Node ${process.versions.node} (${process.arch}), glibc ${glibc}`);
  for (const f of files) {
    const variant = /^tensorrt_node\.(\w+)\.glibc\.node$/.exec(f)?.[1];
    if (!variant) continue;
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, variant], {
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
