export { TensorrtNodeError, inputError, isTensorrtNodeError } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export { allocHost, releaseHost, hostPoolStats, configureHostPool, runtimeInfo, devices } from './runtime.js';
export type {
  AllocHostOptions, DeviceInfo, HostPoolLimits, HostPoolStats, RuntimeInfo, RuntimeProblem,
} from './runtime.js';
export { Engine } from './engine/index.js';
export type {
  BackendChoice, BackendInfo, BatchingInfo, BuildThreads, CacheInfo, DataSet, DisposeOptions, EngineOptions, EngineStats, FullStats, HostTensor,
  GraphRewrites, InferInput, InferOptions, InferResult, MetricsRegistry, OutputDestinations, OutputMemory, OutputTensor, Percentiles, Precision, QuantizationOptions, ShapeRange,
} from './engine/index.js';
export { quantize } from './quantize/index.js';
export type {
  CalibrationMethod, QuantizeOptions, QuantizeProgress, QuantizeReport, QuantizeResult, QuantizedTensor, TensorCalibration,
  Outputs, ValidationMetric, ValidationSample,
} from './quantize/index.js';
export { readModel, writeModel, decodeModel } from './onnx/model.js';
export type { ModelSource } from './onnx/source.js';
export { GraphView } from './onnx/graph.js';
export type { ModelProto } from './onnx/proto.js';
