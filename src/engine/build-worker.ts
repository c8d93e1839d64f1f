/**
 * The build's thread (build-thread.ts): runs quantization and graph rewrites, the
 * CPU-heavy steps of Engine.build, away from the JS thread. Each message is one task;
 * results and errors go back with its id, the model's bytes transferred.
 */
import * as workerThreads from 'node:worker_threads';
import { parentPort, workerData } from 'node:worker_threads';
import type { QuantizeOptions } from '../quantize/index.js';
import { rewriteGraph } from './rewrite.js';
import { TensorrtNodeError } from '../errors.js';
import type { ExitGuardData } from '../backends/onnxruntime/exit-guard.js';
import { markNativeCalls } from '../backends/onnxruntime/native-calls.mjs';

export type BuildTask =
  | { kind: 'rewrite'; bytes: Uint8Array }
  | { kind: 'quantize'; bytes: Uint8Array; options: Omit<QuantizeOptions, 'onProgress' | 'signal'> };

export type BuildMessage =
  | { id: number; type: 'progress'; event: unknown }
  | { id: number; type: 'result'; result: unknown }
  | { id: number; type: 'error'; error: { name: string; message: string; code?: string; details?: unknown; stack?: string } };

const port = parentPort;
if (!port) throw new Error('build-worker.ts runs as a worker thread');
// Quantization runs onnxruntime here: its native calls are marked for process exit (exit-guard.ts).
const guard = (workerData as { exitGuard?: ExitGuardData } | null)?.exitGuard;
if (guard) markNativeCalls(guard);

/** Each running quantization's abort, by task id: the JS thread sends { id, cancel: true }. */
const aborts = new Map<number, AbortController>();

/**
 * The bytes' memory, to transfer, where they hold it alone and it may move; else none (the
 * bytes are copied). A small protobufjs encoding is a slice of Buffer's shared pool, which
 * Node 20 copied when listed and Node 21 and later refuse with a DataCloneError.
 */
function transferOf(bytes: Uint8Array): ArrayBuffer[] {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) return [];
  const marked = (workerThreads as { isMarkedAsUntransferable?: (o: object) => boolean }).isMarkedAsUntransferable;
  return marked?.(buffer) === true ? [] : [buffer];
}

async function run(id: number, task: BuildTask): Promise<void> {
  if (task.kind === 'rewrite') {
    const r = rewriteGraph(task.bytes);
    port!.postMessage({ id, type: 'result', result: r } satisfies BuildMessage, transferOf(r.bytes));
    return;
  }
  // Loaded on the first quantization only: a worker that rewrites starts without onnxruntime.
  const { quantize } = await import('../quantize/index.js');
  const abort = new AbortController();
  aborts.set(id, abort);
  try {
    const r = await quantize(task.bytes, {
      ...task.options,
      signal: abort.signal,
      onProgress: (event) => port!.postMessage({ id, type: 'progress', event } satisfies BuildMessage),
    });
    port!.postMessage({ id, type: 'result', result: r } satisfies BuildMessage, transferOf(r.model));
  } finally {
    aborts.delete(id);
  }
}

port.on('message', ({ id, task, cancel }: { id: number; task?: BuildTask; cancel?: true }) => {
  if (cancel) {
    aborts.get(id)?.abort();
    return;
  }
  run(id, task!).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const coded = err instanceof TensorrtNodeError ? { code: err.code, details: err.details } : {};
    port.postMessage({ id, type: 'error', error: { name: err.name, message: err.message, stack: err.stack, ...coded } } satisfies BuildMessage);
  });
});
