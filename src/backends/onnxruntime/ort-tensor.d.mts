import type * as ort from 'onnxruntime-node';
import type { TypedArray } from '../../tensor.js';

export declare function ortTensor(runtime: typeof ort, type: string, data: TypedArray, dims: readonly number[]): ort.Tensor;
