import type { Feeds, TensorInfo, TensorLike } from '../tensor.js';

export type BackendName = 'tensorrt' | 'onnxruntime';

/**
 * What the Engine needs of a backend. The dynamic batcher hands `run` one merged
 * batch at a time (or one request, for a model without a batch axis); the backend
 * may run several calls at once, up to its instance count.
 */
export interface Backend {
  readonly name: BackendName;
  /** Library version, part of the engine cache key. */
  readonly version: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** How many `run` calls can execute at the same time. */
  readonly instances: number;
  run(feeds: Feeds): Promise<Record<string, TensorLike>>;
  dispose(): Promise<void>;
}
