/**
 * How onnxruntime runs the Q/DQ models this package writes. ONNX Runtime fuses a Conv
 * into its INT8 kernel (QLinearConv) only with a QuantizeLinear on the Conv's output,
 * which TensorRT's placement rules leave out (DESIGN.md decision 2). Unfused, it kept
 * every weight's DequantizeLinear in the graph, ran it on every run, and could no longer
 * fold BatchNormalization into the Conv. With its Q/DQ handling off, it folds the weights'
 * DequantizeLinear into float weights once at load (the same values), then BatchNormalization
 * into the Conv, and runs the activations' Q/DQ as they are: the INT8 model's numbers, on
 * float kernels. `bench/quantize-speed.ts` (docs/quantize.md): PaddleOCR cls at batch 32
 * 66.1 → 39.8 ms (float 35.5), PP-OCRv4 rec at batch 1 34.4 → 24.8 ms (float 21.4).
 */
import '../backends/onnxruntime/telemetry.js';
import * as ort from 'onnxruntime-node';
import { TensorrtNodeError } from '../errors.js';
import { nativeCall } from '../backends/onnxruntime/native-calls.mjs';

/** The failure is the caller's error (EMODEL); onnxruntime need not also write it to stderr. */
const RUN_OPTIONS: ort.InferenceSession.RunOptions = { logSeverityLevel: 4 };

export const QDQ_SESSION_CONFIG: Readonly<Record<string, string>> = { disable_quant_qdq: '1' };

/** An onnxruntime session for the quantizer's `what`; a model onnxruntime refuses is EMODEL with its message. */
export async function quantizerSession(model: Uint8Array, options: ort.InferenceSession.SessionOptions, what: string): Promise<ort.InferenceSession> {
  try {
    return await nativeCall(() => ort.InferenceSession.create(model, options));
  } catch (e) {
    throw new TensorrtNodeError('EMODEL', `onnxruntime could not load the model for ${what}: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** A run of the quantizer's session; a failure inside the graph is EMODEL with onnxruntime's message. */
export async function quantizerRun(
  session: ort.InferenceSession,
  feeds: ort.InferenceSession.FeedsType,
  what: string,
  fetches?: readonly string[],
): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await nativeCall(() => (fetches ? session.run(feeds, fetches, RUN_OPTIONS) : session.run(feeds, RUN_OPTIONS)));
  } catch (e) {
    throw new TensorrtNodeError('EMODEL', `onnxruntime failed running the model for ${what}: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** Releases a quantizer's session (a native call, marked like the others). */
export function quantizerRelease(session: ort.InferenceSession): Promise<void> {
  return nativeCall(() => session.release());
}
