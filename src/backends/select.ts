/**
 * Which backend an engine runs on, and why (DESIGN.md decision 4). 'auto' takes
 * TensorRT where a device, a loadable library and a compiled provider are all
 * present, and otherwise ONNX Runtime on the CPU, saying what was missing.
 * Asking for 'tensorrt' where it cannot run is an error with the reason.
 */
import { TensorrtNodeError, type ErrorCode } from '../errors.js';
import type { BackendName } from './types.js';
import { tensorrtAvailability as probeTensorrt } from './tensorrt/index.js';

export type BackendChoice = 'auto' | BackendName;

export interface BackendSelection {
  name: BackendName;
  /** Why this backend: what was asked for, and what was missing for the other. */
  reason: string;
}

export interface TensorrtAvailability {
  usable: boolean;
  reason: string;
  /** ENOTENSORRT (library or provider missing) or ENODEVICE (no usable GPU). */
  code?: ErrorCode;
}

/** Whether the TensorRT backend can run here (never throws). */
export async function tensorrtAvailability(): Promise<TensorrtAvailability> {
  try {
    const a = probeTensorrt();
    return { usable: a.usable, reason: a.reason, ...(a.code ? { code: a.code } : {}) };
  } catch (e) {
    return { usable: false, reason: `TensorRT backend unavailable: ${(e as Error).message}`, code: 'ENOTENSORRT' };
  }
}

export async function selectBackend(requested: BackendChoice = 'auto'): Promise<BackendSelection> {
  if (requested === 'onnxruntime') return { name: 'onnxruntime', reason: "backend 'onnxruntime' was requested" };
  if (requested !== 'tensorrt' && requested !== 'auto') {
    throw new TensorrtNodeError('EINPUT', `option 'backend': expected 'auto', 'tensorrt' or 'onnxruntime', received ${JSON.stringify(requested)}`, {
      tensor: 'backend', expected: "'auto' | 'tensorrt' | 'onnxruntime'", received: String(requested),
    });
  }
  const trt = await tensorrtAvailability();
  if (requested === 'tensorrt') {
    if (!trt.usable) throw new TensorrtNodeError(trt.code ?? 'ENOTENSORRT', `backend 'tensorrt' cannot run here: ${trt.reason}`, { reason: trt.reason });
    return { name: 'tensorrt', reason: "backend 'tensorrt' was requested" };
  }
  if (trt.usable) return { name: 'tensorrt', reason: `auto: TensorRT is usable (${trt.reason})` };
  return { name: 'onnxruntime', reason: `auto: TensorRT is not usable (${trt.reason}); running on ONNX Runtime (CPU)` };
}
