/** Tensor types shared by the quantizer, the engine and the backends. */

export type TensorDtype =
  | 'float32'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int32'
  | 'int64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Uint16Array // float16 bits
  | Int8Array
  | Uint8Array
  | Int32Array
  | BigInt64Array;

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
