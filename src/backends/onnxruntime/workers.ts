/**
 * The ONNX Runtime backend's worker threads: starting one with its session, under which
 * priority (background or normal), and the JS thread's record of one (its runs in
 * flight, its mailbox and result box, whether it keeps the process alive). What runs inside
 * the thread is onnxruntime-worker.mjs; the backend that uses them, index.ts.
 */
import './telemetry.js';
import { existsSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Feeds, TensorLike } from '../../tensor.js';
import { TensorrtNodeError } from '../../errors.js';
import { addonState } from '../../native/index.js';
import { exitGuard } from './exit-guard.js';
import { resultBox, resultCount, resultsRead, stateWord } from './mailbox.mjs';

/** How a run's result comes back: the outputs plus the time ORT spent in run(). */
export interface OnnxruntimeRunResult {
  outputs: Record<string, TensorLike>;
  computeMs: number;
  /**
   * With runTimed's `cpuTime`: the worker thread's own CPU time during run(), where the addon
   * loads in the worker (its intra-op threads' not included).
   */
  cpuMs?: number;
  /** Whether the wide session ran it. */
  wide: boolean;
}

export interface WireTensor {
  type: string;
  dims: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
  length: number;
}

export type WorkerMessage =
  | { type: 'ready'; tid: number | undefined; threads: number[] | undefined; inputs: WireInfo[]; outputs: WireInfo[]; rings: boolean }
  | { type: 'result'; id: number; outputs: Record<string, WireTensor>; inputs: Record<string, ArrayBuffer>; spare: ArrayBuffer[]; computeMs: number; cpuMs?: number; wide: boolean; inPlace?: boolean }
  | { type: 'wide'; id: number }
  | { type: 'error'; id: number; message: string };

interface WireInfo {
  name: string;
  type: string;
  shape: number[];
  dimParams: (string | null)[];
}

interface Pending {
  /** Where the returned input buffers go back (the caller's feeds). */
  feeds: Feeds;
  /** Each input's element count: a transferred view reads length 0 until its buffer returns. */
  lengths: Record<string, number>;
  /** The batch's rows (axis 0 of the first input), to learn its results' sizes by. */
  rows: number;
  /** The batcher's run (runBatch), which runs a batch again where it fails marked `retry`. */
  batcher?: boolean;
  /** Sent through the worker's mailbox: its result may come through the result box. */
  viaMailbox?: boolean;
  /** Written into this request slot of the worker's (mailbox.mjs writeRequest): its result may come through the result box. */
  slot?: number;
  resolve(r: OnnxruntimeRunResult): void;
  reject(e: Error): void;
}


// Preloads and module hooks, and what only the main script means (its code, its type).
// Each takes a value, as `--flag=value` or as the next argument.
const DROPPED_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '-e', '--eval', '-p', '--print', '--input-type']);

/**
 * The parent's Node options without its preloads and module hooks (`--import tsx`,
 * `--require dd-trace/init`, ...) and without what belongs to the main script only
 * (`-e <code>`, `--input-type`): the worker is plain JS that only runs a session, and a
 * worker inherits execArgv, so each would load them again (tsx added ~120 ms to every
 * worker's start here).
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const flag = arg.split('=', 1)[0]!;
    if (!DROPPED_FLAGS.has(flag)) out.push(arg);
    else if (!arg.includes('=')) i++; // its value is the next argument
  }
  return out;
}

/**
 * A worker with the parent's options less its preloads. Node refuses V8's process-wide
 * flags (`--expose-gc`, `--max-old-space-size`, ...) in an explicit execArgv, naming them,
 * though a worker gets them anyway: those are dropped too, and where Node still refuses,
 * the worker inherits everything, as by default.
 */
function startWorker(url: URL, workerData: unknown, transferList: ArrayBuffer[] = []): Worker {
  let execArgv = workerExecArgv(process.execArgv);
  if (execArgv.length === process.execArgv.length) return new Worker(url, { workerData, transferList });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return new Worker(url, { workerData, transferList, execArgv });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
      const refused = new Set((err.message ?? '').replace(/^.*flags:\s*/, '').split(/,?\s+/).filter(Boolean));
      execArgv = execArgv.filter((arg) => !refused.has(arg));
    }
  }
  return new Worker(url, { workerData, transferList });
}

export function workerUrl(): URL {
  // Beside this module in src/ (vitest) and beside the bundles in dist/ (tsup copies it).
  const url = new URL('./onnxruntime-worker.mjs', import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new TensorrtNodeError('EBUILDFAILED', `onnxruntime worker script missing at ${fileURLToPath(url)}`);
  }
  return url;
}

/** How many nice steps below the JS thread the inference threads run in the background. */
export const BACKGROUND_NICE_STEP = 10;

/**
 * The scheduler slice of inference threads in the background, µs: longer than the kernel's
 * default (0.7-3 ms), so that the JS thread, waking with that default, preempts them at once
 * (Linux 6.12+; native/src/thread_slice.cc). With the default, 2-core VM, 64 in flight,
 * 8 s traced three times: the JS thread waited over 1 ms for a core behind a worker 5-8
 * times (13-17 ms in all); with 20 ms, 1-3 times (1-6 ms in all) (docs/engine.md).
 */
export const BACKGROUND_SLICE_US = 20_000;

/** Whether a thread policy (threadPolicy) is the background priority: 'nice <n>...'. */
export function isBackground(policy: string): boolean {
  return policy.startsWith('nice ');
}

/**
 * Lowers a worker's thread, then the intra-op threads its session made, BACKGROUND_NICE_STEP
 * below the JS thread (Linux's nice is a thread's own), and gives them the background slice
 * where the addon and the kernel can: 'nice <n>, slice <ms> ms', 'nice <n> (the slice: why
 * not)', or 'normal (why not)' where the worker's own nice could not be set. At nice 10 the
 * JS thread gets a core at once on a machine busy with inference, as under SCHED_IDLE (used
 * until session 20), while other busy processes leave the workers ~10 % of a core, not ~0:
 * SCHED_IDLE workers held locks the JS thread then waited on for up to 1.4 s (docs/engine.md).
 */
function backgroundThreads(tid: number | undefined, sessionThreads: readonly number[]): string {
  if (tid === undefined) return 'normal (thread priorities are set on Linux only)';
  let nice: number;
  try {
    const own = getPriority();
    nice = Math.min(19, own + BACKGROUND_NICE_STEP);
    if (nice <= own) return `normal (the JS thread already runs at nice ${own})`;
    setPriority(tid, nice);
    // Where the worker's thread could be set, another of the same process fails only
    // where it has ended meanwhile.
    for (const t of sessionThreads) {
      if (t === tid) continue;
      try {
        setPriority(t, nice);
      } catch {
        // ended
      }
    }
  } catch (e) {
    // Never let a priority failure stop the worker, which serves either way.
    return `normal (${(e as Error).message})`;
  }
  return `nice ${nice}${backgroundSlice(tid, sessionThreads, nice)}`;
}

/** Gives the threads the background slice: ', slice <ms> ms', or ' (the slice: why not)'. */
function backgroundSlice(tid: number, sessionThreads: readonly number[], nice: number): string {
  const s = addonState();
  const setSlice = s.loaded ? s.addon.binding.setThreadSlice : undefined;
  if (!setSlice) return ` (the slice: ${s.loaded ? 'this addon has no setThreadSlice' : 'the addon is not loaded'})`;
  try {
    const kept = setSlice(tid, nice, BACKGROUND_SLICE_US);
    if (kept !== BACKGROUND_SLICE_US) return ` (the slice: ${kept === 0 ? 'this kernel sets none; Linux 6.12 and later do' : `the kernel kept ${kept} µs`})`;
    for (const t of sessionThreads) {
      if (t === tid) continue;
      try {
        setSlice(t, nice, BACKGROUND_SLICE_US);
      } catch {
        // ended
      }
    }
    return `, slice ${BACKGROUND_SLICE_US / 1000} ms`;
  } catch (e) {
    return ` (the slice: ${(e as Error).message})`;
  }
}

/** Whether the warning that a worker could not name its thread was given: its cause, /proc, is the process's. */
let unnamedSaid = false;

/** The addon's path, for a worker to load: it aliases the mailbox (inputs read in place there) and reads the thread's CPU clock. */
function workerAddonPath(): string | undefined {
  const s = addonState();
  return s.loaded ? s.addon.path : undefined;
}

/** What starting a worker takes. */
export interface WorkerInit {
  url: URL;
  model: string | Uint8Array;
  /** onnxruntime-node's session options (intraOpNumThreads read here). */
  sessionOptions: { readonly intraOpNumThreads?: number };
  spinMs: number;
  /** At background priority once its session is ready (else the normal one, `normalWhy`). */
  background: boolean;
  /** What threadPolicy says where `background` is false. */
  normalWhy: string;
  /** The doorbell (doorbell.ts) the worker rings for a result in its result box, where there is one. */
  doorbell?: number;
}

export type Started = { w: OnnxruntimeWorker; ready: Extract<WorkerMessage, { type: 'ready' }>; policy: string };

/**
 * Starts a worker and its session (and its wide session, of `wideThreads` intra-op threads,
 * where given): resolves once they are ready, with the thread's priority. The sessions are
 * made at the normal priority; the worker's thread and the intra-op threads its sessions
 * made go to background priority only then (where `background`). Made under SCHED_IDLE
 * beside busy processes, a 1 x 2 session took ~20 s to create and held onnxruntime's locks
 * the while (docs/engine.md).
 */
export function spawn(init: WorkerInit, wideThreads?: number): Promise<Started> {
  // Each worker gets a copy of the model's bytes transferred, not cloned: with 10.8 MB of
  // workerData, new Worker() held the JS thread 10.3-12.3 ms cloned, and 4.0-11.9 ms
  // copied and transferred (two runs each).
  const bytes = typeof init.model === 'string' ? init.model : new Uint8Array(init.model); // a copy (Buffer#slice would share)
  const transfer = typeof bytes === 'string' ? [] : [bytes.buffer as ArrayBuffer];
  const guard = exitGuard();
  const state = stateWord();
  const box = resultBox();
  const addonPath = workerAddonPath();
  const worker = startWorker(init.url, { model: bytes, sessionOptions: init.sessionOptions, wideThreads, spinMs: init.spinMs, exitGuard: guard.data, state, resultBox: box, addonPath, doorbell: init.doorbell }, transfer);
  worker.once('exit', guard.release);
  return new Promise((resolve, reject) => {
    const onStart = (msg: WorkerMessage): void => {
      worker.off('message', onStart);
      worker.off('exit', onExit);
      if (msg.type === 'ready') {
        const policy = init.background ? backgroundThreads(msg.tid, msg.threads ?? []) : init.normalWhy;
        const severalThreads = wideThreads !== undefined || (init.sessionOptions.intraOpNumThreads ?? 1) > 1;
        if (isBackground(policy) && msg.threads === undefined && severalThreads && !unnamedSaid) {
          unnamedSaid = true;
          process.emitWarning('tensorrt-node: an onnxruntime worker could not name its thread (/proc/thread-self/comm), so the intra-op threads its session made are not known: they keep the normal priority, the worker alone runs at background priority', { code: 'EBACKEND' });
        }
        resolve({ w: new OnnxruntimeWorker(worker, state, box, msg.tid, msg.rings === true), ready: msg, policy });
        return;
      }
      // Without a session the worker serves nothing, and runs nothing that ending it could
      // break; left listening it kept the process alive, a thread per failed build.
      void worker.terminate();
      reject(new TensorrtNodeError('EMODEL', `onnxruntime could not load the model: ${msg.type === 'error' ? msg.message : msg.type}`));
    };
    const onExit = (code: number): void => reject(new TensorrtNodeError('EBACKEND', `an onnxruntime worker exited (code ${code}) while starting`, { backend: 'onnxruntime', exitCode: code }));
    worker.on('message', onStart);
    worker.once('error', reject);
    worker.once('exit', onExit);
  });
}

export class OnnxruntimeWorker {
  readonly worker: Worker;
  /** The worker's polling state, and the memory of its mailbox where it has one (mailbox.mjs). */
  readonly state: Int32Array;
  mailbox: SharedArrayBuffer | undefined;
  /** A plain ArrayBuffer over the mailbox's bytes, where the addon makes one: inputs are copied into it by memcpy. */
  mailboxAlias: ArrayBuffer | undefined;
  /** Where the results of mailbox runs come back (mailbox.mjs), the results read from it, and whether a wait for the next is armed. */
  readonly resultBox: SharedArrayBuffer;
  readonly resultCount: Int32Array;
  /** How many the engine has read (only it writes this word): the worker writes the next result only then. */
  readonly resultsRead: Int32Array;
  /** The request slots' memory (mailbox.mjs writeRequest), each with a plain ArrayBuffer over it where the addon makes one. */
  readonly slots: ({ memory: SharedArrayBuffer; alias: ArrayBuffer | undefined } | undefined)[] = [undefined, undefined];
  /** Whether the worker rings the engine's doorbell for a result in its box (else Atomics.notify wakes a waitAsync). */
  readonly rings: boolean;
  watchingResults = false;
  readonly pending = new Map<number, Pending>();
  /** Requests other than runs (the wide session's creation and release), by id. */
  readonly control = new Map<number, { resolve(): void; reject(e: Error): void }>();
  dead: Error | undefined;
  /** The uncaught error that ended the thread, where one did. */
  cause: Error | undefined;
  /** The thread's Linux id, where known. */
  readonly tid: number | undefined;
  /** Replaced by a worker of another scheduling policy (renew()): ends once its runs settle. */
  retired = false;

  constructor(worker: Worker, state: Int32Array, resultBox: SharedArrayBuffer, tid: number | undefined, rings: boolean) {
    this.worker = worker;
    this.rings = rings;
    this.state = state;
    this.resultBox = resultBox;
    this.resultCount = resultCount(resultBox);
    this.resultsRead = resultsRead(resultBox);
    this.tid = tid;
  }

  fail(err: Error): void {
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const c of this.control.values()) c.reject(err);
    this.control.clear();
    this.referenced();
  }

  /**
   * An idle worker does not keep the process alive (a script that never calls dispose()
   * still ends, as with a plain session); one with runs or control requests in flight does,
   * so an awaited answer always arrives. Toggled on the transitions only.
   */
  track(id: number, p: Pending): void {
    this.pending.set(id, p);
    this.referenced();
  }

  untrack(id: number): void {
    this.pending.delete(id);
    this.referenced();
  }

  /** Whether a run whose inputs crossed in shared memory is out: its result may come through the result box. */
  boxRunOut(): boolean {
    for (const p of this.pending.values()) if (p.viaMailbox || p.slot !== undefined) return true;
    return false;
  }

  /** A request slot no run in flight uses (the worker may still read a used one), if any. */
  freeSlot(): number | undefined {
    let used = 0;
    for (const p of this.pending.values()) if (p.slot !== undefined) used |= 1 << p.slot;
    for (let k = 0; k < this.slots.length; k++) if (!(used & (1 << k))) return k;
    return undefined;
  }

  /** As track, for a request other than a run. */
  trackControl(id: number, c: { resolve(): void; reject(e: Error): void }): void {
    this.control.set(id, c);
    this.referenced();
  }

  untrackControl(id: number): void {
    this.control.delete(id);
    this.referenced();
  }

  private isRef = false;

  private referenced(): void {
    const busy = this.pending.size + this.control.size > 0;
    if (busy === this.isRef) return;
    this.isRef = busy;
    if (busy) this.worker.ref();
    else this.worker.unref();
  }
}
