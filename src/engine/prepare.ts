/**
 * The ONNX model a backend runs: the float model as given, or for precision
 * 'int8' the Q/DQ model the quantizer writes (calibrated in ONNX Runtime).
 */
import { TensorrtNodeError } from '../errors.js';
import type { EngineOptions } from './options.js';

export interface PreparedModel {
  bytes: Uint8Array;
  /** The quantizer's report, for int8. */
  quantization?: unknown;
}

export async function prepareModel(bytes: Uint8Array, options: EngineOptions): Promise<PreparedModel> {
  const precision = options.precision ?? 'fp32';
  if (precision === 'fp32' || precision === 'fp16') return { bytes };
  if (precision !== 'int8') {
    throw new TensorrtNodeError('EINPUT', `option 'precision': expected 'fp32', 'fp16' or 'int8', received ${JSON.stringify(precision)}`, {
      tensor: 'precision', expected: "'fp32' | 'fp16' | 'int8'", received: String(precision),
    });
  }
  throw new TensorrtNodeError('ECALIBRATION', "precision 'int8' needs the quantizer, which is not built into this package yet");
}
