/** Tensor types shared by the quantizer, the engine and the backends. */

export type TensorDtype =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Uint16Array // float16 bits, and uint16
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Each dtype's typed array, as onnxruntime-node takes it: float16 as its bits, bool as bytes. */
export const ARRAY_OF: Readonly<Record<TensorDtype, { new (b: ArrayBufferLike, o: number, l: number): TypedArray; new (l: number): TypedArray; readonly BYTES_PER_ELEMENT: number }>> = {
  float32: Float32Array,
  float16: Uint16Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

/**
 * Any object with a typed array and dims: onnxruntime's Tensor fits, and so does
 * a plain `{ data, dims }`. `type` follows onnxruntime's names where given.
 */
export interface TensorLike {
  readonly data: TypedArray;
  readonly dims: readonly number[];
  readonly type?: string;
}

export type Feeds = Record<string, TensorLike>;

/** A model input or output as the engine reports it: -1 marks a dynamic axis. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
}
