/**
 * What this machine offers tensorrt-node, and host memory as zero-copy Buffers.
 * runtimeInfo() never throws; allocHost() serves Buffers over pooled native memory,
 * pinned where a CUDA device is usable.
 */
import { createRequire } from 'node:module';
import { constants as bufferConstants } from 'node:buffer';
import type { BackendName } from './backends/types.js';
import type { NativeCudaInfo, NativeDevice, NativeHostPoolStats, NativeTensorrtInfo } from './native/binding.js';
import { type AddonState, type ChosenBy, type LoadedAddon, addonState } from './native/index.js';
import { cudaVersionString } from './native/select.js';
import { type OnnxruntimeTelemetry, onnxruntimeTelemetry } from './backends/onnxruntime/telemetry.js';

/** A CUDA device as the addon reports it. */
export type DeviceInfo = NativeDevice;

/** A missing piece and what a person can do about it. */
export interface RuntimeProblem {
  component: 'addon' | 'driver' | 'device' | 'tensorrt' | 'provider';
  code: string;
  message: string;
  action: string;
}

export interface RuntimeInfo {
  addon: {
    loaded: boolean;
    path: string | null;
    /** cpu, cuda12, cuda13; null when no addon could be loaded. */
    variant: string | null;
    chosenBy: ChosenBy | null;
    /** How the variant was chosen, in words. */
    choice: string;
    /** Why other binaries were not used. */
    skipped: string[];
    buildSystem: string | null;
    /** CUDA runtime the addon was built against (linked statically), e.g. "13.0". */
    cudaRuntime: string | null;
    /**
     * Whether the addon has the doorbell (built with libuv's header): the ONNX Runtime workers'
     * results then wake the JS thread without a lock; else through Atomics.notify.
     */
    doorbell: boolean;
  };
  driver: {
    found: boolean;
    /** Newest CUDA version the driver supports, e.g. "12.4". */
    cudaVersion: string | null;
    kernelModule: string | null;
  };
  devices: DeviceInfo[];
  tensorrt: {
    found: boolean;
    /** e.g. "10.16.0" */
    version: string | null;
    major: number | null;
    libraryPath: string | null;
    parserPath: string | null;
    /** TensorRT majors this addon has a provider for. */
    providersCompiled: number[];
    providerLoaded: boolean;
    /** The loader's decision: ok, library_not_found, unsupported_major, missing_symbol, ... */
    code: string;
  };
  hostMemory: { pinned: boolean };
  backends: {
    /** Usable now, best first. */
    usable: BackendName[];
    tensorrt: { usable: boolean; reason: string };
    /** `telemetry`: whether onnxruntime-node's own usage reporting is on (this package turns it off). */
    onnxruntime: { usable: boolean; reason: string; telemetry: OnnxruntimeTelemetry };
  };
  problems: RuntimeProblem[];
}

/** The host pool's counters as the addon reports them. */
export type HostPoolStats = NativeHostPoolStats;

export interface AllocHostOptions {
  /** Pin the memory where a CUDA device is usable (default true); false gives pageable memory. */
  pinned?: boolean;
}

export interface HostPoolLimits {
  /** Largest single allocHost(); at most buffer.constants.MAX_LENGTH. Default 4 GiB. */
  maxAllocationBytes?: number;
  /** Free bytes kept for reuse; beyond it released blocks go back to the system. Default 256 MiB. */
  maxPooledBytes?: number;
}

/** The runtime functions, over one loaded addon (tests run them against several builds). */
export interface Runtime {
  runtimeInfo(): RuntimeInfo;
  devices(): DeviceInfo[];
  allocHost(bytes: number, options?: AllocHostOptions): Buffer;
  releaseHost(buffer: Buffer): void;
  hostPoolStats(): HostPoolStats;
  configureHostPool(limits: HostPoolLimits): void;
}

function coded<E extends Error>(e: E, code: string): E & { code: string } {
  return Object.assign(e, { code });
}

function checkBytes(bytes: unknown, limit: number, what = 'bytes'): number {
  if (typeof bytes !== 'number') {
    throw coded(new TypeError(`${what} must be a number, received ${typeof bytes}`), 'EINPUT');
  }
  if (!Number.isInteger(bytes)) throw coded(new TypeError(`${what} must be an integer, received ${bytes}`), 'EINPUT');
  if (bytes < 0 || bytes > limit) {
    throw coded(new RangeError(`${what} must be between 0 and ${limit}, received ${bytes}`), 'EINPUT');
  }
  return bytes;
}

const CHOICE_WORDS: Record<ChosenBy, string> = {
  path: 'named by TENSORRT_NODE_ADDON_PATH',
  forced: 'forced by TENSORRT_NODE_VARIANT',
  'local-build': 'a local build from source (build/Release) takes precedence over prebuilt binaries',
  driver: "the newest CUDA prebuild the driver supports, test-loaded in a child process",
  fallback: 'the CUDA variants were ruled out (see skipped); fell back',
  'cpu-only': 'the cpu prebuild: the package has no CUDA prebuild for this platform',
};

function onnxruntimeStatus(): RuntimeInfo['backends']['onnxruntime'] {
  const telemetry = onnxruntimeTelemetry();
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return { usable: true, reason: 'onnxruntime-node is installed (CPU execution)', telemetry };
  } catch {
    return { usable: false, reason: 'onnxruntime-node is not installed: npm install onnxruntime-node', telemetry };
  }
}

/**
 * What the driver and the device lack. `skipped`: CUDA variants the loader ruled out before
 * it fell back to this one (each with why), so that a cpu addon chosen for want of a driver
 * points at the driver, not at a build. `noCudaPrebuild`: the package has no CUDA prebuild for
 * this platform (linux-arm64), so only a build from source brings one.
 */
function driverProblems(
  cuda: NativeCudaInfo,
  variant: string,
  skipped: readonly string[] = [],
  noCudaPrebuild = false,
): RuntimeProblem[] {
  const out: RuntimeProblem[] = [];
  const need = cuda.compiled ? Math.floor(cuda.runtimeVersion / 1000) * 1000 : 0;
  if (!cuda.driver.libraryFound) {
    out.push({
      component: 'driver',
      code: 'no_driver',
      message: 'no NVIDIA driver (libcuda.so.1 not found)',
      action: 'install the NVIDIA driver (for CUDA 13: driver 580 or newer) on a machine with an NVIDIA GPU',
    });
  } else if (need > 0 && cuda.driver.cudaVersion < need) {
    out.push({
      component: 'driver',
      code: 'driver_too_old',
      message:
        `the driver supports CUDA ${cudaVersionString(cuda.driver.cudaVersion)}, ` +
        `the ${variant} addon needs CUDA ${cudaVersionString(need)}`,
      action: `update the NVIDIA driver, or use an older variant (TENSORRT_NODE_VARIANT=cuda${Math.floor(cuda.driver.cudaVersion / 1000)})`,
    });
  }
  if (!cuda.compiled) {
    const ruledOut = skipped.filter((s) => /^cuda\d+\b/.test(s)); // 'cuda13: why' or 'cuda13, cuda12: why'
    out.push({
      component: 'device',
      code: 'cuda_not_compiled',
      message: `this addon is the ${variant} variant, built without the CUDA toolkit: no device is used`,
      action: ruledOut.length
        ? `the CUDA variants were ruled out (${ruledOut.join('; ')}); one loads once that is fixed`
        : noCudaPrebuild
          ? `no CUDA prebuild ships for ${process.platform}-${process.arch}: build from source with the CUDA toolkit installed: npm run build:native`
          : 'use a cuda prebuild, or build from source with the CUDA toolkit installed: npm run build:native',
    });
  } else if (cuda.devices.length === 0) {
    const why = !cuda.driver.libraryFound
      ? 'no NVIDIA driver'
      : `${cuda.errorName || 'cudaErrorNoDevice'}: ${cuda.errorString || 'no CUDA-capable device'}`;
    out.push({
      component: 'device',
      code: 'no_device',
      message: `no CUDA device usable (${why})`,
      action: cuda.driver.libraryFound
        ? 'check nvidia-smi and CUDA_VISIBLE_DEVICES'
        : 'run on a machine with an NVIDIA GPU and its driver',
    });
  }
  return out;
}

function tensorrtProblems(t: NativeTensorrtInfo): RuntimeProblem[] {
  const out: RuntimeProblem[] = [];
  if (t.code !== 'ok' && t.code !== 'provider_not_compiled' && t.code !== 'provider_load_failed') {
    out.push({
      component: 'tensorrt',
      code: t.code,
      message: t.reason,
      action:
        t.code === 'library_not_found' || t.code === 'parser_not_found'
          ? 'install TensorRT 10 or 11 (libnvinfer and libnvonnxparser) and add its lib folder to LD_LIBRARY_PATH'
          : 'install a complete TensorRT 10 or 11',
    });
  }
  if (t.providersCompiled.length === 0 || t.code === 'provider_not_compiled') {
    out.push({
      component: 'provider',
      code: 'provider_not_compiled',
      message:
        t.code === 'provider_not_compiled'
          ? t.reason
          : 'this addon has no TensorRT provider compiled (no tensorrt_node_provider_trt<major>.so beside it)',
      action:
        'build from source with the TensorRT headers: TENSORRT_ROOT_10=<sdk> or TENSORRT_ROOT_11=<sdk> npm run build:native',
    });
  } else if (t.code === 'provider_load_failed') {
    out.push({ component: 'provider', code: t.code, message: t.reason, action: 'rebuild the provider: npm run build:native' });
  }
  return out;
}

function unloadedInfo(message: string, skipped: string[]): RuntimeInfo {
  const ort = onnxruntimeStatus();
  return {
    addon: {
      loaded: false,
      path: null,
      variant: null,
      chosenBy: null,
      choice: 'no addon could be loaded',
      skipped,
      buildSystem: null,
      cudaRuntime: null,
      doorbell: false,
    },
    driver: { found: false, cudaVersion: null, kernelModule: null },
    devices: [],
    tensorrt: {
      found: false,
      version: null,
      major: null,
      libraryPath: null,
      parserPath: null,
      providersCompiled: [],
      providerLoaded: false,
      code: 'addon_not_loaded',
    },
    hostMemory: { pinned: false },
    backends: {
      usable: ort.usable ? ['onnxruntime'] : [],
      tensorrt: { usable: false, reason: `the native addon is not loaded: ${message}` },
      onnxruntime: ort,
    },
    problems: [{ component: 'addon', code: 'ENOBINARY', message, action: 'npm run build:native' }],
  };
}

function toDevice(d: DeviceInfo): DeviceInfo {
  return {
    index: d.index,
    name: d.name,
    computeCapability: d.computeCapability,
    totalMemory: d.totalMemory,
    pciBusId: d.pciBusId,
    uuid: d.uuid,
    multiProcessorCount: d.multiProcessorCount,
  };
}

function loadedInfo(a: LoadedAddon): RuntimeInfo {
  const b = a.binding;
  const cuda = b.cudaInfo();
  const trt = b.tensorrtInfo();
  const variant = a.build.variant;
  const problems = [
    ...driverProblems(cuda, variant, a.chosenBy === 'fallback' ? a.skipped : [], a.chosenBy === 'cpu-only'),
    ...tensorrtProblems(trt),
  ];
  const devices = cuda.devices.map(toDevice);

  let trtReason: string;
  if (devices.length === 0) trtReason = problems.find((p) => p.component === 'device')?.message ?? 'no CUDA device';
  else if (trt.code !== 'ok') trtReason = trt.reason;
  else trtReason = `TensorRT ${trt.major}.${trt.minor}.${trt.patch} on ${devices[0]!.name}`;
  const trtUsable = devices.length > 0 && trt.code === 'ok';
  const ort = onnxruntimeStatus();

  return {
    addon: {
      loaded: true,
      path: a.path,
      variant,
      chosenBy: a.chosenBy,
      choice: CHOICE_WORDS[a.chosenBy],
      skipped: a.skipped,
      buildSystem: a.build.buildSystem,
      cudaRuntime: a.build.cudaRuntimeVersion ? cudaVersionString(a.build.cudaRuntimeVersion) : null,
      doorbell: typeof a.binding.doorbellCreate === 'function',
    },
    driver: {
      found: cuda.driver.libraryFound,
      cudaVersion: cuda.driver.cudaVersion > 0 ? cudaVersionString(cuda.driver.cudaVersion) : null,
      kernelModule: cuda.driver.kernelModule || null,
    },
    devices,
    tensorrt: {
      found: trt.libraryFound && trt.major > 0,
      version: trt.libraryVersion > 0 ? `${trt.major}.${trt.minor}.${trt.patch}` : null,
      major: trt.major > 0 ? trt.major : null,
      libraryPath: trt.libraryPath || null,
      parserPath: trt.parserPath || null,
      providersCompiled: trt.providersCompiled,
      providerLoaded: trt.providerLoaded,
      code: trt.code,
    },
    hostMemory: { pinned: b.hostPoolStats().pinned },
    backends: {
      usable: [...(trtUsable ? (['tensorrt'] as const) : []), ...(ort.usable ? (['onnxruntime'] as const) : [])],
      tensorrt: { usable: trtUsable, reason: trtReason },
      onnxruntime: ort,
    },
    problems,
  };
}

/** The runtime functions over a given addon state. */
export function createRuntime(getState: () => AddonState): Runtime {
  const native = (): LoadedAddon => {
    const s = getState();
    if (!s.loaded) throw s.error;
    return s.addon;
  };

  return {
    runtimeInfo(): RuntimeInfo {
      try {
        const s = getState();
        if (s.loaded) return loadedInfo(s.addon);
        const skipped = s.error.details.skipped;
        return unloadedInfo(s.error.message, Array.isArray(skipped) ? (skipped as string[]) : []);
      } catch (e) {
        // Never throws: an unexpected failure becomes a problem entry.
        return unloadedInfo(`runtimeInfo failed: ${(e as Error).message}`, []);
      }
    },
    devices(): DeviceInfo[] {
      const s = getState();
      return s.loaded ? s.addon.binding.cudaInfo().devices.map(toDevice) : [];
    },
    allocHost(bytes: number, options: AllocHostOptions = {}): Buffer {
      // The native side checks the pool's own limit (configureHostPool) again.
      checkBytes(bytes, bufferConstants.MAX_LENGTH);
      if (options === null || typeof options !== 'object') {
        throw coded(new TypeError('allocHost options must be an object'), 'EINPUT');
      }
      if (options.pinned !== undefined && typeof options.pinned !== 'boolean') {
        throw coded(new TypeError(`options.pinned must be a boolean, received ${typeof options.pinned}`), 'EINPUT');
      }
      return native().binding.allocHost(bytes, options.pinned ?? true);
    },
    releaseHost(buffer: Buffer): void {
      if (!(buffer instanceof Uint8Array)) {
        throw coded(new TypeError('releaseHost expects a Buffer returned by allocHost'), 'EINPUT');
      }
      native().binding.releaseHost(buffer);
    },
    hostPoolStats(): HostPoolStats {
      const s = native().binding.hostPoolStats();
      return { ...s };
    },
    configureHostPool(limits: HostPoolLimits): void {
      const current = native().binding.hostPoolStats();
      const maxAllocationBytes = checkBytes(
        limits.maxAllocationBytes ?? current.maxAllocationBytes,
        bufferConstants.MAX_LENGTH,
        'maxAllocationBytes',
      );
      const maxPooledBytes = checkBytes(limits.maxPooledBytes ?? current.maxPooledBytes, Number.MAX_SAFE_INTEGER, 'maxPooledBytes');
      native().binding.configureHostPool(maxAllocationBytes, maxPooledBytes);
    },
  };
}

const runtime = createRuntime(addonState);

/** What this machine offers: addon variant, driver, devices, TensorRT, usable backends, and what is missing. Never throws. */
export const runtimeInfo: () => RuntimeInfo = runtime.runtimeInfo;
/** The CUDA devices the addon sees ([] without a driver or on the cpu variant). */
export const devices: () => DeviceInfo[] = runtime.devices;
/**
 * A Buffer of `bytes` over pooled native memory, page-aligned; pinned (cudaHostAlloc)
 * where a CUDA device is usable unless `pinned: false`. The memory returns to the pool
 * when the Buffer is garbage-collected or given to releaseHost().
 */
export const allocHost: (bytes: number, options?: AllocHostOptions) => Buffer = runtime.allocHost;
/**
 * Returns an allocHost() Buffer's memory to the pool now. The Buffer is detached:
 * its length becomes 0 and it can no longer reach the memory.
 */
export const releaseHost: (buffer: Buffer) => void = runtime.releaseHost;
export const hostPoolStats: () => HostPoolStats = runtime.hostPoolStats;
export const configureHostPool: (limits: HostPoolLimits) => void = runtime.configureHostPool;
