/** The options of Engine.build() and engine.infer(). */
import type { BackendChoice } from '../backends/select.js';
import type { MetricsRegistry } from '../metrics/triton.js';
import type { QuantizeOptions } from '../quantize/index.js';
import type { ShapeRange } from '../shapes.js';
import type { OutputDestinations } from './outputs.js';

export type Precision = 'fp32' | 'fp16' | 'int8';

/** Calibration data: records of tensors, or bare typed arrays for a single-input model (see quantize()). */
export type DataSet = QuantizeOptions['calibration'];

/** Validation data and metric for INT8 (see quantize()). */
export type Validation = NonNullable<QuantizeOptions['validation']>;

export interface QuantizationOptions {
  /** Calibration method (default 'percentile': measured best on PaddleOCR and MNIST; see docs/quantize.md). */
  method?: 'entropy' | 'max' | 'percentile' | 'mse';
  /** For 'percentile' (default 99.99). */
  percentile?: number;
  /** Node names or op types kept in float. */
  exclude?: readonly string[];
}

export interface EngineOptions {
  /** 'fp32' (default), 'fp16' where the backend supports it, 'int8' through the quantizer. */
  precision?: Precision;
  /** INT8 calibration data. An array is hashed into the cache key; a lazy iterable needs `cacheKey`. */
  calibration?: DataSet;
  /** INT8 validation: samples with labels or expected outputs, and a metric (see quantize()). */
  validation?: Validation;
  /** Largest accuracy drop INT8 may cost on `validation` before layers fall back to float. */
  maxAccuracyDrop?: number;
  quantization?: QuantizationOptions;
  /** 'auto' (default), 'tensorrt' or 'onnxruntime'. */
  backend?: BackendChoice;
  /** Where built engines are cached. No cache when unset. */
  cacheDir?: string;
  /** Extra text for the cache key, for data given as lazy iterables. */
  cacheKey?: string;
  /** Shape ranges per input: min/opt/max, or a fixed shape (-1 on axis 0 for any batch). */
  shapes?: Readonly<Record<string, ShapeRange>>;
  /**
   * Parallel executions: ONNX Runtime worker threads (default one per core, up to 8) /
   * TensorRT execution contexts per GPU (default 1). At most 256.
   */
  instances?: number;
  /** ONNX Runtime intra-op threads per instance (default: the cores left per worker, at least 1; at most 256). */
  threadsPerInstance?: number;
  /** Whether ONNX Runtime's intra-op threads spin while waiting for work (see docs/engine.md). */
  spinning?: boolean;
  /**
   * Whether ONNX Runtime's threads run at background priority (Linux nice, 10 steps below
   * the JS thread), so that the event loop's thread preempts them at once (default true;
   * see docs/engine.md for the trade-off).
   * Where other work starves them there, the engine replaces them by threads of normal
   * priority until the machine is quiet again (`backend.threadPolicy` says which).
   */
  backgroundThreads?: boolean;
  /** TensorRT: the GPU index, or several, each serving `instances` contexts (default 0). */
  device?: number | readonly number[];
  /** TensorRT: replay a CUDA graph captured after the first run, where every input is static (default false). */
  cudaGraphs?: boolean;
  /**
   * TensorRT: how long each instance's completion thread polls a run's event, and for the
   * next run, before it sleeps, in microseconds (default 200; 0 always sleeps: less CPU,
   * more latency; docs/tensorrt.md).
   */
  spinWaitUs?: number;
  /**
   * Whether the engine rewrites the graph before ONNX Runtime optimizes it (default true):
   * hard-swish written out as x · clip(x + 3, 0, 6) / 6 becomes x · HardSigmoid(x), and a
   * scalar Mul / Add next to a convolution is folded into its weights and bias, which ran
   * PaddleOCR's classifier 1.51–1.55× and its detector and recognizer 1.18–1.28× faster a
   * row (bench/graph-rewrites.ts). Results then differ from plain onnxruntime-node's by
   * float rounding (docs/engine.md); false runs the model as onnxruntime-node does, bit for
   * bit. TensorRT fuses such ops itself.
   */
  graphRewrites?: boolean;
  /**
   * ONNX Runtime, one single-threaded worker per core (the default): whether a batch that
   * finds every worker idle may run on every core (default true). Where the batch probe timed
   * a lone row at 5 ms or more, the first worker gets a second session with every thread,
   * kept where a lone row ran at least 15 % faster on it with the same bits: the PP-OCRv4
   * detector served 41.5 against 32.5 req/s at 1 in flight (docs/engine.md). `engine.backend.loneRuns`
   * says what was chosen and why; false never makes the second session.
   */
  wideLoneRuns?: boolean;
  /**
   * Largest batch a run takes; 1 turns merging off. A request with more rows runs split
   * over several batches. Default on onnxruntime: measured at build for this model on this
   * machine, up to 8 per intra-op thread (`engine.batching.probe`; docs/engine.md); on
   * tensorrt 64.
   */
  maxBatchSize?: number;
  /**
   * Where requests cannot merge (no batch axis, or `maxBatchSize` 1) and runs have lately
   * taken under 2 ms, each instance holds its next batch queued behind the one it runs, so it
   * does not wait on the JS thread between runs (default false). MNIST (0.08 ms a request on
   * the JS thread, fixed batch 1) on 2 × 1 at 4–64 in flight, two runs of
   * bench/engine-short-runs.ts: 1.2–1.6× the requests a second and a lower p50, but p99 up to
   * 3.7 ms and the event loop's longest stall up to 7 ms higher (results arrive in bursts; a
   * request waits behind a worker that waits for a core).
   */
  pipelineShortRuns?: boolean;
  /** How long a request may wait for others to form a batch (default 0, as Triton; Infinity: until a batch fills). */
  maxQueueDelayMs?: number;
  /** Batch sizes dispatched as soon as they form. */
  preferredBatchSizes?: readonly number[];
  /** Requests waiting beyond this are refused with EQUEUEFULL (default unlimited). */
  maxQueueSize?: number;
  /** Timeout of requests that give none (default none; from 2^31 - 1 ms on, Infinity included, none). */
  defaultTimeoutMs?: number;
  /** Priority levels, 1 the highest (default 1). */
  priorityLevels?: number;
  /** Priority of requests that give none (default: the lowest level). */
  defaultPriority?: number;
  /** Model name in metrics labels (default: the file name, or 'model'). */
  name?: string;
  /**
   * A prom-client Registry the service shares (its own metrics', or prom-client's default
   * `register`): the engine's metrics go into it too, one family per name with a series per
   * engine (`model` label: give engines sharing it distinct `name`s), and leave it at
   * dispose(). engine.metrics() still gives the engine's own series alone.
   */
  metricsRegistry?: MetricsRegistry;
  /** Progress of the build (quantization steps). */
  onProgress?: (event: { stage: string; done?: number; total?: number }) => void;
  /**
   * Aborts the build: it rejects with EABORTED at its next step (between stages, and
   * between the quantizer's calibration batches and validation runs), and frees what it
   * had started (the backend's workers).
   */
  signal?: AbortSignal;
}

/**
 * Every option Engine.build reads, so that a key it does not know (a typo such as
 * `maxBatchsize`) is refused rather than silently ignored. `satisfies` keeps the list and
 * the interface in step both ways.
 */
export const ENGINE_OPTION_NAMES: readonly string[] = Object.keys({
  precision: true, calibration: true, validation: true, maxAccuracyDrop: true, quantization: true, backend: true,
  cacheDir: true, cacheKey: true, shapes: true, instances: true, threadsPerInstance: true, spinning: true,
  backgroundThreads: true, pipelineShortRuns: true, device: true, cudaGraphs: true, spinWaitUs: true, graphRewrites: true, wideLoneRuns: true, maxBatchSize: true, maxQueueDelayMs: true,
  preferredBatchSizes: true, maxQueueSize: true, defaultTimeoutMs: true, priorityLevels: true, defaultPriority: true,
  name: true, metricsRegistry: true, onProgress: true, signal: true,
} satisfies Record<keyof EngineOptions, true>);

/** The keys of the `quantization` option. */
export const QUANTIZATION_OPTION_NAMES: readonly string[] = Object.keys({
  method: true, percentile: true, exclude: true,
} satisfies Record<keyof QuantizationOptions, true>);

/** The options infer() reads (see ENGINE_OPTION_NAMES). */
export const INFER_OPTION_NAMES: readonly string[] = Object.keys({
  signal: true, timeoutMs: true, priority: true, outputs: true,
} satisfies Record<keyof InferOptions, true>);

/** The options dispose() reads. */
export const DISPOSE_OPTION_NAMES: readonly string[] = Object.keys({
  drainTimeoutMs: true,
} satisfies Record<keyof DisposeOptions, true>);

export interface DisposeOptions {
  /**
   * How long requests already accepted may go on running before the engine is freed: they
   * are dispatched at once (no batch waits to fill), new ones are refused with EDISPOSED,
   * and what still waits when this runs out is rejected with EDISPOSED. 0 (the default):
   * reject what is queued at once; Infinity: until every accepted request has settled.
   */
  drainTimeoutMs?: number;
}

export interface InferOptions {
  /** Aborts the request: EABORTED, dropped from its batch if that has not started. */
  signal?: AbortSignal;
  /** ETIMEOUT after this long (from 2^31 - 1 ms on, Infinity included, none). */
  timeoutMs?: number;
  /** 1 is the highest. */
  priority?: number;
  /**
   * Memory to write outputs into, by output name (any of them): a typed array of the
   * output's dtype or a Buffer, e.g. from `engine.allocateOutputs()`. The result's `data`
   * is then a view over it. Do not touch it until the promise settles. Naming every
   * output also lets the engine reuse its batch's result memory: for large results
   * (hundreds of KB a row) that spares the event loop V8's full GCs (docs/engine.md).
   */
  outputs?: OutputDestinations;
}
