export { Engine } from './engine.js';
export type { BackendInfo, BatchingInfo, BuildThreads, CacheInfo, FullStats, HostTensor, InferResult, OutputTensor } from './engine.js';
export type { DataSet, DisposeOptions, EngineOptions, InferOptions, Precision, QuantizationOptions } from './options.js';
export type { InferInput } from './inputs.js';
export type { ShapeRange } from '../shapes.js';
export type { GraphRewrites } from './rewrite.js';
export type { OutputDestinations, OutputMemory } from './outputs.js';
export type { EngineStats, Percentiles } from './stats.js';
export type { BackendChoice, BackendSelection } from '../backends/select.js';
