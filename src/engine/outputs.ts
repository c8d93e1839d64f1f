/**
 * Caller-owned destinations for results (`infer(input, { outputs })`), as
 * onnxruntime's pre-allocated fetches: each named output is written into the
 * caller's memory and the result's `data` is a view over it. Mistakes that can be
 * seen before the run (unknown name, wrong dtype, detached or too small for a
 * shape known from the batch) refuse the request; a result of data-dependent shape
 * that does not fit rejects it once computed.
 */
import { inputError } from '../errors.js';
import type { TensorInfo, TypedArray } from '../tensor.js';
import { arrayKind, dtypesOf, elementBytes, isDetached, isTypedArray, typedView } from './inputs.js';
import { fmtShape } from '../shapes.js';

/** Memory for one output: a typed array, a Buffer, or a tensor over one (as `allocateOutputs()` returns). */
export type OutputMemory = TypedArray | Buffer | { readonly data: TypedArray | Buffer };
export type OutputDestinations = Readonly<Record<string, OutputMemory>>;
type Memory = TypedArray | Buffer;

/** A result tensor, as the batcher hands it back. */
interface ResultTensor {
  data: TypedArray;
  dims: number[];
  type: TensorInfo['dtype'];
}

const what = 'output';

/** The memory of each destination, or EINPUT where one cannot take this request's outputs. */
export function checkDestinations(dest: OutputDestinations, outputs: readonly TensorInfo[], batch: number, batchAxis: boolean): Record<string, Memory> {
  if (dest === null || typeof dest !== 'object') throw inputError('outputs', 'a record of typed arrays or Buffers by output name', arrayKind(dest), 'option');
  const memory: Record<string, Memory> = {};
  for (const [name, given] of Object.entries(dest)) {
    const info = outputs.find((o) => o.name === name);
    if (!info) throw inputError(name, `one of the model's outputs (${outputs.map((o) => o.name).join(', ')})`, 'an unknown name', what);
    const buf: unknown = given !== null && typeof given === 'object' && !isTypedArray(given) && 'data' in given ? given.data : given;
    if (!isTypedArray(buf)) throw inputError(name, `a ${info.dtype} typed array, a Buffer, or a tensor over one`, arrayKind(buf), what);
    if (!Buffer.isBuffer(buf) && !dtypesOf(buf).includes(info.dtype)) throw inputError(name, `a ${info.dtype} typed array or a Buffer`, arrayKind(buf), what);
    if (isDetached(buf)) throw inputError(name, 'memory to write the result into', 'a detached buffer', what);
    const align = elementBytes(info.dtype);
    if (buf.byteOffset % align !== 0) throw inputError(name, `memory aligned to ${align} bytes for ${info.dtype}`, `a view at byte offset ${buf.byteOffset}`, what);
    memory[name] = buf;
    const dims = info.shape.map((d, i) => (i === 0 && batchAxis ? batch : d));
    if (dims.some((d) => d < 0)) continue; // data-dependent: checked when the result comes
    const bytes = dims.reduce((a, b) => a * b, 1) * elementBytes(info.dtype);
    if (buf.byteLength < bytes) throw inputError(name, `at least ${bytes} bytes for ${fmtShape(dims)} ${info.dtype}`, `${buf.byteLength} bytes`, what);
  }
  return memory;
}

/** Copies each destined output into its memory; the result's data becomes a view over it. */
export function writeDestinations<R extends Record<string, ResultTensor>>(result: R, dest: Readonly<Record<string, Memory>>): R {
  const out: Record<string, ResultTensor> = { ...result };
  for (const [name, buf] of Object.entries(dest)) {
    const t = result[name];
    if (!t) continue;
    if (buf.byteLength < t.data.byteLength) {
      throw inputError(name, `at least ${t.data.byteLength} bytes for the result ${fmtShape(t.dims)} ${t.type}`, `${buf.byteLength} bytes`, what);
    }
    const view = typedView(t.type, buf.buffer, buf.byteOffset, t.data.length);
    // A split request's parts were joined straight into this memory: nothing to copy.
    if (t.data.buffer !== buf.buffer || t.data.byteOffset !== buf.byteOffset) (view as Uint8Array).set(t.data as Uint8Array);
    out[name] = { data: view, dims: t.dims, type: t.type };
  }
  return out as R;
}
