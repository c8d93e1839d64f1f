export { TensorrtNodeError, inputError, isTensorrtNodeError } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export { Engine } from './engine/index.js';
export type {
  BackendChoice, BackendInfo, BatchingInfo, CacheInfo, DataSet, EngineOptions, EngineStats, FullStats, HostTensor,
  InferInput, InferOptions, InferResult, OutputTensor, Percentiles, Precision, QuantizationOptions, ShapeRange,
} from './engine/index.js';
