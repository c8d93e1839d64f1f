/** What the addon's TensorRT module exports (native/tensorrt/trt_module.cc). Internal. */
import type { NativeBinding } from '../../native/binding.js';

export interface NativeTensorrtProvider {
  usable: boolean;
  /** Package error code when not usable (ENOTENSORRT). */
  code: string | null;
  reason: string;
  abiVersion: number;
  /** NV_TENSORRT_VERSION of the headers the provider was compiled against, e.g. 101600. */
  headerVersion?: number;
  /** getInferLibVersion(), e.g. 101600. */
  libraryVersion?: number;
  libraryBuildVersion?: number;
  canBuild?: boolean;
  /** The addon was built with CUDA (tensorrtLoad exists). */
  cuda: boolean;
}

export interface NativeShapeRange {
  name: string;
  min: number[];
  opt: number[];
  max: number[];
}

export interface NativeBuildOptions {
  shapes?: NativeShapeRange[];
  workspaceBytes?: number;
  optimizationLevel?: number;
  tilingLevel?: number;
  /** Profile max (and opt) of axis 0 for batch-only dynamic inputs without a range; 0: none. */
  defaultBatchMax?: number;
  timingCache?: Uint8Array;
  device?: number;
  /** Over a SharedArrayBuffer: the builder stops at its next step once element 0 is non-zero (EABORTED). */
  cancel?: Int32Array;
}

export interface NativeBuildProgress {
  event: 'start' | 'step' | 'finish';
  phase: string;
  parent?: string;
  step: number;
  steps: number;
}

export interface NativeIoTensor {
  name: string;
  input: boolean;
  /** float32, float16, int8, int32, bool, uint8, int64, or a type the package cannot exchange. */
  dtype: string;
  shape: number[];
  min: number[];
  opt: number[];
  max: number[];
  maxBytes: number;
}

export interface NativeEngineStats {
  calls?: number;
  zeroCopyInputs?: number;
  stagedInputs?: number;
  graphLaunches?: number;
  graphFallbacks?: number;
  /** Runs whose completion the instance's thread saw while polling, and after blocking. */
  completionsSpun?: number;
  completionsBlocked?: number;
  instances?: number;
  queued?: number;
  inFlight?: number;
  deviceMemoryUsed?: number;
}

export interface NativeTensorrtEngine {
  io(): NativeIoTensor[];
  allocate(): { inputs: Record<string, Buffer>; outputs: Record<string, Buffer> };
  infer(
    inputs: { data: ArrayBufferView; dims: number[] }[],
    outputs?: (ArrayBufferView | undefined)[],
  ): Promise<{ data: Buffer | ArrayBufferView; dims: number[] }[]>;
  stats(): NativeEngineStats;
  dispose(): void;
}

export interface NativeLoadOptions {
  devices?: number[];
  instances?: number;
  cudaGraphs?: boolean;
  spinWaitUs?: number;
}

export interface TensorrtBinding {
  tensorrtProvider(): NativeTensorrtProvider;
  tensorrtBuild(
    onnx: Uint8Array,
    options: NativeBuildOptions,
    onProgress?: (e: NativeBuildProgress) => void,
  ): Promise<{ plan: Buffer; timingCache: Buffer | null }>;
  /** CUDA builds only. */
  tensorrtLoad?(plan: Uint8Array, options: NativeLoadOptions): Promise<NativeTensorrtEngine>;
}

export function hasTensorrtModule(b: NativeBinding): b is NativeBinding & TensorrtBinding {
  return typeof (b as Partial<TensorrtBinding>).tensorrtProvider === 'function';
}
