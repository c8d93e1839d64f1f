import type { Feeds, TensorInfo, TensorLike } from '../tensor.js';

export type BackendName = 'tensorrt' | 'onnxruntime';

/** What the batcher knows of a batch when it dispatches it. */
export interface RunHint {
  /** No other batch runs or waits: the backend may give this one every core. */
  alone: boolean;
}

/**
 * A batch as the batcher dispatches it: its requests' tensors in order along axis 0, not
 * yet concatenated. A backend that places them itself (the ONNX Runtime mailbox copies
 * them into shared memory) saves the batcher's copy; any other takes `merged()`. Either
 * happens before the backend's first await: the parts are the callers' memory.
 */
export interface BatchParts {
  readonly parts: readonly Feeds[];
  /** Rows on axis 0 in all (the one request's tensors as they are, for a model without a batch axis). */
  readonly rows: number;
  /** The parts concatenated into buffers of the batch's own, made on the first call; the backend may transfer them. */
  merged(): Feeds;
}

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
  /** The model's names of its inputs' symbolic axes, by input (null where unnamed), where the backend knows them. */
  readonly inputDimParams?: Readonly<Record<string, readonly (string | null)[]>>;
  /** How many `run` calls can execute at the same time. */
  readonly instances: number;
  /** CPU threads of each instance, for a backend that computes on the CPU. */
  readonly threadsPerInstance?: number;
  /** Those threads' priority: 'nice <n>' (background), or 'normal' with the reason. */
  readonly threadPolicy?: string;
  /** Instances started in place of ones that ended unexpectedly (an ONNX Runtime worker that exited). */
  readonly restarts?: number;
  /** The backend's own counters, where it keeps any (TensorRT: zero-copy and staged inputs, graph replays, completions). */
  stats?(): Readonly<Record<string, number>>;
  /**
   * Runs one batch. The engine passes buffers it owns: a backend may transfer them
   * (e.g. to a worker thread) and, when it settles, may put the same memory back
   * into `feeds[name].data` so the engine can reuse it.
   */
  run(feeds: Feeds): Promise<Record<string, TensorLike>>;
  /** As `run`, with what the batcher knows of the batch (a CPU backend may give a lone one every core). */
  runHinted?(feeds: Feeds, hint: RunHint): Promise<Record<string, TensorLike>>;
  /** As `runHinted`, given the batch's parts unmerged (see BatchParts). */
  runBatch?(batch: BatchParts, hint: RunHint): Promise<Record<string, TensorLike>>;
  /**
   * As `run`, with the time the backend itself computed, without thread hops (ms); with
   * `cpuTime`, where it can, also the computing thread's own time on a CPU (`cpuMs`), which
   * other work on the machine does not lengthen.
   */
  runTimed?(feeds: Feeds, options?: { cpuTime?: boolean }): Promise<{ outputs: Record<string, TensorLike>; computeMs: number; cpuMs?: number }>;
  /**
   * The engine no longer references these outputs of a run (every caller got a copy):
   * the backend may reuse their memory for later results.
   */
  release?(outputs: Record<string, TensorLike>): void;
  dispose(): Promise<void>;
}
