import type { Feeds, TensorInfo, TensorLike } from '../tensor.js';

export type BackendName = 'tensorrt' | 'onnxruntime';

/** What the batcher knows of a batch when it dispatches it. */
export interface RunHint {
  /** No other batch runs or waits: the backend may give this one every core. */
  alone: boolean;
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
  /** Those threads' scheduling: 'SCHED_IDLE', or 'normal' with the reason. */
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
  /** As `run`, with the time the backend itself computed, without thread hops (ms). */
  runTimed?(feeds: Feeds): Promise<{ outputs: Record<string, TensorLike>; computeMs: number }>;
  /**
   * The engine no longer references these outputs of a run (every caller got a copy):
   * the backend may reuse their memory for later results.
   */
  release?(outputs: Record<string, TensorLike>): void;
  dispose(): Promise<void>;
}
