/** What the native addon exports (native/src/addon.cc). Internal: src/runtime.ts wraps it. */

export interface NativeBuildInfo {
  /** 'cpu', or 'cuda12', 'cuda13', ... from the CUDA toolkit the addon was compiled against. */
  variant: string;
  /** CUDART_VERSION at build time (13000 for 13.0), null for cpu. */
  cudaRuntimeVersion: number | null;
  napiVersion: number;
  compiler: string;
  buildSystem: string;
}

export interface NativeDevice {
  index: number;
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  /** bytes */
  totalMemory: number;
  /** e.g. "0000:19:00.0" */
  pciBusId: string;
  uuid: string;
  multiProcessorCount: number;
}

export interface NativeCudaInfo {
  /** libcuda.so.1 probed with dlopen, in every variant. */
  driver: { libraryFound: boolean; libraryError: string; cudaVersion: number; kernelModule: string };
  /** Built with the CUDA toolkit. */
  compiled: boolean;
  runtimeVersion: number;
  driverVersion: number;
  /** cudaError_t of cudaGetDeviceCount (0 when fine or not compiled). */
  error: number;
  errorName: string;
  errorString: string;
  devices: NativeDevice[];
}

export type TensorrtLoaderCode =
  | 'ok'
  | 'library_not_found'
  | 'missing_symbol'
  | 'unsupported_major'
  | 'parser_not_found'
  | 'parser_missing_symbol'
  | 'provider_not_compiled'
  | 'provider_load_failed';

export interface NativeTensorrtInfo {
  code: TensorrtLoaderCode;
  libraryFound: boolean;
  libraryPath: string;
  libraryVersion: number;
  major: number;
  minor: number;
  patch: number;
  parserFound: boolean;
  parserPath: string;
  providersCompiled: number[];
  providerCompiled: boolean;
  providerLoaded: boolean;
  providerPath: string;
  addonPath: string;
  reason: string;
  tried: string[];
}

export interface NativeHostPoolStats {
  /** Bytes reserved by live Buffers (size classes, so at least what was asked). */
  bytesInUse: number;
  /** Bytes kept for reuse. */
  bytesPooled: number;
  blocksInUse: number;
  blocksPooled: number;
  /** Whether the pool pins memory (a CUDA device is usable). */
  pinned: boolean;
  maxPooledBytes: number;
  maxAllocationBytes: number;
}

export interface NativeBinding {
  buildInfo(): NativeBuildInfo;
  cudaInfo(): NativeCudaInfo;
  tensorrtInfo(): NativeTensorrtInfo;
  allocHost(bytes: number, pinned: boolean): Buffer;
  releaseHost(buffer: Uint8Array): void;
  hostPoolStats(): NativeHostPoolStats;
  configureHostPool(maxAllocationBytes: number, maxPooledBytes: number): void;
  trimHostPool(): void;
  /** A plain ArrayBuffer over the view's bytes of a SharedArrayBuffer, no copy (native/src/shared_memory.cc). */
  sharedMemoryAlias?(view: Uint8Array): ArrayBuffer;
  /** The calling thread's CPU time so far, ms (CLOCK_THREAD_CPUTIME_ID); undefined without such a clock. */
  threadCpuTimeMs?(): number | undefined;
  /**
   * Sets a thread's nice and scheduler slice (native/src/thread_slice.cc): the slice the
   * kernel keeps afterwards, µs, 0 where it takes none for such threads (before Linux 6.12).
   */
  setThreadSlice?(tid: number, nice: number, sliceUs: number): number;
  /** A doorbell that any thread rings without a lock, calling `onRing` on this thread (native/src/doorbell.cc). */
  doorbellCreate?(onRing: () => void): number;
  /** Rings it from any thread: false where it is closed. */
  doorbellRing?(bell: number): boolean;
  doorbellClose?(bell: number): void;
}
