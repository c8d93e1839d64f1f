/**
 * Collect activation statistics: run the float model in onnxruntime-node with the
 * tensors to calibrate exposed as extra graph outputs, and stream each batch into a
 * per-tensor |x| histogram (memory bounded by tensors × 2048 bins).
 */
import { TensorrtNodeError } from '../errors.js';
import { makeValueInfo } from '../onnx/graph.js';
import { writeModel } from '../onnx/model.js';
import { DataType, type ModelProto } from '../onnx/proto.js';
import type { Feeds } from '../tensor.js';
import { checkFeeds, iterate, stackFeeds, toOrtFeeds, type ModelInput, type SampleShapes } from './feeds.js';
import { AbsHistogram } from './histogram.js';
import { cloneModel } from './prepare.js';
import { quantizerRelease, quantizerRun, quantizerSession } from './ort-session.js';

export interface CalibrationStats {
  histograms: Map<string, AbsHistogram>;
  samples: number;
  batches: number;
}

export interface CalibrateOptions {
  /** Samples per run where the model's inputs have a dynamic batch axis. */
  batchSize: number;
  /** Dims for bare typed-array samples where the model leaves axes dynamic. */
  shapes?: SampleShapes;
  onBatch?: (samples: number) => void;
}

/** The model with `tensors` added as graph outputs (float32). */
export function exposeTensors(model: ModelProto, tensors: readonly string[]): ModelProto {
  const copy = cloneModel(model);
  const graph = copy.graph!;
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  for (const t of tensors) if (!existing.has(t)) graph.output = [...(graph.output ?? []), makeValueInfo(t, DataType.FLOAT, undefined)];
  return copy;
}

export async function calibrate(
  model: ModelProto,
  tensors: readonly string[],
  inputs: readonly ModelInput[],
  data: Iterable<unknown> | AsyncIterable<unknown>,
  options: CalibrateOptions,
): Promise<CalibrationStats> {
  const inputNames = new Set(inputs.map((i) => i.name));
  const fromGraph = tensors.filter((t) => !inputNames.has(t));
  const fromFeeds = tensors.filter((t) => inputNames.has(t));
  const histograms = new Map(tensors.map((t) => [t, new AbsHistogram()]));
  const session = await quantizerSession(writeModel(exposeTensors(model, fromGraph)), {}, 'calibration');
  const batchable = inputs.every((i) => i.shape.length > 0 && i.shape[0] === -1);
  const batchSize = batchable ? Math.max(1, Math.floor(options.batchSize)) : 1;
  let samples = 0;
  let batches = 0;
  const run = async (pending: Feeds[]): Promise<void> => {
    const feeds = stackFeeds(pending);
    for (const t of fromFeeds) histograms.get(t)!.add(feeds[t]!.data as Float32Array);
    if (fromGraph.length > 0) {
      const out = await quantizerRun(session, toOrtFeeds(feeds), 'calibration', fromGraph);
      for (const t of fromGraph) {
        const v = out[t];
        if (!v || v.type !== 'float32') throw new TensorrtNodeError('ECALIBRATION', `tensor '${t}' is not float32 (${v?.type}): cannot calibrate it`);
        histograms.get(t)!.add(v.data as Float32Array);
        v.dispose();
      }
    }
    samples += pending.length;
    batches++;
    options.onBatch?.(samples);
  };
  try {
    let pending: Feeds[] = [];
    for await (const item of iterate(data)) {
      const feeds = checkFeeds(item, inputs, 'calibration input', options.shapes);
      if (pending.length > 0 && !sameTail(pending[0]!, feeds)) {
        await run(pending);
        pending = [];
      }
      pending.push(feeds);
      if (pending.length >= batchSize) {
        await run(pending);
        pending = [];
      }
    }
    if (pending.length > 0) await run(pending);
  } finally {
    await quantizerRelease(session);
  }
  if (samples === 0) throw new TensorrtNodeError('ECALIBRATION', 'calibration set is empty: give at least one sample');
  return { histograms, samples, batches };
}

function sameTail(a: Feeds, b: Feeds): boolean {
  return Object.keys(a).every((k) => a[k]!.dims.slice(1).join(',') === b[k]!.dims.slice(1).join(','));
}
