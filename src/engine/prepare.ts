/**
 * The ONNX model a backend runs: the float model as given, or for precision
 * 'int8' the Q/DQ model the quantizer writes (calibrated in ONNX Runtime).
 */
import { TensorrtNodeError } from '../errors.js';
import type { QuantizeReport } from '../quantize/index.js';
import { quantizeOffThread, type BuildThread } from './build-thread.js';
import type { EngineOptions } from './options.js';

/**
 * percentile, not the quantizer's entropy default: entropy clipped PaddleOCR rec to 0 %
 * character accuracy and cls to 96.4 % where percentile kept both within 0.2 pt
 * (bench/quantize-accuracy.ts, docs/quantize.md).
 */
export const DEFAULT_INT8_METHOD = 'percentile' as const;

export interface PreparedModel {
  bytes: Uint8Array;
  /** The quantizer's report, for int8. */
  quantization?: QuantizeReport;
  /** Where the quantizer ran, for int8. */
  thread?: BuildThread;
}

export async function prepareModel(bytes: Uint8Array, options: EngineOptions): Promise<PreparedModel> {
  const precision = options.precision ?? 'fp32';
  if (precision === 'fp32' || precision === 'fp16') return { bytes };
  if (precision !== 'int8') {
    throw new TensorrtNodeError('EINPUT', `option 'precision': expected 'fp32', 'fp16' or 'int8', received ${JSON.stringify(precision)}`, {
      tensor: 'precision', expected: "'fp32' | 'fp16' | 'int8'", received: String(precision),
    });
  }
  if (options.calibration === undefined) {
    throw new TensorrtNodeError('ECALIBRATION', "precision 'int8' needs `calibration` data (samples of the model's inputs)");
  }
  const q = options.quantization ?? {};
  const onProgress = options.onProgress;
  const result = await quantizeOffThread(bytes, {
    calibration: options.calibration,
    method: q.method ?? DEFAULT_INT8_METHOD,
    ...(q.percentile !== undefined ? { percentile: q.percentile } : {}),
    ...(q.exclude !== undefined ? { exclude: q.exclude } : {}),
    // Bare typed-array samples take their dims as infer() does.
    ...(options.shapes !== undefined ? { shapes: options.shapes } : {}),
    ...(options.validation !== undefined ? { validation: options.validation } : {}),
    ...(options.maxAccuracyDrop !== undefined ? { maxAccuracyDrop: options.maxAccuracyDrop } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(onProgress ? { onProgress: (e) => onProgress({ stage: `quantize:${e.phase}`, done: e.done, ...(e.total !== undefined ? { total: e.total } : {}) }) } : {}),
  });
  // Said where a service sees it: otherwise only engine.quantization.warnings held it.
  for (const w of result.report.warnings) process.emitWarning(`tensorrt-node: quantization: ${w}`, { code: 'EQUANTIZE' });
  return { bytes: result.model, quantization: result.report, thread: result.thread };
}
