/**
 * Engine.build's CPU-heavy steps, quantization and graph rewrites, on a worker thread, so
 * that a process serving requests while it builds or reloads a model keeps its event loop:
 * on the JS thread an INT8 build of the PaddleOCR classifier stalled it for up to 371 ms at
 * a time, and a build of the PP-OCRv4 recognizer, most of it the rewrites, for 147-166 ms,
 * from the cache too (docs/engine.md, bench/engine-build-stall.ts).
 *
 * One worker serves the builds of the process and ends after a short idle time. It starts
 * in ~0.1 s, so a model small enough to rewrite in less is rewritten on the JS thread.
 * Quantization goes to the worker when its data can be copied there (arrays of samples,
 * a built-in metric); a lazy iterable or a metric function keeps it on the JS thread,
 * which `engine.buildThreads` reports.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TensorrtNodeError, throwIfAborted, type ErrorCode, type ErrorDetails } from '../errors.js';
import { quantize, type QuantizeOptions, type QuantizeResult } from '../quantize/index.js';
import { rewriteGraph, type GraphRewrites } from './rewrite.js';
import type { BuildMessage, BuildTask } from './build-worker.js';
import { workerExecArgv } from '../backends/onnxruntime/index.js';
import { exitGuard } from '../backends/onnxruntime/exit-guard.js';

/** Models below this size are rewritten on the JS thread: ~10 ms a MB there, against the worker's start. */
export const REWRITE_INLINE_BYTES = 2 * 1024 * 1024;
/** How long the worker waits for another build before it ends. */
const IDLE_MS = 5000;

/** Where a build step ran: 'worker', or 'JS thread' with the reason. */
export type BuildThread = string;

interface Waiting {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress: ((e: unknown) => void) | undefined;
}

/**
 * The worker: the bundle's script beside dist/, or else the TypeScript source, loaded
 * through tsx's loader registered first in the worker (tests and benches run from src/;
 * Node 20 applies an --import in a worker's execArgv only after it loaded its script).
 */
function startWorker(): Worker {
  const execArgv = workerExecArgv(process.execArgv);
  const guard = exitGuard();
  const worker = startScript(execArgv, { exitGuard: guard.data });
  worker.once('exit', guard.release);
  return worker;
}

function startScript(execArgv: string[], workerData: unknown): Worker {
  const built = new URL('./build-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return new Worker(built, { execArgv, workerData });
  const source = new URL('./build-worker.ts', import.meta.url);
  if (!existsSync(fileURLToPath(source))) throw new Error(`the build worker script is missing beside ${fileURLToPath(import.meta.url)}`);
  const boot = `import(${JSON.stringify(tsxLoaderUrl())}).then((m) => m.register()).then(() => import(${JSON.stringify(source.href)}));`;
  return new Worker(boot, { eval: true, execArgv, workerData });
}

/** tsx's ESM loader API (its `register()`), for a worker that loads the TypeScript sources. */
export function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const api = (require(manifest) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
  return new URL(api, pathToFileURL(manifest)).href;
}

class BuildWorker {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;

  run<T>(task: BuildTask, onProgress?: (e: unknown) => void, signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal, 'quantize');
    const worker = this.start();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      // An abort rejects at once; the worker stops the task at its next step. Its entry stays
      // until that answer comes, so the idle timer cannot end the worker inside an ONNX
      // Runtime run (ending a worker there aborted the process, docs/engine.md).
      const onAbort = (): void => {
        if (!this.waiting.has(id)) return;
        this.waiting.set(id, { resolve: () => undefined, reject: () => undefined, onProgress: undefined });
        worker.postMessage({ id, cancel: true });
        reject(new TensorrtNodeError('EABORTED', 'quantize was aborted', {}, { cause: signal!.reason }));
      };
      const done = <V>(f: (v: V) => void) => (v: V): void => {
        signal?.removeEventListener('abort', onAbort);
        f(v);
      };
      this.waiting.set(id, { resolve: done(resolve as (v: unknown) => void), reject: done(reject), onProgress });
      if (this.waiting.size === 1) worker.ref();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        // A copy: the caller keeps its model bytes and samples.
        worker.postMessage({ id, task });
      } catch (e) {
        this.settle(id);
        done(reject)(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.unref();
    worker.on('message', (m: BuildMessage) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      if (m.type === 'progress') {
        w.onProgress?.(m.event);
        return;
      }
      this.settle(m.id);
      if (m.type === 'result') w.resolve(m.result);
      else w.reject(revive(m.error));
    });
    const fail = (e: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [id, w] of this.waiting) {
        this.waiting.delete(id);
        w.reject(e);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the build worker exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(id: number): void {
    this.waiting.delete(id);
    if (this.waiting.size > 0 || !this.worker) return;
    this.worker.unref();
    const worker = this.worker;
    this.idleTimer = setTimeout(() => {
      if (this.worker !== worker || this.waiting.size > 0) return;
      this.worker = undefined;
      void worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}

/** The worker's error as the caller's: a TensorrtNodeError keeps its code and details. */
function revive(e: { name: string; message: string; code?: string; details?: unknown; stack?: string }): Error {
  const err = e.code !== undefined
    ? new TensorrtNodeError(e.code as ErrorCode, e.message, (e.details ?? {}) as ErrorDetails)
    : Object.assign(new Error(e.message), { name: e.name });
  if (e.stack) err.stack = `${err.stack}\n    --- on the build worker:\n${e.stack}`;
  return err;
}

const buildWorker = new BuildWorker();

/** A plain copy of a sample: tensors (onnxruntime Tensors included) as { data, dims, type }. */
function plain(x: unknown): unknown {
  if (ArrayBuffer.isView(x)) return x;
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === 'object') {
    const t = x as { data?: unknown; dims?: unknown; type?: unknown };
    if (ArrayBuffer.isView(t.data) && Array.isArray(t.dims)) return { data: t.data, dims: [...t.dims], ...(typeof t.type === 'string' ? { type: t.type } : {}) };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = plain(v);
    return out;
  }
  return x;
}

/**
 * Why quantization cannot run on the worker, or undefined where it can: its data must be
 * arrays (or one typed array) to copy there, and its metric a built-in one.
 */
function stayReason(options: QuantizeOptions): string | undefined {
  const array = (d: unknown): boolean => Array.isArray(d) || ArrayBuffer.isView(d);
  if (!array(options.calibration)) return 'calibration is a lazy iterable';
  if (options.validation && !Array.isArray(options.validation.data)) return 'validation data is a lazy iterable';
  if (typeof options.validation?.metric === 'function') return 'the validation metric is a function';
  return undefined;
}

/** quantize() on the build worker where its data allows, else on this thread. */
export async function quantizeOffThread(bytes: Uint8Array, options: QuantizeOptions): Promise<QuantizeResult & { thread: BuildThread }> {
  const reason = stayReason(options);
  if (reason) return { ...(await quantize(bytes, options)), thread: `JS thread (${reason})` };
  const { onProgress, signal, ...rest } = options;
  const copy = {
    ...rest,
    calibration: plain(options.calibration),
    ...(options.validation ? { validation: { ...options.validation, data: plain(options.validation.data) } } : {}),
  } as Omit<QuantizeOptions, 'onProgress' | 'signal'>;
  const r = await buildWorker.run<QuantizeResult>({ kind: 'quantize', bytes, options: copy }, onProgress as ((e: unknown) => void) | undefined, signal);
  return { ...r, thread: 'worker' };
}

/** rewriteGraph() on the build worker for a model of REWRITE_INLINE_BYTES or more. */
export async function rewriteOffThread(bytes: Uint8Array): Promise<{ bytes: Uint8Array; rewrites: GraphRewrites; thread: BuildThread }> {
  if (bytes.byteLength < REWRITE_INLINE_BYTES) return { ...rewriteGraph(bytes), thread: `JS thread (a model under ${REWRITE_INLINE_BYTES >> 20} MB)` };
  const r = await buildWorker.run<{ bytes: Uint8Array; rewrites: GraphRewrites }>({ kind: 'rewrite', bytes });
  return { ...r, thread: 'worker' };
}

