/**
 * INT8 post-training quantization in Node: calibrate with onnxruntime-node, write a
 * Q/DQ model by TensorRT's explicit-quantization rules, validate it against the float
 * model, and keep the most sensitive layers in float where accuracy drops too far.
 */
import { TensorrtNodeError, checkOptionNames, throwIfAborted } from '../errors.js';
import { checkShapes, kindOf } from '../shapes.js';
import { GraphView } from '../onnx/graph.js';
import type { ModelSource } from '../onnx/source.js';
import { readModel, tensorValues, writeModel } from '../onnx/model.js';
import { toNumber, type ModelProto } from '../onnx/proto.js';
import type { Feeds, TypedArray } from '../tensor.js';
import { calibrate } from './calibrate.js';
import { checkFeeds, iterate, modelInputs, type ModelInput, type SampleShapes } from './feeds.js';
import { computeAmax, type CalibrationMethod } from './methods.js';
import type { AbsHistogram } from './histogram.js';
import { planPlacement, type PlacementPlan } from './placement.js';
import { insertQdq, quantizeWeight, type QuantizedTensor } from './qdq.js';
import { cloneModel, constantsToInitializers, foldConstantReshapes, nameNodes, upgradeOpset } from './prepare.js';
import { makeEvaluator, type ValidationMetric, type ValidationSample } from './validate.js';

export type { CalibrationMethod } from './methods.js';
export type { QuantizedTensor } from './qdq.js';
export type { Outputs, ValidationMetric, ValidationSample } from './validate.js';
export { entropyBins, computeAmax, percentileAmax, mseAmax } from './methods.js';
export { AbsHistogram, HISTOGRAM_BINS } from './histogram.js';

type Source<T> = Iterable<T> | AsyncIterable<T>;

export interface QuantizeProgress {
  phase: 'calibration' | 'validation' | 'sensitivity' | 'fallback' | 'warning' | 'done';
  /** Samples (or steps) done in this phase. */
  done: number;
  /** Known total for this phase, when the data source has a length. */
  total?: number;
  message?: string;
}

export interface QuantizeOptions {
  /**
   * Calibration samples: feeds (records of tensors), or bare typed arrays for a model
   * with one fixed-shape input; a single typed array holding N such samples back to back
   * is split into them.
   */
  calibration: Source<Feeds | TypedArray> | TypedArray;
  /** Default 'entropy' (TensorRT's KL-divergence calibration). */
  method?: CalibrationMethod;
  /** For method 'percentile': default 99.99. */
  percentile?: number;
  /** Node names or op types kept in float. */
  exclude?: readonly string[];
  /** Samples per calibration run where the model has a dynamic batch axis (default 16). */
  batchSize?: number;
  /**
   * Dims for bare typed-array samples where the model leaves axes dynamic, as the Engine's
   * `shapes`: per input a shape (-1 on axis 0 for a batch read from the length) or a
   * `{ min, opt, max }` range, whose opt fills the axes beyond the batch.
   */
  shapes?: SampleShapes;
  validation?: {
    data: Source<ValidationSample>;
    /** Default 'top1' when samples carry labels, else 'agreement'. */
    metric?: ValidationMetric;
    /** Samples used to rank layers by sensitivity (default 200). */
    sensitivitySamples?: number;
    /**
     * How layers are ranked for the fallback: 'estimate' (default) ranks by the relative
     * quantization error of each layer's inputs, computed from the calibration histograms
     * and the weights, with no extra runs; 'measure' evaluates the metric with each layer
     * alone in float (one model per layer). Measured on PaddleOCR rec: 'estimate' met the
     * budget in 55 s keeping 12 of 51 layers in float, 'measure' took 220 s and kept 29.
     */
    sensitivity?: 'measure' | 'estimate';
  };
  /** Largest allowed metric drop (float − INT8, in the metric's units: 0.003 = 0.3 pt of accuracy). */
  maxAccuracyDrop?: number;
  onProgress?: (event: QuantizeProgress) => void;
  /** Aborts the quantization: it rejects with EABORTED at its next step (a calibration batch, a validation run). */
  signal?: AbortSignal;
}

export interface TensorCalibration {
  name: string;
  amax: number;
  /** Largest |x| seen (the 'max' method's threshold). */
  observedMax: number;
  count: number;
  nonFinite: number;
}

export interface QuantizeReport {
  method: CalibrationMethod;
  percentile?: number;
  opset: { from: number; to: number };
  /** Every tensor with Q/DQ: amax and scale (arrays for per-channel weights). */
  tensors: QuantizedTensor[];
  /** Calibrated activation ranges (before Concat groups share their largest). */
  calibration: { samples: number; batches: number; nonFinite: number; tensors: TensorCalibration[] };
  quantizedNodes: string[];
  keptInFloat: { node: string; opType: string; reason: string }[];
  /** Residual Adds whose skip input got Q/DQ. */
  residualAdds: string[];
  validation?: {
    samples: number;
    metric: string;
    float: number;
    int8: number;
    drop: number;
    maxAccuracyDrop?: number;
    withinBudget: boolean;
    /**
     * Layers ranked by sensitivity, most sensitive first: with 'measure', the metric when
     * each alone stays in float; with 'estimate', the relative quantization error of its inputs.
     */
    sensitivity?: { node: string; metric?: number; error?: number }[];
    message?: string;
  };
  warnings: string[];
  timeMs: { total: number; calibration: number; validation: number };
}

export interface QuantizeResult {
  model: Uint8Array;
  report: QuantizeReport;
}

const METHODS: readonly CalibrationMethod[] = ['entropy', 'max', 'percentile', 'mse'];

function* splitSamples(data: TypedArray, input: ModelInput): Generator<TypedArray> {
  if (input.shape.some((d) => d < 0)) {
    throw new TensorrtNodeError('EINPUT', `calibration: a bare typed array needs a fixed input shape; '${input.name}' has dynamic axes`, { tensor: input.name });
  }
  const size = input.shape.reduce((a, d) => a * d, 1);
  if (size === 0 || data.length % size !== 0) {
    throw new TensorrtNodeError('EINPUT', `calibration input '${input.name}': ${data.length} values is not a whole number of samples of ${size}`, { tensor: input.name, expected: `a multiple of ${size} values`, received: `${data.length}` });
  }
  for (let o = 0; o < data.length; o += size) yield data.subarray(o, o + size) as TypedArray;
}

/** Every option quantize() reads: a key it does not know (a typo) is refused rather than ignored. */
const QUANTIZE_OPTION_NAMES: readonly string[] = Object.keys({
  calibration: true, method: true, percentile: true, exclude: true, batchSize: true, shapes: true,
  validation: true, maxAccuracyDrop: true, onProgress: true, signal: true,
} satisfies Record<keyof QuantizeOptions, true>);

const VALIDATION_OPTION_NAMES: readonly string[] = Object.keys({
  data: true, metric: true, sensitivitySamples: true, sensitivity: true,
} satisfies Record<keyof NonNullable<QuantizeOptions['validation']>, true>);

/** Each name in `exclude` must be a node or an op type of the model: a typo would keep nothing in float, silently. */
function checkExcluded(view: GraphView, excluded: ReadonlySet<string>): void {
  const names = new Set(view.nodes.flatMap((n) => [n.name ?? '', n.opType ?? '']));
  for (const x of excluded) {
    if (names.has(x)) continue;
    throw new TensorrtNodeError('EINPUT', `quantize: exclude names '${x}', which is neither a node nor an op type of the model (the report's quantizedNodes lists the node names)`, { tensor: 'exclude', expected: 'node names or op types of the model', received: `'${x}'` });
  }
}

/** Quantize a float ONNX model to INT8 Q/DQ. */
export async function quantize(model: ModelSource, options: QuantizeOptions): Promise<QuantizeResult> {
  const started = performance.now();
  if (options && typeof options === 'object') checkOptionNames(options, QUANTIZE_OPTION_NAMES, 'quantize');
  if (options?.validation && typeof options.validation === 'object') checkOptionNames(options.validation, VALIDATION_OPTION_NAMES, "quantize's validation");
  if (!options || typeof options !== 'object' || options.calibration === undefined || options.calibration === null) {
    throw new TensorrtNodeError('ECALIBRATION', 'quantize: options.calibration is required');
  }
  const method = options.method ?? 'entropy';
  if (!METHODS.includes(method)) throw new TensorrtNodeError('EINPUT', `quantize: unknown method '${String(method)}'`, { tensor: 'method', expected: METHODS.join(' | '), received: String(method) });
  const percentile = options.percentile ?? 99.99;
  if (method === 'percentile' && !(percentile > 0 && percentile <= 100)) {
    throw new TensorrtNodeError('EINPUT', `quantize: percentile must be in (0, 100], got ${percentile}`, { tensor: 'percentile', expected: '(0, 100]', received: String(percentile) });
  }
  if (options.maxAccuracyDrop !== undefined && !(options.maxAccuracyDrop >= 0)) {
    throw new TensorrtNodeError('EINPUT', `quantize: maxAccuracyDrop must be a number ≥ 0, got ${options.maxAccuracyDrop}`, { tensor: 'maxAccuracyDrop', expected: '≥ 0', received: String(options.maxAccuracyDrop) });
  }
  if (options.maxAccuracyDrop !== undefined && !options.validation) {
    // Without validation data the budget could not be checked: it would be ignored.
    throw new TensorrtNodeError('EINPUT', 'quantize: maxAccuracyDrop needs validation data (validation: { data, metric })', { tensor: 'maxAccuracyDrop', expected: 'validation data to measure the drop on', received: 'no validation' });
  }
  if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize >= 1)) {
    throw new TensorrtNodeError('EINPUT', `quantize: batchSize must be a positive integer, got ${options.batchSize}`, { tensor: 'batchSize', expected: 'a positive integer', received: String(options.batchSize) });
  }
  if (options.exclude !== undefined && !(Array.isArray(options.exclude) && options.exclude.every((x) => typeof x === 'string'))) {
    throw new TensorrtNodeError('EINPUT', 'quantize: exclude must be an array of node names or op types', { tensor: 'exclude', expected: 'an array of node names or op types', received: kindOf(options.exclude) });
  }
  const signal = options.signal;
  throwIfAborted(signal, 'quantize');
  const onProgress = options.onProgress;
  // Every step reports progress: each is where an abort takes effect.
  const progress = (e: QuantizeProgress): void => {
    throwIfAborted(signal, 'quantize');
    onProgress?.(e);
  };
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    progress({ phase: 'warning', done: 0, message });
  };

  const prepared = await prepareModel(model);
  const opset = upgradeOpset(prepared);
  const view = GraphView.of(prepared);
  const inputs = modelInputs(view);
  checkShapes(inputs, options.shapes);
  const excluded = new Set(options.exclude ?? []);
  checkExcluded(view, excluded);
  const plan = planPlacement(view, excluded);
  if (plan.nodes.length === 0) warn('no Conv, ConvTranspose, Gemm or MatMul node to quantize: the model is returned with no Q/DQ');

  // Calibration
  const calStart = performance.now();
  let data: Source<unknown>;
  let total: number | undefined;
  if (ArrayBuffer.isView(options.calibration)) {
    if (inputs.length !== 1) throw new TensorrtNodeError('EINPUT', 'calibration: a bare typed array only fits a model with one input', { tensor: '(calibration)' });
    const size = inputs[0]!.shape.reduce((a, d) => a * Math.max(d, 0), 1);
    total = size > 0 ? Math.floor(options.calibration.length / size) : undefined;
    data = splitSamples(options.calibration as TypedArray, inputs[0]!);
  } else {
    data = options.calibration;
    total = Array.isArray(data) ? data.length : undefined;
  }
  const stats = await calibrate(prepared, plan.activationTensors, inputs, data, {
    batchSize: options.batchSize ?? 16,
    ...(options.shapes ? { shapes: options.shapes } : {}),
    onBatch: (done) => progress({ phase: 'calibration', done, total }),
  });
  const amax = new Map<string, number>();
  const relativeError = new Map<string, number>();
  const tensorStats: TensorCalibration[] = [];
  let nonFinite = 0;
  for (const [name, h] of stats.histograms) {
    nonFinite += h.nonFinite;
    if (h.nonFinite > 0) warn(`tensor '${name}': ${h.nonFinite} NaN/Inf values in calibration (excluded from its range)`);
    if (h.count === 0) {
      throw new TensorrtNodeError('ECALIBRATION', `tensor '${name}': every calibration value is NaN or Inf (${h.nonFinite}); no range can be computed`, { tensor: name, nonFinite: h.nonFinite });
    }
    const a = computeAmax(h, method, percentile);
    amax.set(name, a);
    relativeError.set(name, histogramRelativeError(h, a));
    tensorStats.push({ name, amax: a, observedMax: h.amax, count: h.count, nonFinite: h.nonFinite });
  }
  // An all-zero range gets a placeholder scale (qdq.ts: 1), under which the values a tensor
  // meets at run time round to whole numbers: said, as zeros where data belonged (an
  // unfilled Float32Array for an input) are the usual cause.
  const zero = [...stats.histograms].filter(([, h]) => h.allZero).map(([name]) => name); // (no finite value at all threw above)
  if (zero.length > 0) {
    const inputNames = new Set(inputs.map((i) => i.name));
    const named = (names: string[]): string => names.slice(0, 5).map((n) => `'${n}'`).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
    const zeroInputs = zero.filter((n) => inputNames.has(n));
    warn(
      `${zero.length === 1 ? 'tensor' : `${zero.length} tensors`} ${named(zero)}: every calibration value was 0, so ${zero.length === 1 ? 'its' : 'their'} INT8 scale is a placeholder (1) and values met at run time round to whole numbers` +
        (zeroInputs.length > 0 ? `; model input ${named(zeroInputs)} got only zeros: check the calibration data` : ''),
    );
  }
  const calibrationMs = performance.now() - calStart;

  let current = plan;
  let result = insertQdq(prepared, current, amax);
  let validation: QuantizeReport['validation'];
  const valStart = performance.now();
  if (options.validation) {
    const outcome = await validateAndFallBack(prepared, view, inputs, excluded, plan, amax, relativeError, options, progress);
    current = outcome.plan;
    result = outcome.result;
    validation = outcome.report;
    if (!validation.withinBudget && validation.message) warn(validation.message);
  }
  const validationMs = options.validation ? performance.now() - valStart : 0;

  const report: QuantizeReport = {
    method,
    ...(method === 'percentile' ? { percentile } : {}),
    opset,
    tensors: result.tensors,
    calibration: { samples: stats.samples, batches: stats.batches, nonFinite, tensors: tensorStats },
    quantizedNodes: current.nodes.map((n) => n.node),
    keptInFloat: current.skipped,
    residualAdds: current.residuals.map((r) => r.node),
    ...(validation ? { validation } : {}),
    warnings,
    timeMs: { total: performance.now() - started, calibration: calibrationMs, validation: validationMs },
  };
  progress({ phase: 'done', done: 1, total: 1 });
  return { model: writeModel(result.model), report };
}

/** Mean squared error of symmetric INT8 fake quantization at `amax`, relative to the mean square, over the histogram. */
function histogramRelativeError(h: AbsHistogram, amax: number): number {
  if (h.allZero || !(amax > 0)) return 0;
  const scale = amax / 127;
  let err = 0;
  let power = 0;
  h.bins.forEach((count, j) => {
    if (count === 0) return;
    const x = (j + 0.5) * h.width;
    const q = Math.min(Math.round(x / scale), 127) * scale;
    err += count * (x - q) ** 2;
    power += count * x * x;
  });
  return power > 0 ? err / power : 0;
}

/** A node's estimated sensitivity: the relative quantization error of its activation and weight inputs. */
function nodeQuantizationError(view: GraphView, p: PlacementPlan['nodes'][number], relativeError: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const a of p.activations) total += relativeError.get(a.tensor) ?? 0;
  for (const w of p.weights) {
    const init = view.initializers.get(w.tensor);
    if (!init) continue;
    const values = tensorValues(init) as Float32Array;
    const dims = (init.dims ?? []).map(toNumber);
    const { q, scales } = quantizeWeight(values, dims, w.axis);
    const inner = w.axis === undefined ? values.length : dims.slice(w.axis + 1).reduce((a, d) => a * d, 1);
    let err = 0;
    let power = 0;
    for (let i = 0; i < values.length; i++) {
      const c = w.axis === undefined ? 0 : Math.floor(i / inner) % dims[w.axis]!;
      err += (values[i]! - q[i]! * scales[c]!) ** 2;
      power += values[i]! ** 2;
    }
    total += power > 0 ? err / power : 0;
  }
  return total;
}

async function prepareModel(model: ModelSource): Promise<ModelProto> {
  const read = await readModel(model);
  const prepared = cloneModel(read);
  nameNodes(prepared);
  constantsToInitializers(prepared);
  foldConstantReshapes(prepared);
  return prepared;
}

async function validateAndFallBack(
  prepared: ModelProto,
  view: GraphView,
  inputs: readonly ModelInput[],
  excluded: ReadonlySet<string>,
  plan: PlacementPlan,
  amax: ReadonlyMap<string, number>,
  relativeError: ReadonlyMap<string, number>,
  options: QuantizeOptions,
  progress: (e: QuantizeProgress) => void,
): Promise<{ plan: PlacementPlan; result: ReturnType<typeof insertQdq>; report: NonNullable<QuantizeReport['validation']> }> {
  const v = options.validation!;
  const samples: ValidationSample[] = [];
  for await (const s of iterate(v.data)) {
    if (!s || typeof s !== 'object' || !('feeds' in s)) {
      throw new TensorrtNodeError('EINPUT', 'validation samples must be { feeds, label?, expected? }', { tensor: '(validation)', expected: '{ feeds, label?, expected? }', received: typeof s });
    }
    samples.push({ ...s, feeds: checkFeeds(s.feeds, inputs, 'validation input', options.shapes) });
  }
  if (samples.length === 0) throw new TensorrtNodeError('EINPUT', 'validation set is empty', { tensor: '(validation)', expected: 'at least one sample', received: '0' });
  const metric: ValidationMetric = v.metric ?? (samples.every((s) => s.label !== undefined || s.expected) ? 'top1' : 'agreement');
  const metricName = typeof metric === 'function' ? metric.name || 'custom' : metric;
  const n = samples.length;
  const evaluator = await makeEvaluator(writeModel(prepared), samples, metric, (done) => progress({ phase: 'validation', done, total: 2 * n }));
  let result = insertQdq(prepared, plan, amax);
  const int8 = await evaluator.evaluate(writeModel(result.model), n, (done) => progress({ phase: 'validation', done: n + done, total: 2 * n }));
  const budget = options.maxAccuracyDrop;
  const base = { samples: n, metric: metricName, float: evaluator.floatMetric, maxAccuracyDrop: budget };
  const drop = evaluator.floatMetric - int8;
  if (budget === undefined || drop <= budget) {
    return { plan, result, report: { ...base, int8, drop, withinBudget: budget === undefined ? true : drop <= budget } };
  }

  const names = plan.nodes.map((p) => p.node);
  let sensitivity: { node: string; metric?: number; error?: number }[];
  if (v.sensitivity !== 'measure') {
    sensitivity = plan.nodes
      .map((p) => ({ node: p.node, error: nodeQuantizationError(view, p, relativeError) }))
      .sort((a, b) => b.error - a.error);
    progress({ phase: 'sensitivity', done: names.length, total: names.length });
  } else {
    // Keep one layer at a time in float and measure on a subset.
    const subset = Math.min(n, v.sensitivitySamples ?? 200);
    const measured: { node: string; metric: number }[] = [];
    for (const [k, name] of names.entries()) {
      const allowed = new Set(names.filter((x) => x !== name));
      const p = planPlacement(view, excluded, allowed);
      const m = await evaluator.evaluate(writeModel(insertQdq(prepared, p, amax).model), subset);
      measured.push({ node: name, metric: m });
      progress({ phase: 'sensitivity', done: k + 1, total: names.length });
    }
    sensitivity = measured.sort((a, b) => b.metric - a.metric);
  }

  // Keep the fewest most-sensitive layers in float: grow the count by doubling, then bisect.
  const tryKeep = async (count: number): Promise<{ metric: number; plan: PlacementPlan; result: ReturnType<typeof insertQdq> }> => {
    const keep = new Set(sensitivity.slice(0, count).map((s) => s.node));
    const p = planPlacement(view, excluded, new Set(names.filter((x) => !keep.has(x))));
    const r = insertQdq(prepared, p, amax);
    const m = await evaluator.evaluate(writeModel(r.model));
    progress({ phase: 'fallback', done: count, total: names.length, message: `${count} layer(s) in float: metric ${m}` });
    return { metric: m, plan: p, result: r };
  };
  let lo = 0; // known failing count
  let hi = 1;
  let found: Awaited<ReturnType<typeof tryKeep>> | undefined;
  while (hi <= names.length) {
    const t = await tryKeep(hi);
    if (evaluator.floatMetric - t.metric <= budget) {
      found = t;
      break;
    }
    lo = hi;
    if (hi === names.length) break;
    hi = Math.min(hi * 2, names.length);
  }
  if (!found) {
    return {
      plan,
      result,
      report: { ...base, int8, drop, withinBudget: false, sensitivity, message: `accuracy drop ${drop.toFixed(4)} exceeds maxAccuracyDrop ${budget}, and no number of layers kept in float met the budget: the fully quantized model is returned` },
    };
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const t = await tryKeep(mid);
    if (evaluator.floatMetric - t.metric <= budget) {
      hi = mid;
      found = t;
    } else lo = mid;
  }
  result = found.result;
  return {
    plan: found.plan,
    result,
    report: { ...base, int8: found.metric, drop: evaluator.floatMetric - found.metric, withinBudget: true, sensitivity },
  };
}
