/** Compare the float and INT8 models on a validation set with a metric. */
import * as ort from 'onnxruntime-node';
import { TensorrtNodeError } from '../errors.js';
import type { Feeds, TensorLike } from '../tensor.js';
import { toOrtFeeds } from './feeds.js';
import { QDQ_SESSION_CONFIG, quantizerRelease, quantizerRun, quantizerSession } from './ort-session.js';

export type Outputs = Record<string, TensorLike>;

export interface ValidationSample {
  feeds: Feeds;
  /** Class index (or one per batch row) for 'top1'. */
  label?: number | readonly number[];
  /** Expected outputs; for 'top1' without a label, the arg-max of the first one is the label. */
  expected?: Feeds;
}

/**
 * 'top1': arg-max of the first output over its last axis equals the label, per row.
 * 'agreement': arg-max of the INT8 model's first output equals the float model's, per position.
 * A function scores one sample (higher is better) from the float and the INT8 outputs.
 */
export type ValidationMetric = 'top1' | 'agreement' | ((float: Outputs, int8: Outputs, sample: ValidationSample) => number);

/** Arg-max over the last axis, for every leading position. */
export function argmaxLastAxis(t: TensorLike): number[] {
  const classes = t.dims[t.dims.length - 1] ?? 1;
  const data = t.data as Float32Array;
  const out: number[] = [];
  for (let base = 0; base + classes <= data.length; base += classes) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[base + c]! > data[base + best]!) best = c;
    out.push(best);
  }
  return out;
}

/** Score sum and count of one sample; the metric is sum/count over the set. */
function score(metric: ValidationMetric, float: Outputs, other: Outputs, sample: ValidationSample, firstOutput: string): [number, number] {
  if (typeof metric === 'function') {
    const s = metric(float, other, sample);
    if (!Number.isFinite(s)) throw new TensorrtNodeError('ECALIBRATION', `validation metric returned ${s}`);
    return [s, 1];
  }
  const predicted = argmaxLastAxis(other[firstOutput]!);
  if (metric === 'agreement') {
    const reference = argmaxLastAxis(float[firstOutput]!);
    return [predicted.filter((p, k) => p === reference[k]).length, predicted.length];
  }
  let labels: readonly number[];
  if (sample.label !== undefined) labels = typeof sample.label === 'number' ? [sample.label] : sample.label;
  else if (sample.expected) labels = argmaxLastAxis(Object.values(sample.expected)[0]!);
  else throw new TensorrtNodeError('EINPUT', "validation metric 'top1' needs a label or expected outputs on every sample", { tensor: '(validation)', expected: 'label or expected', received: 'neither' });
  if (labels.length !== predicted.length) {
    throw new TensorrtNodeError('EINPUT', `validation sample has ${labels.length} labels for ${predicted.length} predictions`, { tensor: '(validation)', expected: `${predicted.length} labels`, received: `${labels.length}` });
  }
  return [predicted.filter((p, k) => p === labels[k]).length, predicted.length];
}

function copyOutputs(out: ort.InferenceSession.OnnxValueMapType): Outputs {
  const res: Outputs = {};
  for (const [name, v] of Object.entries(out)) {
    const t = v as ort.Tensor;
    res[name] = { data: (t.data as Float32Array).slice(), dims: [...t.dims], type: t.type };
    t.dispose();
  }
  return res;
}

/** Run a model over the samples; returns each sample's outputs. */
export async function runModel(model: Uint8Array, samples: readonly ValidationSample[], onSample?: (done: number) => void): Promise<{ outputs: Outputs[]; firstOutput: string }> {
  // The float and the INT8 model alike, as the engine serves them (no effect on a float model).
  const session = await quantizerSession(model, { extra: { session: QDQ_SESSION_CONFIG } }, 'validation');
  try {
    const outputs: Outputs[] = [];
    for (const s of samples) {
      outputs.push(copyOutputs(await quantizerRun(session, toOrtFeeds(s.feeds), 'validation')));
      onSample?.(outputs.length);
    }
    return { outputs, firstOutput: session.outputNames[0]! };
  } finally {
    await quantizerRelease(session);
  }
}

export interface Evaluator {
  readonly floatMetric: number;
  readonly firstOutput: string;
  /** The metric of a model on the first `limit` samples (all by default). */
  evaluate(model: Uint8Array, limit?: number, onSample?: (done: number) => void): Promise<number>;
}

/** Runs the float model once, keeps its outputs, and scores other models against them. */
export async function makeEvaluator(floatModel: Uint8Array, samples: readonly ValidationSample[], metric: ValidationMetric, onSample?: (done: number) => void): Promise<Evaluator> {
  const { outputs: floatOutputs, firstOutput } = await runModel(floatModel, samples, onSample);
  const aggregate = (outs: readonly Outputs[], limit: number): number => {
    let sum = 0;
    let count = 0;
    for (let k = 0; k < limit; k++) {
      const [s, c] = score(metric, floatOutputs[k]!, outs[k]!, samples[k]!, firstOutput);
      sum += s;
      count += c;
    }
    return count === 0 ? 0 : sum / count;
  };
  const floatMetric = aggregate(floatOutputs, samples.length);
  return {
    floatMetric,
    firstOutput,
    async evaluate(model, limit = samples.length, progress) {
      const n = Math.min(limit, samples.length);
      const { outputs } = await runModel(model, samples.slice(0, n), progress);
      return aggregate(outputs, n);
    },
  };
}
