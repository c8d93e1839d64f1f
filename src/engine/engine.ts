/**
 * The Engine: one API over the TensorRT and ONNX Runtime backends, with dynamic
 * batching, an engine cache, statistics and Prometheus metrics.
 */
import { constants as bufferConstants } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { modelSource, type ModelSource } from '../onnx/source.js';
import { availableParallelism, cpus } from 'node:os';
import { basename, dirname } from 'node:path';
import { inlineExternalData } from '../onnx/model.js';
import { TensorrtNodeError, checkOptionNames, inputError, throwIfAborted } from '../errors.js';
import type { Backend, BackendName } from '../backends/types.js';
import { selectBackend } from '../backends/select.js';
import { OnnxruntimeBackend, createOnnxruntimeBackend, onnxruntimeVersion } from '../backends/onnxruntime/index.js';
import { chooseLoneRuns, parseLoneRuns, type LoneRuns } from './lone-runs.js';
import {
  checkSpinWaitUs, createTensorrtBackend, deviceList, tensorrtCacheKeyParts, type TensorrtBackendOptions, type TensorrtBuildProgress,
} from '../backends/tensorrt/index.js';
import { DynamicBatcher, type RequestOptions } from '../batching/batcher.js';
import { cacheKey, hashBytes, hashDataset } from '../cache/key.js';
import { cachePath, loadEntry, removeEntry, storeEntry } from '../cache/store.js';
import { buildOnce, type LockHolder } from '../cache/lock.js';
import { TritonMetrics, isMetricsRegistry } from '../metrics/triton.js';
import type { Feeds, TensorDtype, TensorInfo, TensorLike, TypedArray } from '../tensor.js';
import { InputNormalizer, elementBytes, typedView, type InferInput } from './inputs.js';
import { bareDims, checkShapes, fmtShape, kindOf, type ShapeRange } from '../shapes.js';
import { DISPOSE_OPTION_NAMES, ENGINE_OPTION_NAMES, INFER_OPTION_NAMES, QUANTIZATION_OPTION_NAMES, type DisposeOptions, type EngineOptions, type InferOptions } from './options.js';
import { DEFAULT_INT8_METHOD, prepareModel } from './prepare.js';
import { checkDestinations, writeDestinations } from './outputs.js';
import { QDQ_SESSION_CONFIG } from '../quantize/ort-session.js';
import type { QuantizeReport } from '../quantize/index.js';
import { StatsCollector, type EngineStats } from './stats.js';
import { checkBatchAxis, parseAxisCheck, parseProbe, probeBatchSize, probeItemDims, type BatchProbe } from './batch-probe.js';
import { allocHost } from '../runtime.js';
import { machineSample, quietBetween } from '../machine-load.js';
import { REWRITES_VERSION, isGraphRewrites, type GraphRewrites } from './rewrite.js';
import { rewriteOffThread, type BuildThread } from './build-thread.js';

/**
 * With `pipelineShortRuns`, runs shorter than this (ms) that cannot merge get each instance's
 * next one queued behind them (the batcher's `pipelineUnderMs`). Longer runs gain little
 * (the hop is ~0.1-0.2 ms) and a request queued behind one could wait while another frees.
 */
const PIPELINE_UNDER_MS = 2;

/** A result tensor: its own dtype and dims, data a view over the batch's output. */
export interface OutputTensor {
  data: TypedArray;
  dims: number[];
  type: TensorDtype;
}

export type InferResult = Record<string, OutputTensor>;

export interface BackendInfo {
  name: BackendName;
  version: string;
  /** Why this backend was chosen. */
  reason: string;
  instances: number;
  /** ONNX Runtime intra-op threads per instance. */
  threadsPerInstance?: number;
  /**
   * ONNX Runtime threads' priority: 'nice 10, slice 20 ms' (background: the slice where
   * the addon and the kernel, Linux 6.12+, set it, else why not in parentheses), or 'normal'
   * with the reason. It changes to 'normal (starved at background priority: ...)' where other
   * work kept the workers off the cores and the engine replaced them (docs/engine.md).
   */
  threadPolicy?: string;
  /** ONNX Runtime: the engine's graph rewrites (`graphRewrites`), by kind and count. */
  graphRewrites?: GraphRewrites;
  /** ONNX Runtime: the threads of a batch that finds every worker idle, and why (`wideLoneRuns`). */
  loneRuns?: LoneRuns;
}

export interface BatchingInfo {
  /** Whether requests merge along axis 0. */
  enabled: boolean;
  /** Whether the model has a dynamic batch axis (axis 0 of every input and output). */
  batchAxis: boolean;
  reason: string;
  maxBatchSize: number;
  /** Where maxBatchSize was measured on this machine (ONNX Runtime, none given): the probe. */
  probe?: BatchProbe;
  maxQueueDelayMs: number;
  preferredBatchSizes: readonly number[];
  maxQueueSize: number;
  priorityLevels: number;
}

export interface CacheInfo {
  status: 'disabled' | 'hit' | 'miss' | 'rebuilt' | 'uncacheable';
  key?: string;
  path?: string;
  /** For 'rebuilt' (what was wrong with the entry) and 'uncacheable'. */
  reason?: string;
  /** Why the build could not be stored (a read-only or full disk, no permission): the engine serves, the next build builds again. */
  storeError?: string;
  /** A 'hit' after waiting for another process's build of the same entry: how long, and whose (from its lock file). */
  waited?: { ms: number; pid?: number; host?: string };
}

/** A tensor over memory the engine hands out for reuse (engine.allocate(), engine.allocateOutputs()). */
export interface HostTensor {
  name: string;
  type: TensorDtype;
  dims: number[];
  data: TypedArray;
  /** The same memory as a Buffer. */
  buffer: Buffer;
}

/** Where the build's CPU-heavy steps ran: 'worker', or 'JS thread' with the reason (build-thread.ts). */
export interface BuildThreads {
  /** The INT8 quantizer, where this build quantized (not on a cache hit). */
  quantization?: BuildThread;
  /** The graph rewrites for ONNX Runtime. */
  graphRewrites?: BuildThread;
}

export interface FullStats extends EngineStats {
  /** Instances started in place of ones that ended unexpectedly (ONNX Runtime workers that exited). */
  instanceRestarts: number;
  /**
   * On TensorRT, the backend's own counters: `calls`, `zeroCopyInputs` and `stagedInputs`
   * (inputs read by DMA from pinned Buffers, or copied once into pinned staging),
   * `graphLaunches`, `graphFallbacks`, `completionsSpun` and `completionsBlocked` (see
   * `spinWaitUs`), `deviceMemoryUsed` (bytes, the whole device's). On ONNX Runtime: `runs`
   * (batches sent to the workers), `mailboxRuns` (those that reached a worker polling for
   * its next run through shared memory rather than a message), `mailboxRunsInPlace`
   * (those of them onnxruntime read where they lay, without a copy in the worker),
   * `slotRuns` (those written into shared memory for a worker that was busy or asleep,
   * announced by a message; where the worker rings the addon's doorbell),
   * `boxResults` (results that came back through shared memory rather than a message) and
   * `sessionRunMs` (the workers' time inside onnxruntime's run(), summed: their busy time).
   */
  backendCounters?: Readonly<Record<string, number>>;
  backend: BackendInfo;
  batching: BatchingInfo;
  cache: CacheInfo;
}

export class Engine {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly backend: BackendInfo;
  readonly batching: BatchingInfo;
  readonly cache: CacheInfo;
  /** The quantizer's report, for precision 'int8' built here (undefined on a cache hit). */
  readonly quantization: QuantizeReport | undefined;
  /** Where quantization and graph rewrites ran (off the JS thread where they could). */
  readonly buildThreads: BuildThreads;

  private readonly impl: Backend;
  private readonly batcher: DynamicBatcher;
  private readonly normalizer: InputNormalizer;
  private readonly collector: StatsCollector;
  private readonly metricsRegistry: TritonMetrics;
  private readonly shapes: Readonly<Record<string, ShapeRange>>;
  private disposed: Promise<void> | undefined;

  private constructor(init: {
    impl: Backend;
    backend: BackendInfo;
    batching: BatchingInfo;
    cache: CacheInfo;
    quantization: QuantizeReport | undefined;
    buildThreads: BuildThreads;
    options: EngineOptions;
    name: string;
    buildStartedAt: number;
  }) {
    const { impl, options } = init;
    this.impl = impl;
    this.inputs = impl.inputs;
    this.outputs = impl.outputs;
    this.backend = init.backend;
    // Read live: ONNX Runtime's workers leave the background priority where they starve at it.
    if (impl.threadPolicy !== undefined) Object.defineProperty(this.backend, 'threadPolicy', { get: () => impl.threadPolicy, enumerable: true });
    this.batching = init.batching;
    this.cache = init.cache;
    this.quantization = init.quantization;
    this.buildThreads = init.buildThreads;
    this.shapes = options.shapes ?? {};
    let batcher: DynamicBatcher | undefined;
    this.metricsRegistry = new TritonMetrics({
      model: init.name,
      pendingNow: () => batcher?.pending ?? 0,
      backendCounters: () => impl.stats?.(),
      flush: () => batcher?.flush(),
      shared: options.metricsRegistry,
    });
    this.collector = new StatsCollector(init.buildStartedAt, this.metricsRegistry);
    this.normalizer = new InputNormalizer(
      impl.inputs.map((info) => ({ info, range: this.shapes[info.name], dimParams: impl.inputDimParams?.[info.name] })),
      init.batching.batchAxis,
    );
    const levels = options.priorityLevels ?? 1;
    batcher = new DynamicBatcher(
      {
        maxBatchSize: init.batching.maxBatchSize,
        maxQueueDelayMs: init.batching.maxQueueDelayMs,
        preferredBatchSizes: init.batching.preferredBatchSizes,
        maxQueueSize: init.batching.maxQueueSize,
        defaultTimeoutMs: options.defaultTimeoutMs,
        priorityLevels: levels,
        defaultPriority: options.defaultPriority ?? levels,
        maxInFlight: impl.instances,
        pipelineUnderMs: options.pipelineShortRuns === true ? PIPELINE_UNDER_MS : 0,
        // With maxBatchSize 1 a request of several rows still runs split, a row a run.
        batchAxis: init.batching.batchAxis,
      },
      (batch, hint) => (impl.runBatch ? impl.runBatch(batch, hint) : impl.runHinted ? impl.runHinted(batch.merged(), hint) : impl.run(batch.merged())),
      this.collector,
      (outputs) => impl.release?.(outputs),
    );
    this.batcher = batcher;
  }

  /**
   * Builds an engine from an ONNX model (a path, a file: URL or its bytes): picks the backend,
   * quantizes for 'int8', loads from or stores into the cache, starts the backend.
   */
  static async build(model: ModelSource, given: EngineOptions = {}): Promise<Engine> {
    const buildStartedAt = performance.now();
    await checkOptions(given);
    // Checked between the build's steps: an abort takes effect at the next one.
    const aborted = (): void => throwIfAborted(given.signal, 'Engine.build');
    aborted();
    const options: EngineOptions = given.onProgress ? { ...given, onProgress: guardProgress(given.onProgress) } : given;
    const source = modelSource(model);
    let bytes: Uint8Array;
    if (typeof source === 'string') {
      try {
        bytes = await readFile(source);
      } catch (e) {
        throw new TensorrtNodeError('EMODEL', `cannot read the model at ${source}: ${(e as Error).message}`, { path: source });
      }
    } else {
      bytes = source;
    }
    bytes = await inlineExternalData(bytes, typeof source === 'string' ? dirname(source) : undefined);
    const precision = options.precision ?? 'fp32';
    const selection = await selectBackend(options.backend ?? 'auto');
    aborted();
    if (precision === 'fp16') {
      // Networks are strongly typed (TensorRT 10/11): the ONNX types are the precision, and
      // this package has no FP16 conversion yet; ONNX Runtime's CPU kernels have no FP16 path.
      throw new TensorrtNodeError('EINPUT', `option 'precision': 'fp16' is not supported on ${selection.name}: give an FP16 ONNX model with precision 'fp32', or use 'int8'`, {
        tensor: 'precision', expected: "'fp32' | 'int8'", received: 'fp16',
      });
    }

    // The artifact the backend runs: the model itself, or its Q/DQ INT8 version, with the
    // graph rewrites for ONNX Runtime applied; cached with their counts, so a hit does neither.
    const version = onnxruntimeVersion();
    const rewrites = selection.name === 'onnxruntime' && options.graphRewrites !== false;
    let cache: CacheInfo = { status: 'disabled' };
    let artifact: Uint8Array | undefined;
    let graphRewrites: GraphRewrites | undefined;
    let quantization: QuantizeReport | undefined;
    const buildThreads: BuildThreads = {};
    let key: string | undefined;
    if (options.cacheDir) {
      const calibration = hashDataset(options.calibration);
      const validation = options.validation === undefined ? 'none' : hashDataset(options.validation.data);
      const metric = options.validation?.metric;
      const metricName = typeof metric === 'function' ? `fn:${metric.toString()}` : metric ?? 'default';
      const lazy = precision === 'int8' && (calibration === undefined || validation === undefined) && !options.cacheKey;
      if (lazy) {
        cache = { status: 'uncacheable', reason: 'calibration or validation data is a lazy iterable: give `cacheKey` to name it' };
      } else {
        key = cacheKey({
          modelHash: await hashBytes(bytes),
          options: {
            precision,
            quantization: precision === 'int8' ? { method: DEFAULT_INT8_METHOD, ...options.quantization, maxAccuracyDrop: options.maxAccuracyDrop, calibration, validation, metricName } : null,
            cacheKey: options.cacheKey ?? null,
            graphRewrites: rewrites ? REWRITES_VERSION : null,
          },
          backend: 'onnxruntime',
          backendVersion: version,
        });
        const found = await loadArtifact(options.cacheDir, key, rewrites);
        if (found.status === 'hit') {
          artifact = found.artifact;
          graphRewrites = found.graphRewrites;
          cache = { status: 'hit', key, path: found.path };
        } else if (found.status === 'corrupt') {
          process.emitWarning(`tensorrt-node: corrupt engine cache entry ${found.path} (${found.reason}); rebuilding`, { code: 'ECACHE' });
          await cacheWrite('removing the corrupt entry', removeEntry(options.cacheDir, key, 'onnx.bin'));
          cache = { status: 'rebuilt', key, path: found.path, reason: found.reason };
        } else {
          cache = { status: 'miss', key, path: found.path };
        }
      }
    }
    aborted();
    if (!artifact) {
      type Made = { artifact: Uint8Array; graphRewrites: GraphRewrites | undefined; storeError?: string };
      const make = async (): Promise<Made> => {
        const prepared = await prepareModel(bytes, options);
        let made = prepared.bytes;
        let counts: GraphRewrites | undefined;
        quantization = prepared.quantization;
        if (prepared.thread) buildThreads.quantization = prepared.thread;
        if (rewrites) {
          const rewritten = await rewriteOffThread(made);
          made = rewritten.bytes;
          counts = rewritten.rewrites;
          buildThreads.graphRewrites = rewritten.thread;
        }
        if (!options.cacheDir || !key) return { artifact: made, graphRewrites: counts };
        const meta = { precision, backend: 'onnxruntime', backendVersion: version, ...(counts ? { graphRewrites: counts } : {}) };
        const storeError = await cacheWrite('storing the model', storeEntry(options.cacheDir, key, made, meta, 'onnx.bin'));
        return { artifact: made, graphRewrites: counts, ...(storeError !== undefined ? { storeError } : {}) };
      };
      if (options.cacheDir && key) {
        // Processes sharing the folder build it once: the others wait for the entry and load it.
        const dir = options.cacheDir;
        const once = await buildOnce<Made>(cachePath(dir, key, 'onnx.bin'), async () => {
          const f = await loadArtifact(dir, key, rewrites);
          return f.status === 'hit' ? { artifact: f.artifact, graphRewrites: f.graphRewrites } : undefined;
        }, make, { signal: options.signal, onWait: () => options.onProgress?.({ stage: 'cache:wait' }) });
        ({ artifact, graphRewrites } = once.value);
        if (once.value.storeError !== undefined) cache = { ...cache, storeError: once.value.storeError };
        if (!once.built) cache = { status: 'hit', key, path: cachePath(dir, key, 'onnx.bin'), ...(once.waited ? { waited: waitedInfo(once.waited) } : {}) };
      } else {
        ({ artifact, graphRewrites } = await make());
      }
    }
    aborted();
    const impl: Backend =
      selection.name === 'tensorrt'
        ? await buildTensorrt(artifact, precision, options)
        : await createOnnxruntimeBackend(artifact, {
            ...(options.instances !== undefined ? { instances: options.instances } : {}),
            ...(options.threadsPerInstance !== undefined ? { threadsPerInstance: options.threadsPerInstance } : {}),
            ...(options.spinning !== undefined ? { spinning: options.spinning } : {}),
            ...(options.backgroundThreads !== undefined ? { backgroundThreads: options.backgroundThreads } : {}),
            ...(precision === 'int8' ? { sessionConfig: QDQ_SESSION_CONFIG } : {}),
          });
    try {
      aborted();
      checkShapes(impl.inputs, options.shapes, impl.inputDimParams);
      const batching = await probedBatching(impl, batchingInfo(impl, options), options, key);
      const loneRuns = impl instanceof OnnxruntimeBackend
        ? options.wideLoneRuns === false
          ? { threads: impl.threadsPerInstance, reason: 'wideLoneRuns: false' }
          : await cachedLoneRuns(impl, batching, options, key)
        : undefined;
      aborted();
      const name = options.name ?? (typeof model === 'string' ? basename(model).replace(/\.onnx$/i, '') : 'model');
      const engine = new Engine({
        impl,
        backend: {
          name: impl.name,
          version: impl.version,
          reason: selection.reason,
          instances: impl.instances,
          ...(impl.threadsPerInstance !== undefined ? { threadsPerInstance: impl.threadsPerInstance } : {}),
          ...(graphRewrites ? { graphRewrites } : {}),
          ...(loneRuns ? { loneRuns } : {}),
        },
        batching,
        cache,
        quantization,
        buildThreads,
        options,
        name,
        buildStartedAt,
      });
      engine.collector.buildMs = performance.now() - buildStartedAt;
      return engine;
    } catch (e) {
      await impl.dispose();
      throw e;
    }
  }

  /**
   * Runs one request: a Buffer or typed array for a single-input model, or a record
   * of tensors. Requests merge with others into batches; the result holds this
   * request's rows only.
   */
  infer(input: InferInput, options: InferOptions = {}): Promise<InferResult> {
    const closed = this.batcher.closedError();
    if (closed) {
      this.collector.rejected(closed.code);
      return Promise.reject(closed);
    }
    let feeds;
    let into: RequestOptions | undefined;
    try {
      if (options === null || typeof options !== 'object') throw inputError('options', 'an object of infer options', kindOf(options), 'argument');
      checkOptionNames(options, INFER_OPTION_NAMES, 'infer');
      feeds = this.normalizer.normalize(input);
      if (options.outputs !== undefined) {
        const memory = checkDestinations(options.outputs, this.outputs, feeds.batch, this.batching.batchAxis);
        const finishCopies = this.outputs.every((o) => o.name in memory);
        into = { finish: (r) => writeDestinations(r as InferResult, memory), finishCopies, joinInto: memory };
      }
    } catch (e) {
      if (e instanceof TensorrtNodeError) this.collector.rejected(e.code);
      return Promise.reject(e);
    }
    return this.batcher.submit(feeds.tensors, feeds.batch, into ? { ...options, ...into } : options) as Promise<InferResult>;
  }

  /**
   * Input tensors over memory to fill and pass to infer() again and again, shaped
   * for `batch` rows (dynamic axes beyond the batch from `shapes`' opt). The memory
   * comes from the addon's host pool (pinned where a CUDA device is usable), or
   * from the JS heap where the addon cannot load.
   */
  allocate(batch = 1): Record<string, HostTensor> {
    const closed = this.batcher.closedError();
    if (closed) throw closed;
    checkBatchArgument(batch);
    const out: Record<string, HostTensor> = {};
    for (const info of this.inputs) {
      const range = this.shapes[info.name];
      const dims = bareDims(info, range, this.batching.batchAxis);
      if (this.batching.batchAxis) dims[0] = batch;
      if (dims.some((d) => d < 0)) {
        throw inputError(info.name, `a 'shapes' option fixing the dynamic axes of ${JSON.stringify(info.shape)}`, 'no shape to allocate for');
      }
      out[info.name] = hostTensor(info.name, info.dtype, dims);
    }
    return out;
  }

  /**
   * Memory for results, to pass to infer() as `outputs` again and again: one tensor per
   * output whose dims beyond the batch are fixed, shaped for `batch` rows, from the same
   * host pool as allocate(). An output of data-dependent shape is left out: pass memory
   * large enough for it yourself.
   */
  allocateOutputs(batch = 1): Record<string, HostTensor> {
    const closed = this.batcher.closedError();
    if (closed) throw closed;
    checkBatchArgument(batch);
    const out: Record<string, HostTensor> = {};
    for (const info of this.outputs) {
      const dims = info.shape.map((d, i) => (i === 0 && this.batching.batchAxis ? batch : d));
      if (dims.some((d) => d < 0)) continue;
      out[info.name] = hostTensor(info.name, info.dtype, dims);
    }
    return out;
  }

  stats(): FullStats {
    this.batcher.flush();
    const backendCounters = this.impl.stats?.();
    return {
      ...this.collector.snapshot(this.batcher.pending, this.batcher.executing),
      instanceRestarts: this.impl.restarts ?? 0,
      ...(backendCounters ? { backendCounters } : {}),
      backend: this.backend,
      batching: this.batching,
      cache: this.cache,
    };
  }

  /** Prometheus text format, Triton's metric names. */
  metrics(): Promise<string> {
    return this.metricsRegistry.text();
  }

  /**
   * Takes no more requests (EDISPOSED), waits for running ones and frees the backend. What
   * is queued is rejected with EDISPOSED at once, or with `drainTimeoutMs` runs first for up
   * to that long (a service's graceful shutdown). A later call may end a drain sooner
   * (`dispose()`: now); every call returns the same promise.
   */
  dispose(options: DisposeOptions = {}): Promise<void> {
    let drainTimeoutMs: number;
    try {
      if (options === null || typeof options !== 'object') throw inputError('options', 'an object of dispose options', kindOf(options), 'argument');
      checkOptionNames(options, DISPOSE_OPTION_NAMES, 'dispose');
      drainTimeoutMs = options.drainTimeoutMs ?? 0;
      if (typeof drainTimeoutMs !== 'number' || !(drainTimeoutMs >= 0)) {
        throw inputError('drainTimeoutMs', 'a number of milliseconds ≥ 0 (Infinity: until all is done)', String(drainTimeoutMs), 'option');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const closed = this.batcher.close(drainTimeoutMs);
    this.disposed ??= closed.then(() => this.impl.dispose()).finally(() => this.metricsRegistry.leaveShared());
    return this.disposed;
  }

  /** `await using engine = await Engine.build(...)` disposes the engine when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * The TensorRT backend from the (quantized) ONNX artifact, its serialized plan
 * cached under a key with TensorRT's version and build and the GPU's name and
 * compute capability (DESIGN.md decision 11).
 */
async function buildTensorrt(onnx: Uint8Array, precision: string, options: EngineOptions): Promise<Backend> {
  const progress = options.onProgress;
  const trtOptions: TensorrtBackendOptions = {
    ...(options.shapes ? { shapes: options.shapes } : {}),
    ...(options.instances !== undefined ? { instances: options.instances } : {}),
    ...(options.maxBatchSize !== undefined ? { maxBatchSize: options.maxBatchSize } : {}),
    ...(options.device !== undefined ? { device: options.device } : {}),
    ...(options.cudaGraphs !== undefined ? { cudaGraphs: options.cudaGraphs } : {}),
    ...(options.spinWaitUs !== undefined ? { spinWaitUs: options.spinWaitUs } : {}),
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    ...(progress ? { onProgress: (e: TensorrtBuildProgress) => progress({ stage: `tensorrt:${e.phase}`, done: e.step, total: e.steps }) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  if (!options.cacheDir) return createTensorrtBackend(onnx, trtOptions);
  // The plan is built for the first device's GPU (the others load it).
  const parts = tensorrtCacheKeyParts(deviceList(options.device)[0]);
  const key = cacheKey({
    modelHash: await hashBytes(onnx),
    options: { precision, shapes: options.shapes ?? null, instances: options.instances ?? 1, maxBatchSize: options.maxBatchSize ?? null },
    backend: 'tensorrt',
    backendVersion: String(parts.tensorrtVersion),
    backendParts: parts,
  });
  const dir = options.cacheDir;
  const found = await loadEntry(dir, key, 'plan.bin');
  if (found.status === 'hit') return createTensorrtBackend(onnx, { ...trtOptions, plan: found.payload });
  if (found.status === 'corrupt') {
    process.emitWarning(`tensorrt-node: corrupt TensorRT plan cache entry ${found.path} (${found.reason}); rebuilding`, { code: 'ECACHE' });
    await cacheWrite('removing the corrupt plan', removeEntry(dir, key, 'plan.bin'));
  }
  // One process builds the plan (minutes for a large model, on the same GPU); the others load it.
  const once = await buildOnce<{ backend?: Backend; plan?: Uint8Array }>(cachePath(dir, key, 'plan.bin'), async () => {
    const f = await loadEntry(dir, key, 'plan.bin');
    return f.status === 'hit' ? { plan: f.payload } : undefined;
  }, async () => {
    const backend = await createTensorrtBackend(onnx, trtOptions);
    await cacheWrite('storing the TensorRT plan', storeEntry(dir, key, backend.plan, { backend: 'tensorrt', ...parts }, 'plan.bin'));
    return { backend };
  }, { signal: options.signal, onWait: () => progress?.({ stage: 'cache:wait' }) });
  return once.value.backend ?? createTensorrtBackend(onnx, { ...trtOptions, plan: once.value.plan });
}

/**
 * The caller's progress callback, made unable to fail the build: it is called from the
 * quantizer and from TensorRT's builder thread (through a thread-safe function, where a
 * throw would be an uncaught exception). The first throw is reported as a warning.
 */
function guardProgress(fn: NonNullable<EngineOptions['onProgress']>): NonNullable<EngineOptions['onProgress']> {
  let warned = false;
  return (event) => {
    try {
      fn(event);
    } catch (e) {
      if (warned) return;
      warned = true;
      process.emitWarning(`tensorrt-node: the onProgress callback threw (${(e as Error)?.message ?? String(e)}); the build goes on`, { code: 'EPROGRESS' });
    }
  };
}

function checkBatchArgument(batch: unknown): void {
  if (!Number.isInteger(batch) || (batch as number) < 1) throw inputError('batch', 'a positive integer', String(batch), 'argument');
}

function hostTensor(name: string, dtype: TensorDtype, dims: number[]): HostTensor {
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = count * elementBytes(dtype);
  const received = `${bytes} bytes for ${fmtShape(dims)} ${dtype}`;
  if (bytes > bufferConstants.MAX_LENGTH) throw inputError(name, `at most ${bufferConstants.MAX_LENGTH} bytes (the largest Buffer)`, received, 'tensor');
  const buffer = hostBuffer(bytes, name, received);
  return { name, type: dtype, dims, buffer, data: typedView(dtype, buffer.buffer, buffer.byteOffset, count) };
}

function hostBuffer(bytes: number, name: string, received: string): Buffer {
  try {
    const b = allocHost(bytes);
    b.fill(0);
    return b;
  } catch {
    try {
      return Buffer.alloc(bytes);
    } catch (e) {
      // Node 22 raised the largest Buffer to 2^53 - 1 bytes, so a size under that limit can
      // still fail here, with V8's bare RangeError.
      throw inputError(name, `a size this process can allocate (${(e as Error).message})`, received, 'tensor');
    }
  }
}

function batchingInfo(impl: Backend, options: EngineOptions): BatchingInfo {
  const shapes = options.shapes ?? {};
  const fixed = [...impl.inputs, ...impl.outputs].find((t) => {
    if (t.shape.length === 0) return true;
    const range = shapes[t.name];
    const axis0 = range ? (Array.isArray(range) ? (range as readonly number[])[0] : undefined) : undefined;
    return t.shape[0]! >= 0 || (axis0 !== undefined && axis0 >= 0);
  });
  const requested = options.maxBatchSize;
  const common = {
    maxQueueDelayMs: options.maxQueueDelayMs ?? 0,
    preferredBatchSizes: options.preferredBatchSizes ?? [],
    maxQueueSize: options.maxQueueSize ?? Number.POSITIVE_INFINITY,
    priorityLevels: options.priorityLevels ?? 1,
  };
  if (fixed) {
    return {
      enabled: false,
      batchAxis: false,
      reason: `${impl.inputs.includes(fixed) ? 'input' : 'output'} '${fixed.name}' has no dynamic batch axis (shape ${JSON.stringify(fixed.shape)}): requests run one at a time, unbatched`,
      maxBatchSize: 1,
      ...common,
      preferredBatchSizes: [],
    };
  }
  // On the CPU, per-item speed stops improving, then falls, once a batch's activations
  // leave the caches: 8 rows per intra-op thread (bench/engine-batch-size.ts, docs/engine.md);
  // GPUs keep gaining up to larger batches.
  let maxBatchSize = requested ?? (impl.name === 'onnxruntime' ? Math.min(64, 8 * (impl.threadsPerInstance ?? 1)) : 64);
  // A shape range caps the batch: a merged batch must stay within every input's max on axis 0.
  for (const [name, range] of Object.entries(shapes)) {
    const max = Array.isArray(range) ? undefined : (range as { max: readonly number[] }).max[0];
    if (max === undefined || max < 1) continue;
    if (requested !== undefined && requested > max) {
      throw inputError('maxBatchSize', `at most ${max}, the max of shapes.${name} on axis 0`, String(requested), 'option');
    }
    maxBatchSize = Math.min(maxBatchSize, max);
  }
  if (maxBatchSize === 1) return { enabled: false, batchAxis: true, reason: 'maxBatchSize is 1: requests do not merge, and one of several rows runs a row at a time', maxBatchSize: 1, ...common };
  return { enabled: true, batchAxis: true, reason: 'every input and output has a dynamic axis 0: requests merge along it', maxBatchSize, ...common };
}

/**
 * On ONNX Runtime, with a batch axis: first whether axis 0 is one (checkBatchAxis, kept in
 * the engine cache), also where the sizes are given, since sizes given for a model whose rows
 * mix along it would give wrong results, not slower ones; then, with neither maxBatchSize nor
 * preferred sizes given, maxBatchSize measured for this model on this machine
 * (batch-probe.ts), up to the default. Where the engine is cached, so is the probe, under a
 * key with the machine's CPU and the instances' threads; a later build reads it instead of
 * probing again.
 */
async function probedBatching(impl: Backend, batching: BatchingInfo, options: EngineOptions, engineKey: string | undefined): Promise<BatchingInfo> {
  const runTimed = impl.runTimed?.bind(impl);
  if (impl.name !== 'onnxruntime' || !runTimed || !batching.batchAxis || batching.maxBatchSize < 2) return batching;
  const cap = batching.maxBatchSize;
  const given = options.maxBatchSize !== undefined ? `maxBatchSize ${options.maxBatchSize}` : options.preferredBatchSizes?.length ? `preferredBatchSizes [${options.preferredBatchSizes.join(', ')}]` : undefined;
  const item = probeItemDims(impl.inputs, options.shapes ?? {});
  if (typeof item === 'string') return given ? batching : { ...batching, reason: `${batching.reason}; maxBatchSize ${cap} by default, not measured: ${item}` };
  // On single-threaded instances, by the worker's CPU clock: busy processes beside a
  // build (or workers starved at background priority) lengthened larger batches' wall time
  // more than small ones' and made the probe choose smaller batches, then cached.
  const run = (f: Feeds) => runTimed(f, { cpuTime: (impl.threadsPerInstance ?? 1) === 1 });
  let probe: BatchProbe;
  let notKept = '';
  try {
    const axis = await machineMeasurement(impl, options, engineKey, {
      name: 'batch axis check',
      ext: 'axis.bin',
      parts: { check: 'batch axis', item, graphRewrites: options.graphRewrites ?? true },
      parse: parseAxisCheck,
      loadFree: true,
    }, async () => ({ notBatch: (await checkBatchAxis(run, impl.inputs, item)) ?? null }));
    if (axis.value.notBatch !== null) {
      if (given) process.emitWarning(`tensorrt-node: ${given} was given, but axis 0 is no batch axis: ${axis.value.notBatch}; requests run one at a time, unbatched`, { code: 'EMODEL' });
      return {
        ...batching,
        enabled: false,
        batchAxis: false,
        maxBatchSize: 1,
        preferredBatchSizes: [],
        reason: `axis 0 is open but is no batch axis: ${axis.value.notBatch} (${axis.cached ? 'found on this machine by an earlier build' : 'found at this build, two distinct rows run alone and merged'}): requests run one at a time, unbatched`,
      };
    }
    if (given) return batching;
    const { value, cached, busy } = await machineMeasurement(impl, options, engineKey, {
      name: 'batch probe',
      ext: 'batch.bin',
      parts: { probe: 'maxBatchSize', near: 'measured again', cap, item, instances: impl.instances, threads: impl.threadsPerInstance ?? 1, spinning: options.spinning ?? true, graphRewrites: options.graphRewrites ?? true },
      parse: parseProbe,
    }, () => probeBatchSize(run, impl.inputs, item, cap, impl.instances));
    probe = { ...value, source: cached ? 'cache' : 'measured' };
    notKept = busy ? ', beside busy processes (not kept in the cache)' : '';
  } catch (e) {
    if (e instanceof TensorrtNodeError && e.code === 'EABORTED') throw e; // the build's signal, in a wait for another's probe
    // Zeros and a sine wave for every input: a model that refuses them may still serve real
    // requests, so the build goes on, but says so where it cannot go unseen.
    const message = (e as Error).message;
    process.emitWarning(`tensorrt-node: the model failed a run of one row at build, on synthetic inputs (${message}); requests may fail the same way`, { code: 'EMODEL' });
    return given ? batching : { ...batching, reason: `${batching.reason}; maxBatchSize ${cap} by default, not measured: the probe's run failed (${message})` };
  }
  const costs = Object.entries(probe.perRowMs).map(([rows, ms]) => `${rows}: ${ms.toFixed(2)}`).join(', ');
  const failed = probe.failed ? `; a batch of ${probe.failed.rows} rows failed (${probe.failed.message})` : '';
  const why = `the largest batch within 5 % of the best time per row ${probe.source === 'cache' ? 'measured on this machine by an earlier build' : `measured at this build${notKept}`} (ms a row at ${costs}${failed})`;
  if (probe.chosen === 1) return { ...batching, enabled: false, maxBatchSize: 1, probe, reason: `maxBatchSize 1, ${why}: requests do not merge, and one of several rows runs a row at a time` };
  return { ...batching, maxBatchSize: probe.chosen, probe, reason: `${batching.reason}, up to ${probe.chosen} rows, ${why}` };
}

/**
 * chooseLoneRuns, its choice kept in the engine cache beside the batch probe: a later build
 * makes the wide session where it was kept, and neither makes nor times it where it was not,
 * which took the cached builds of the PP-OCRv4 detector and recognizer from 432 and 504 ms
 * to 214 and 276 ms (bench/engine-build-stall.ts).
 */
async function cachedLoneRuns(impl: OnnxruntimeBackend, batching: BatchingInfo, options: EngineOptions, engineKey: string | undefined): Promise<LoneRuns> {
  const rowMs = batching.probe?.perRowMs[1];
  const item = probeItemDims(impl.inputs, options.shapes ?? {});
  // Kept only with a probe to key it by, and only where it was measured.
  const key = batching.probe ? engineKey : undefined;
  const { value, cached, busy } = await machineMeasurement(impl, options, key, {
    name: 'lone-run choice',
    ext: 'lone.bin',
    parts: { choice: 'loneRuns', rowMs, item, instances: impl.instances, threads: impl.threadsPerInstance, spinning: options.spinning ?? true },
    parse: parseLoneRuns,
    keep: (v) => v.oneThreadMs !== undefined,
  }, () => chooseLoneRuns(impl, rowMs, item));
  if (!cached) return busy && value.oneThreadMs !== undefined ? { ...value, reason: `${value.reason} (timed beside busy processes: not kept in the cache)` } : value;
  const reason = `${value.reason} (measured by an earlier build)`;
  if (value.threads === impl.threadsPerInstance) return { ...value, reason };
  try {
    await impl.addWide(value.threads);
    return { ...value, reason };
  } catch (e) {
    return { threads: impl.threadsPerInstance, reason: `the ${value.threads}-thread session could not be made: ${(e as Error).message}` };
  }
}

/**
 * A measurement of this model on this machine (the batch probe, the lone-run choice), kept
 * in the engine cache under the engine's key, `parts`, the CPU model and the cores: read back
 * where an earlier build stored it, else measured, and stored where `keep` allows and other
 * processes left the machine quiet meanwhile (machine-load.ts, over /proc/stat:
 * a figure taken beside busy processes serves this build, and the next one measures
 * again). A corrupt entry is reported (ECACHE) and measured again. Without a cache it is
 * measured each time.
 */
async function machineMeasurement<T>(
  impl: Backend,
  options: EngineOptions,
  engineKey: string | undefined,
  // loadFree: a finding that other work on the machine cannot skew, kept even beside it.
  entry: { name: string; ext: string; parts: Record<string, unknown>; parse(payload: Uint8Array): T | undefined; keep?(value: T): boolean; loadFree?: boolean },
  measure: () => Promise<T>,
): Promise<{ value: T; cached: boolean; busy?: true }> {
  const dir = options.cacheDir;
  const key = dir && engineKey
    ? cacheKey({ modelHash: engineKey, options: { ...entry.parts, cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism() }, backend: impl.name, backendVersion: impl.version })
    : undefined;
  type Measured = { value: T; cached: boolean; busy?: true };
  const measureAndKeep = async (): Promise<Measured> => {
    const before = machineSample();
    const value = await measure();
    const after = machineSample();
    const quiet = !before || !after || quietBetween(before, after, availableParallelism());
    if (dir && key && (quiet || entry.loadFree) && (entry.keep?.(value) ?? true)) {
      await cacheWrite(`storing the ${entry.name}`, storeEntry(dir, key, Buffer.from(JSON.stringify(value)), { measured: entry.name }, entry.ext));
    }
    return { value, cached: false, ...(quiet ? {} : { busy: true }) };
  };
  if (!dir || !key) return measureAndKeep();
  const found = await loadEntry(dir, key, entry.ext);
  const stored = found.status === 'hit' ? entry.parse(found.payload) : undefined;
  if (stored !== undefined) return { value: stored, cached: true };
  if (found.status !== 'miss') {
    process.emitWarning(`tensorrt-node: corrupt ${entry.name} cache entry ${found.path} (${found.status === 'corrupt' ? found.reason : `not a ${entry.name}`}); measuring again`, { code: 'ECACHE' });
    await cacheWrite(`removing the corrupt ${entry.name}`, removeEntry(dir, key, entry.ext));
  }
  // Processes building the same engine at once measure one at a time (each would see the
  // others as busy processes), and the later ones take the first's kept measurement.
  const once = await buildOnce<Measured>(cachePath(dir, key, entry.ext), async () => {
    const f = await loadEntry(dir, key, entry.ext);
    const value = f.status === 'hit' ? entry.parse(f.payload) : undefined;
    return value === undefined ? undefined : { value, cached: true };
  }, measureAndKeep, { signal: options.signal, onWait: () => options.onProgress?.({ stage: 'cache:wait' }) });
  return once.value;
}

/** The cached artifact (the model as the backend runs it), checked; with rewrites, their counts. */
async function loadArtifact(dir: string, key: string, rewrites: boolean): Promise<
  | { status: 'hit'; path: string; artifact: Uint8Array; graphRewrites: GraphRewrites | undefined }
  | { status: 'miss'; path: string }
  | { status: 'corrupt'; path: string; reason: string }
> {
  const found = await loadEntry(dir, key, 'onnx.bin');
  if (found.status !== 'hit') return found;
  if (!rewrites) return { status: 'hit', path: found.path, artifact: found.payload, graphRewrites: undefined };
  const counts = found.meta.graphRewrites;
  if (!isGraphRewrites(counts)) return { status: 'corrupt', path: found.path, reason: 'no graph rewrite counts in the entry' };
  return { status: 'hit', path: found.path, artifact: found.payload, graphRewrites: counts };
}

function waitedInfo(waited: { ms: number; holder: LockHolder | undefined }): NonNullable<CacheInfo['waited']> {
  return { ms: waited.ms, ...(waited.holder ? { pid: waited.holder.pid, host: waited.holder.host } : {}) };
}

/**
 * A write to the engine cache that fails (a read-only or full disk, no permission) costs
 * the next build its hit, not this build: reported as an ECACHE warning. Returns the
 * failure's message, or undefined.
 */
async function cacheWrite(what: string, write: Promise<unknown>): Promise<string | undefined> {
  try {
    await write;
    return undefined;
  } catch (e) {
    const message = (e as Error).message;
    process.emitWarning(`tensorrt-node: the engine cache failed ${what} (${message}); the engine serves without it`, { code: 'ECACHE' });
    return message;
  }
}

/**
 * Caps on threads an engine starts: each instance is a thread (a worker with a session of
 * its own, or a TensorRT context), each of its threads an ONNX Runtime thread. A typo such as
 * `instances: 1e6` ended the process (V8: "Failed to reserve virtual memory for CodeRange"),
 * and `threadsPerInstance: 1e6` grew it by ~70 MB a second inside ONNX Runtime's session
 * creation without finishing; both are EINPUT now.
 */
const MAX_INSTANCES = 256;
const MAX_THREADS_PER_INSTANCE = 256;

async function checkOptions(o: EngineOptions): Promise<void> {
  if (o === null || typeof o !== 'object') throw inputError('options', 'an object', String(o), 'argument');
  checkOptionNames(o, ENGINE_OPTION_NAMES, 'Engine.build');
  if (o.quantization !== undefined) {
    if (o.quantization === null || typeof o.quantization !== 'object') throw inputError('quantization', '{ method?, percentile?, exclude? }', kindOf(o.quantization), 'option');
    checkOptionNames(o.quantization, QUANTIZATION_OPTION_NAMES, "Engine.build's quantization");
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw inputError('signal', 'an AbortSignal', kindOf(o.signal), 'option');
  if (o.cacheDir !== undefined) {
    if (typeof o.cacheDir !== 'string' || o.cacheDir === '') throw inputError('cacheDir', 'a folder path', kindOf(o.cacheDir), 'option');
    // A missing folder is made at the first store; an existing path must be a folder.
    const s = await stat(o.cacheDir).catch(() => undefined);
    if (s && !s.isDirectory()) throw inputError('cacheDir', 'a folder (or a path to make one at)', `a path to a file: ${o.cacheDir}`, 'option');
  }
  const posInt = (name: keyof EngineOptions, max = Number.MAX_SAFE_INTEGER): void => {
    const v = o[name];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw inputError(name, 'a positive integer', String(v), 'option');
    if (v !== undefined && (v as number) > max) throw inputError(name, `at most ${max}`, String(v), 'option');
  };
  if (o.cudaGraphs !== undefined && typeof o.cudaGraphs !== 'boolean') throw inputError('cudaGraphs', 'a boolean', kindOf(o.cudaGraphs), 'option');
  if (o.pipelineShortRuns !== undefined && typeof o.pipelineShortRuns !== 'boolean') throw inputError('pipelineShortRuns', 'a boolean', kindOf(o.pipelineShortRuns), 'option');
  if (o.metricsRegistry !== undefined && !isMetricsRegistry(o.metricsRegistry)) throw inputError('metricsRegistry', "a prom-client Registry (new Registry(), or prom-client's register)", kindOf(o.metricsRegistry), 'option');
  checkSpinWaitUs(o.spinWaitUs);
  deviceList(o.device);
  posInt('instances', MAX_INSTANCES);
  posInt('threadsPerInstance', MAX_THREADS_PER_INSTANCE);
  posInt('maxBatchSize');
  posInt('priorityLevels');
}
