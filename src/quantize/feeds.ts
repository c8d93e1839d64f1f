/** Check feeds against a model's inputs and turn them into onnxruntime tensors. */
import * as ort from 'onnxruntime-node';
import { TensorrtNodeError, inputError } from '../errors.js';
import type { GraphView } from '../onnx/graph.js';
import { DataType } from '../onnx/proto.js';
import { ARRAY_OF, type Feeds, type TensorDtype, type TensorLike, type TypedArray } from '../tensor.js';
import { bareDims, type ShapeRange } from '../shapes.js';
import { ortTensor } from '../backends/onnxruntime/ort-tensor.mjs';

export interface ModelInput {
  name: string;
  dtype: TensorDtype | 'unknown';
  /** -1 for a dynamic axis. */
  shape: number[];
}

const DTYPE_OF_ELEM: Record<number, TensorDtype> = {
  [DataType.FLOAT]: 'float32',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT16]: 'int16',
  [DataType.UINT16]: 'uint16',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
};

export function modelInputs(view: GraphView): ModelInput[] {
  return view.inputs().map((v) => ({
    name: v.name ?? '',
    dtype: DTYPE_OF_ELEM[view.elemType(v.name ?? '') ?? 0] ?? 'unknown',
    shape: view.shape(v.name ?? '') ?? [],
  }));
}

/** The dtype a typed array carries (Uint16Array: float16 bits). */
export function dtypeOfData(data: unknown): TensorDtype | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof BigUint64Array) return 'uint64';
  if (data instanceof Uint16Array) return 'float16';
  return undefined;
}

const shapeText = (s: readonly number[]): string => `[${s.map((d) => (d < 0 ? '?' : d)).join(',')}]`;

function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** Dims for bare typed-array samples where the model leaves axes dynamic: the Engine's `shapes`. */
export type SampleShapes = Readonly<Record<string, ShapeRange>>;

/** The dims of a bare typed array for `input`, as `engine.infer()` reads one: a free batch axis from the length. */
function sampleDims(input: ModelInput, length: number, shapes: SampleShapes | undefined, what: string): number[] {
  const dims = bareDims(input, shapes?.[input.name], true);
  if (dims.slice(1).some((d) => d < 0)) {
    throw inputError(input.name, `a { data, dims } tensor, or a 'shapes' option fixing ${shapeText(input.shape)}`, 'a bare typed array', what);
  }
  const rest = dims.slice(1).reduce((a, b) => a * b, 1);
  if (dims[0]! < 0) {
    if (length === 0 || length % rest !== 0) throw inputError(input.name, `a multiple of ${rest} elements (${shapeText(dims)})`, `${length} elements`, what);
    dims[0] = length / rest;
  }
  return dims;
}

/**
 * Validate one sample (a record of tensors, or a bare typed array for a model with one
 * input, its dynamic axes from `shapes`) against the model's inputs. EINPUT names the
 * input, what was expected and what came.
 */
export function checkFeeds(item: unknown, inputs: readonly ModelInput[], what = 'input', shapes?: SampleShapes): Feeds {
  if (isTypedArray(item)) {
    if (inputs.length !== 1) {
      throw inputError('(bare typed array)', `a record of ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')})`, 'a typed array', what);
    }
    const input = inputs[0]!;
    return checkFeeds({ [input.name]: { data: item, dims: sampleDims(input, item.length, shapes, what) } }, inputs, what);
  }
  if (!item || typeof item !== 'object') {
    throw inputError('(feeds)', 'a record of tensors or a typed array', item === null ? 'null' : typeof item, what);
  }
  const feeds = item as Record<string, unknown>;
  const known = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) throw inputError(name, `one of the model's inputs (${[...known].join(', ')})`, `unknown name '${name}'`, what);
  }
  const out: Feeds = {};
  for (const input of inputs) {
    const t = feeds[input.name] as TensorLike | undefined;
    if (t === undefined) throw inputError(input.name, `a tensor ${input.dtype} ${shapeText(input.shape)}`, 'nothing (missing input)', what);
    if (!t || typeof t !== 'object' || !isTypedArray(t.data) || !Array.isArray(t.dims)) {
      throw inputError(input.name, 'a tensor { data: TypedArray, dims: number[] }', typeof t, what);
    }
    // Unnamed, a Uint16Array or Uint8Array is what the input takes where it can carry it (uint16, bool).
    const dtype = (t.type as TensorDtype | undefined) ?? (input.dtype !== 'unknown' && t.data.constructor === ARRAY_OF[input.dtype] ? input.dtype : dtypeOfData(t.data));
    if (input.dtype !== 'unknown' && dtype !== input.dtype) {
      throw inputError(input.name, `dtype ${input.dtype}`, `dtype ${dtype ?? t.data.constructor.name}`, what);
    }
    const dims = t.dims;
    const rankOk = input.shape.length === 0 || dims.length === input.shape.length;
    const dimsOk = rankOk && input.shape.every((d, k) => d < 0 || d === dims[k]);
    if (!dimsOk || dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw inputError(input.name, `shape ${shapeText(input.shape)}`, `shape ${shapeText(dims)}`, what);
    }
    const count = dims.reduce((a, d) => a * d, 1);
    if (t.data.length !== count) {
      throw inputError(input.name, `${count} elements for shape ${shapeText(dims)}`, `${t.data.length} elements`, what);
    }
    out[input.name] = { data: t.data, dims: [...dims], type: dtype };
  }
  return out;
}

export function toOrtFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const type = (t.type ?? dtypeOfData(t.data)) as keyof ort.Tensor.DataTypeMap;
    out[name] = ortTensor(ort, type, t.data, t.dims);
  }
  return out;
}

/** Concatenate samples along axis 0 (for a model with a dynamic batch axis). */
export function stackFeeds(items: readonly Feeds[]): Feeds {
  if (items.length === 1) return items[0]!;
  const out: Feeds = {};
  for (const name of Object.keys(items[0]!)) {
    const parts = items.map((f) => f[name]!);
    const first = parts[0]!;
    const tail = first.dims.slice(1).join(',');
    if (parts.some((p) => p.dims.slice(1).join(',') !== tail)) {
      throw new TensorrtNodeError('EINPUT', `input '${name}': samples in one batch must share their shape after the batch axis`, { tensor: name });
    }
    const total = parts.reduce((a, p) => a + p.data.length, 0);
    const Ctor = first.data.constructor as { new (n: number): TypedArray };
    const data = new Ctor(total);
    let offset = 0;
    for (const p of parts) {
      (data as Float32Array).set(p.data as Float32Array, offset);
      offset += p.data.length;
    }
    out[name] = { data, dims: [parts.reduce((a, p) => a + p.dims[0]!, 0), ...first.dims.slice(1)], type: first.type };
  }
  return out;
}

/** Iterate a sync or async iterable as async. */
export async function* iterate<T>(source: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  if (source && typeof (source as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') {
    yield* source as AsyncIterable<T>;
  } else if (source && typeof (source as Iterable<T>)[Symbol.iterator] === 'function') {
    yield* source as Iterable<T>;
  } else {
    throw new TensorrtNodeError('EINPUT', 'expected an Iterable or AsyncIterable of samples', { tensor: '(data)', expected: 'Iterable | AsyncIterable', received: typeof source });
  }
}
