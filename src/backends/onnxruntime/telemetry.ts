/**
 * onnxruntime-node 1.30 on Linux carries Microsoft's 1DS telemetry: from a process's
 * first session on, it queues usage events (the process, each session with its model's file
 * name, graph name and hashes, run counts) for upload to mobile.events.data.microsoft.com,
 * keeps them with a device id under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, and leaves
 * an empty mat-debug-<pid>.log in the temporary folder of every process. People install this
 * package, not onnxruntime-node, so it does not let onnxruntime report their models: on import
 * it sets onnxruntime's own opt-out, ORT_DISABLE_TELEMETRY=1, which onnxruntime reads when it
 * makes its first session. A value the environment already holds is the user's choice and
 * stays (ORT_DISABLE_TELEMETRY=0 keeps onnxruntime's default). Loaded by the modules that make
 * sessions (workers.ts, quantize/ort-session.ts) and by runtime.ts, which every entry loads.
 */
import { isMainThread } from 'node:worker_threads';

const ORT_TELEMETRY_VARIABLE = 'ORT_DISABLE_TELEMETRY';

/** Whether onnxruntime's telemetry is on in this process, and why. */
export interface OnnxruntimeTelemetry {
  enabled: boolean;
  reason: string;
}

let setHere = false;

/** Sets ORT_DISABLE_TELEMETRY=1 where the environment leaves it unset. Idempotent. */
function turnOffOnnxruntimeTelemetry(): void {
  if (process.env[ORT_TELEMETRY_VARIABLE] !== undefined) return;
  process.env[ORT_TELEMETRY_VARIABLE] = '1';
  setHere = true;
}

/** onnxruntime's reading of the variable: 1, true, yes, on or y, trimmed, any case. */
function optedOut(value: string | undefined): boolean {
  return ['1', 'true', 'yes', 'on', 'y'].includes((value ?? '').trim().toLowerCase());
}

export function onnxruntimeTelemetry(): OnnxruntimeTelemetry {
  const value = process.env[ORT_TELEMETRY_VARIABLE];
  if (setHere && !isMainThread) {
    // A worker's process.env is its own copy: onnxruntime, which reads the process's, never sees it.
    return {
      enabled: true,
      reason: `on: tensorrt-node was first loaded on a worker thread, whose ${ORT_TELEMETRY_VARIABLE}=1 onnxruntime cannot see; set ${ORT_TELEMETRY_VARIABLE}=1 in the environment, or load tensorrt-node on the main thread first`,
    };
  }
  if (optedOut(value)) {
    return {
      enabled: false,
      reason: setHere
        ? `off: tensorrt-node set ${ORT_TELEMETRY_VARIABLE}=1 (${ORT_TELEMETRY_VARIABLE}=0 in the environment keeps onnxruntime's default)`
        : `off: ${ORT_TELEMETRY_VARIABLE}=${value} in the environment`,
    };
  }
  return {
    enabled: true,
    reason: `on: ${ORT_TELEMETRY_VARIABLE}=${value ?? ''} in the environment: onnxruntime-node queues usage events (the process, each session with its model's names and hashes) for Microsoft's collector`,
  };
}

turnOffOnnxruntimeTelemetry();
