/**
 * The TensorRT backend: ONNX (float or the quantizer's Q/DQ INT8) -> strongly
 * typed TensorRT engine -> execution contexts on CUDA streams, through the
 * addon's TensorRT module and the provider compiled for the installed major
 * (DESIGN.md decisions 1, 6, 7, 8). Availability is decided here with a code
 * and a reason a person can act on (decision 4, 12).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TensorrtNodeError, inputError, throwIfAborted, type ErrorCode } from '../../errors.js';
import type { NativeBinding, NativeCudaInfo, NativeTensorrtInfo } from '../../native/binding.js';
import { addonState } from '../../native/index.js';
import { ARRAY_OF, type Feeds, type TensorDtype, type TensorInfo, type TensorLike, type TypedArray } from '../../tensor.js';
import type { Backend } from '../types.js';
import {
  type NativeBuildProgress,
  type NativeIoTensor,
  type NativeShapeRange,
  type NativeTensorrtEngine,
  type NativeTensorrtProvider,
  type TensorrtBinding,
  hasTensorrtModule,
} from './native.js';

export type { NativeBuildProgress as TensorrtBuildProgress } from './native.js';

export interface TensorrtAvailability {
  usable: boolean;
  /** Why not: ENOTENSORRT (library, parser or provider missing), ENODEVICE (no usable GPU), ECUDAVERSION (driver too old). */
  code?: 'ENOTENSORRT' | 'ENODEVICE' | 'ECUDAVERSION';
  reason: string;
  /** The loader's decision about libnvinfer (ok, library_not_found, unsupported_major, missing_symbol, ...). */
  loader?: string;
  /** TensorRT library version when one was loaded, e.g. "10.16.0". */
  version?: string;
}

/** What the TensorRT engine cache key depends on beyond the model and options (DESIGN.md decision 11). */
export interface TensorrtCacheKeyParts {
  [key: string]: string | number | boolean;
  tensorrtVersion: string;
  tensorrtBuild: number;
  providerHeaderVersion: number;
  gpuName: string;
  computeCapability: string;
}

/** min/opt/max of one input, or one fixed shape (-1 on axis 0: any batch up to `maxBatchSize`). */
export type TensorrtShapeRange =
  | readonly number[]
  | { readonly min: readonly number[]; readonly opt: readonly number[]; readonly max: readonly number[] };

export interface TensorrtBackendOptions {
  /** Optimization profile: a range for every input with dynamic axes. */
  shapes?: Readonly<Record<string, TensorrtShapeRange>>;
  /**
   * Largest batch (default 64): the profile of an input whose only dynamic axis is 0 and
   * that `shapes` leaves out (or gives as a fixed shape with -1 there) is 1..maxBatchSize,
   * tuned for maxBatchSize (the dynamic batcher's full batches).
   */
  maxBatchSize?: number;
  /** Execution contexts per device (default 1), each with its own stream and buffers. */
  instances?: number;
  /** GPU index, or several: each serves `instances` contexts (default 0). */
  device?: number | readonly number[];
  /** Capture a CUDA graph after the first run of an engine with static shapes (default false). */
  cudaGraphs?: boolean;
  /**
   * How long each instance's completion thread polls a run's event, and for the next run,
   * before it sleeps, in microseconds (default 200): polling answers sooner, sleeping frees
   * the core.
   */
  spinWaitUs?: number;
  /** Where the timing cache persists (tensorrt-timing-<gpu>-<version>.cache). */
  cacheDir?: string;
  /** Builder workspace limit in bytes (default: TensorRT's). */
  workspaceBytes?: number;
  /** Builder optimization level 0-5 (default: TensorRT's, 3). */
  optimizationLevel?: number;
  /** Tiling optimization level (TensorRT >= 10.8; ignored with a warning before). */
  tilingLevel?: number;
  /** A serialized plan from an earlier build (the engine cache): skips the build. */
  plan?: Uint8Array;
  onProgress?: (event: NativeBuildProgress) => void;
  /** Stops a plan build at TensorRT's next step (its progress monitor), with EABORTED. */
  signal?: AbortSignal;
}

/** Reusable pinned I/O buffers: infer() reads and writes them without a host copy. */
export interface TensorrtIoBuffers {
  inputs: Record<string, Buffer>;
  outputs: Record<string, Buffer>;
}

export interface TensorrtBackend extends Backend {
  readonly name: 'tensorrt';
  /** The serialized engine, for the engine cache. */
  readonly plan: Uint8Array;
  /** Pinned buffers sized for each tensor's largest shape. */
  allocate(): TensorrtIoBuffers;
  /** run() writing outputs into the given buffers (from allocate()) instead of new ones. */
  run(feeds: Feeds, outputs?: Readonly<Record<string, Uint8Array>>): Promise<Record<string, TensorLike>>;
  stats(): Record<string, number>;
}

// ---- availability --------------------------------------------------------------------

function versionText(v: number): string {
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}

const CUDA_INSUFFICIENT_DRIVER = 35; // cudaErrorInsufficientDriver

/** The decision itself, from what the addon reports (exported for tests). */
export function decideAvailability(
  cuda: NativeCudaInfo,
  loader: NativeTensorrtInfo,
  provider: NativeTensorrtProvider | null,
): TensorrtAvailability {
  const base = {
    loader: loader.code,
    ...(loader.libraryVersion > 0 ? { version: versionText(loader.libraryVersion) } : {}),
  };
  const trtWords =
    loader.code === 'ok'
      ? provider && !provider.usable
        ? provider.reason
        : `TensorRT ${versionText(loader.libraryVersion)} found`
      : loader.reason;
  if (!cuda.compiled) {
    return {
      ...base,
      usable: false,
      code: 'ENODEVICE',
      reason: `the loaded addon is the cpu variant (built without the CUDA toolkit); TensorRT: ${trtWords}`,
    };
  }
  if (!cuda.driver.libraryFound) {
    return { ...base, usable: false, code: 'ENODEVICE', reason: `no NVIDIA driver (libcuda.so.1 not found); TensorRT: ${trtWords}` };
  }
  if (cuda.error === CUDA_INSUFFICIENT_DRIVER) {
    return {
      ...base,
      usable: false,
      code: 'ECUDAVERSION',
      reason: `the NVIDIA driver (CUDA ${cuda.driverVersion ? versionText(cuda.driverVersion * 10) : 'unknown'}) is older than the addon's CUDA runtime: update the driver or use an older variant`,
    };
  }
  if (cuda.devices.length === 0) {
    return {
      ...base,
      usable: false,
      code: 'ENODEVICE',
      reason: `no usable CUDA device (${cuda.errorName || 'none found'}); TensorRT: ${trtWords}`,
    };
  }
  if (loader.code !== 'ok') return { ...base, usable: false, code: 'ENOTENSORRT', reason: loader.reason };
  if (!provider || !provider.usable) {
    return { ...base, usable: false, code: 'ENOTENSORRT', reason: provider?.reason ?? 'the addon has no TensorRT module' };
  }
  if (!provider.cuda) {
    return { ...base, usable: false, code: 'ENODEVICE', reason: 'the addon was built without CUDA' };
  }
  return {
    ...base,
    usable: true,
    reason: `TensorRT ${versionText(provider.libraryVersion ?? 0)} on ${cuda.devices[0]!.name} (sm_${cuda.devices[0]!.computeCapability.replace('.', '')})`,
  };
}

interface Probed {
  binding: NativeBinding & TensorrtBinding;
  availability: TensorrtAvailability;
  provider: NativeTensorrtProvider;
  cuda: NativeCudaInfo;
}

let probed: Probed | { availability: TensorrtAvailability } | undefined;

function probe(): Probed | { availability: TensorrtAvailability } {
  if (probed) return probed;
  const state = addonState();
  if (!state.loaded) {
    probed = { availability: { usable: false, code: 'ENOTENSORRT', reason: `the native addon is not loaded: ${state.error.message}` } };
    return probed;
  }
  const binding = state.addon.binding;
  const cuda = binding.cudaInfo();
  const loader = binding.tensorrtInfo();
  if (!hasTensorrtModule(binding)) {
    const availability = decideAvailability(cuda, loader, null);
    probed = { availability: availability.usable ? { ...availability, usable: false, code: 'ENOTENSORRT', reason: 'this addon build has no TensorRT module: rebuild it' } : availability };
    return probed;
  }
  const provider = binding.tensorrtProvider();
  probed = { binding, provider, cuda, availability: decideAvailability(cuda, loader, provider) };
  return probed;
}

/** Whether backend 'tensorrt' can run here, and if not, why (never throws). */
export function tensorrtAvailability(): TensorrtAvailability {
  return probe().availability;
}

function requireUsable(): Probed {
  const p = probe();
  if (!p.availability.usable || !('binding' in p)) {
    throw new TensorrtNodeError(p.availability.code ?? 'ENOTENSORRT', `backend 'tensorrt' cannot run here: ${p.availability.reason}`, {
      reason: p.availability.reason,
    });
  }
  return p;
}

/** Cache key parts from known values (exported for tests). */
export function cacheKeyPartsFrom(info: {
  libraryVersion: number;
  libraryBuildVersion: number;
  headerVersion: number;
  gpuName: string;
  computeCapability: string;
}): TensorrtCacheKeyParts {
  return {
    tensorrtVersion: versionText(info.libraryVersion),
    tensorrtBuild: info.libraryBuildVersion,
    providerHeaderVersion: info.headerVersion,
    gpuName: info.gpuName,
    computeCapability: info.computeCapability,
  };
}

/** The TensorRT parts of the engine cache key for `device`; throws ENOTENSORRT/ENODEVICE where unusable. */
export function tensorrtCacheKeyParts(device = 0): TensorrtCacheKeyParts {
  const p = requireUsable();
  const gpu = p.cuda.devices.find((d) => d.index === device);
  if (!gpu) throw new TensorrtNodeError('ENODEVICE', `device ${device} does not exist (${p.cuda.devices.length} visible)`);
  return cacheKeyPartsFrom({
    libraryVersion: p.provider.libraryVersion ?? 0,
    libraryBuildVersion: p.provider.libraryBuildVersion ?? 0,
    headerVersion: p.provider.headerVersion ?? 0,
    gpuName: gpu.name,
    computeCapability: gpu.computeCapability,
  });
}

// ---- options ---------------------------------------------------------------------------

function dimsList(v: unknown): v is readonly number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x));
}

/** `shapes` as the native build takes it (exported for tests). */
export function nativeShapes(shapes: TensorrtBackendOptions['shapes'], maxBatchSize = DEFAULT_MAX_BATCH): NativeShapeRange[] {
  if (shapes === undefined) return [];
  return Object.entries(shapes).map(([name, range]) => {
    if (dimsList(range)) {
      if (range.some((d, i) => d < (i === 0 ? -1 : 0))) {
        throw inputError(name, 'a shape with sizes >= 0 (-1 allowed on axis 0 only)', `[${range}]`, 'shapes entry');
      }
      const min = range.map((d) => (d === -1 ? 1 : d));
      const max = range.map((d) => (d === -1 ? maxBatchSize : d));
      return { name, min, opt: [...max], max };
    }
    const r = range as { min?: unknown; opt?: unknown; max?: unknown };
    if (!dimsList(r.min) || !dimsList(r.opt) || !dimsList(r.max)) {
      throw inputError(name, 'a shape (integers) or { min, opt, max }', JSON.stringify(range), 'shapes entry');
    }
    const [mn, op, mx] = [r.min, r.opt, r.max];
    if (mn.length !== op.length || op.length !== mx.length) {
      throw inputError(name, 'min, opt and max of equal rank', `ranks ${mn.length}, ${op.length}, ${mx.length}`, 'shapes entry');
    }
    for (let i = 0; i < mn.length; i++) {
      if (!(mn[i]! >= 0 && mn[i]! <= op[i]! && op[i]! <= mx[i]!)) {
        throw inputError(name, `0 <= min <= opt <= max on every axis`, `axis ${i}: ${mn[i]}, ${op[i]}, ${mx[i]}`, 'shapes entry');
      }
    }
    return { name, min: [...mn], opt: [...op], max: [...mx] };
  });
}

const DEFAULT_MAX_BATCH = 64;

function maxBatch(options: TensorrtBackendOptions): number {
  const m = options.maxBatchSize ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(m) || m < 1) throw inputError('maxBatchSize', 'an integer >= 1', String(m), 'option');
  return m;
}

/** The GPU indices of the `device` option; EINPUT for anything but integers >= 0. */
export function deviceList(device: TensorrtBackendOptions['device']): number[] {
  const list = device === undefined ? [0] : typeof device === 'number' ? [device] : [...device];
  for (const d of list) {
    if (!Number.isInteger(d) || d < 0) throw inputError('device', 'a GPU index (integer >= 0)', String(d), 'option');
  }
  return list.length > 0 ? list : [0];
}

/** EINPUT unless `v` is undefined or a whole number of microseconds from 0 to 1 s. */
export function checkSpinWaitUs(v: unknown): void {
  if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 1_000_000)) {
    throw inputError('spinWaitUs', 'an integer number of microseconds from 0 to 1000000', String(v), 'option');
  }
}

// ---- build -----------------------------------------------------------------------------

function timingCachePath(dir: string, parts: TensorrtCacheKeyParts): string {
  const gpu = `${parts.gpuName}-sm${parts.computeCapability}`.replace(/[^A-Za-z0-9.-]+/g, '_');
  return join(dir, `tensorrt-timing-${gpu}-${parts.tensorrtVersion}.cache`);
}

/** ONNX bytes -> serialized plan, off the JS thread. Failures are EBUILDFAILED naming the ONNX node. */
export async function buildTensorrtPlan(model: Uint8Array, options: TensorrtBackendOptions = {}): Promise<Uint8Array> {
  const p = requireUsable();
  const device = deviceList(options.device)[0]!;
  const parts = tensorrtCacheKeyParts(device);
  const cacheFile = options.cacheDir ? timingCachePath(options.cacheDir, parts) : undefined;
  let timingCache: Uint8Array | undefined;
  if (cacheFile) timingCache = await readFile(cacheFile).catch(() => undefined);
  let result: { plan: Buffer; timingCache: Buffer | null };
  // The builder runs on a libuv thread: it reads this flag at each of TensorRT's steps.
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const onAbort = (): void => void Atomics.store(cancel, 0, 1);
  throwIfAborted(options.signal, 'TensorRT build');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    result = await p.binding.tensorrtBuild(
      model,
      {
        shapes: nativeShapes(options.shapes, maxBatch(options)),
        defaultBatchMax: maxBatch(options),
        device,
        ...(options.workspaceBytes !== undefined ? { workspaceBytes: options.workspaceBytes } : {}),
        ...(options.optimizationLevel !== undefined ? { optimizationLevel: options.optimizationLevel } : {}),
        ...(options.tilingLevel !== undefined ? { tilingLevel: options.tilingLevel } : {}),
        ...(timingCache ? { timingCache } : {}),
        cancel,
      },
      options.onProgress,
    );
  } catch (e) {
    throw fromNative(e, 'EBUILDFAILED');
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (cacheFile && result.timingCache) {
    // Atomic: a temporary file, then rename.
    await mkdir(options.cacheDir!, { recursive: true });
    // Unique per write: two builds in one process (or its workers) sharing a pid-only name
    // would write into one file and the second rename would fail with ENOENT.
    const tmp = `${cacheFile}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, result.timingCache);
    await rename(tmp, cacheFile);
  }
  return result.plan;
}

const KNOWN_CODES: readonly ErrorCode[] = ['ENOTENSORRT', 'ENODEVICE', 'ECUDAVERSION', 'EBUILDFAILED', 'EINPUT', 'EDISPOSED', 'EABORTED'];

/**
 * A native error (with .code, and .node/.nodeName/.opType for parser failures) as a
 * TensorrtNodeError; unknown codes become `fallback` (exported for tests).
 */
export function fromNative(e: unknown, fallback: ErrorCode): TensorrtNodeError {
  if (e instanceof TensorrtNodeError) return e;
  const n = e as { message?: string; code?: string; node?: number; nodeName?: string; opType?: string };
  const code = KNOWN_CODES.includes(n.code as ErrorCode) ? (n.code as ErrorCode) : fallback;
  let message = n.message ?? String(e);
  const details: Record<string, unknown> = {};
  if (n.node !== undefined) {
    details.node = n.node;
    details.nodeName = n.nodeName;
    details.opType = n.opType;
    message += ` (ONNX node #${n.node} '${n.nodeName}', op ${n.opType})`;
  }
  return new TensorrtNodeError(code, message, details, { cause: e });
}

// ---- run -------------------------------------------------------------------------------

/** The native side's names of TensorRT's I/O types that the engine exchanges (TensorRT has no float64, int16, uint16, uint32 or uint64 tensors). */
const DTYPES: Record<string, TensorDtype> = {
  float32: 'float32',
  float16: 'float16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
  int32: 'int32',
  int64: 'int64',
};

function info(t: NativeIoTensor): TensorInfo {
  const dtype = DTYPES[t.dtype];
  if (!dtype) throw new TensorrtNodeError('EMODEL', `tensor '${t.name}' has type ${t.dtype}, which tensorrt-node cannot exchange`);
  return { name: t.name, dtype, shape: t.shape };
}

function typeOk(data: TypedArray, dtype: TensorDtype): boolean {
  // Raw bytes are accepted for any type (pinned Buffers from allocate()).
  return data.constructor === ARRAY_OF[dtype] || data instanceof Uint8Array;
}

class TrtBackend implements TensorrtBackend {
  readonly name = 'tensorrt' as const;
  readonly version: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly instances: number;
  private disposed = false;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly engine: NativeTensorrtEngine,
    private readonly io: NativeIoTensor[],
    readonly plan: Uint8Array,
    version: string,
    instances: number,
  ) {
    this.version = version;
    this.inputs = io.filter((t) => t.input).map(info);
    this.outputs = io.filter((t) => !t.input).map(info);
    this.instances = instances;
  }

  allocate(): TensorrtIoBuffers {
    if (this.disposed) throw new TensorrtNodeError('EDISPOSED', 'this TensorRT backend was disposed');
    return this.engine.allocate();
  }

  stats(): Record<string, number> {
    return this.engine.stats() as Record<string, number>;
  }

  run(feeds: Feeds, outputs?: Readonly<Record<string, Uint8Array>>): Promise<Record<string, TensorLike>> {
    if (this.disposed) return Promise.reject(new TensorrtNodeError('EDISPOSED', 'this TensorRT backend was disposed'));
    let nativeInputs: { data: ArrayBufferView; dims: number[] }[];
    try {
      for (const name of Object.keys(feeds)) {
        if (!this.inputs.some((i) => i.name === name)) {
          throw inputError(name, `one of ${this.inputs.map((i) => `'${i.name}'`).join(', ')}`, 'an unknown input name');
        }
      }
      nativeInputs = this.io
        .filter((t) => t.input)
        .map((t) => {
          const dtype = DTYPES[t.dtype]!;
          const tensor = feeds[t.name];
          if (!tensor) throw inputError(t.name, `a ${dtype} tensor`, 'nothing');
          if (!typeOk(tensor.data, dtype)) {
            throw inputError(t.name, `dtype ${dtype}`, tensor.data.constructor.name);
          }
          const dims = [...tensor.dims];
          const ok =
            dims.length === t.shape.length &&
            dims.every((d, i) => Number.isInteger(d) && d >= t.min[i]! && d <= t.max[i]!);
          if (!ok) throw inputError(t.name, `shape within [${t.min}]..[${t.max}]`, `[${dims}]`);
          const bytes = dims.reduce((a, b) => a * b, 1) * ARRAY_OF[dtype].BYTES_PER_ELEMENT;
          if (tensor.data.byteLength !== bytes) {
            throw inputError(t.name, `${bytes} bytes for shape [${dims}]`, `${tensor.data.byteLength} bytes`);
          }
          return { data: tensor.data, dims };
        });
    } catch (e) {
      return Promise.reject(e);
    }
    const given = this.io.filter((t) => !t.input).map((t) => outputs?.[t.name]);
    let started: ReturnType<typeof this.engine.infer>;
    try {
      started = this.engine.infer(nativeInputs, given);
    } catch (e) {
      // The addon refuses some requests synchronously (a closed engine, a bad argument): a rejection, like the rest.
      return Promise.reject(fromNative(e, 'EINPUT'));
    }
    const run = started
      .then((results) => {
        const out: Record<string, TensorLike> = {};
        const names = this.outputs;
        results.forEach((r, i) => {
          const o = names[i]!;
          const count = r.dims.reduce((a, b) => a * b, 1);
          const bytes = r.data as ArrayBufferView;
          out[o.name] = { data: new ARRAY_OF[o.dtype](bytes.buffer as ArrayBuffer, bytes.byteOffset, count), dims: r.dims, type: o.dtype };
        });
        return out;
      })
      .catch((e: unknown) => {
        throw fromNative(e, 'ENODEVICE');
      });
    this.pending.add(run);
    const forget = (): void => {
      this.pending.delete(run);
    };
    run.then(forget, forget);
    return run;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.allSettled([...this.pending]);
    this.engine.dispose();
  }
}

/**
 * Builds (or takes `options.plan`) and loads a TensorRT engine. Throws ENOTENSORRT
 * or ENODEVICE with the reason where TensorRT cannot run, EBUILDFAILED when the
 * parser or builder fails.
 */
export async function createTensorrtBackend(model: Uint8Array, options: TensorrtBackendOptions = {}): Promise<TensorrtBackend> {
  const p = requireUsable();
  const devices = deviceList(options.device);
  const instances = options.instances ?? 1;
  if (!Number.isInteger(instances) || instances < 1) throw inputError('instances', 'an integer >= 1', String(instances), 'option');
  const spin = options.spinWaitUs;
  checkSpinWaitUs(spin);
  if (!p.binding.tensorrtLoad) throw new TensorrtNodeError('ENODEVICE', 'the loaded addon was built without CUDA');
  const plan = options.plan ?? (await buildTensorrtPlan(model, options));
  let engine: NativeTensorrtEngine;
  try {
    engine = await p.binding.tensorrtLoad(plan, { devices, instances, cudaGraphs: options.cudaGraphs ?? false, ...(spin !== undefined ? { spinWaitUs: spin } : {}) });
  } catch (e) {
    throw fromNative(e, 'EBUILDFAILED');
  }
  const version = versionText(p.provider.libraryVersion ?? 0);
  return new TrtBackend(engine, engine.io(), plan, version, instances * devices.length);
}
