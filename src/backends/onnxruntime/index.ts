/**
 * The ONNX Runtime backend: onnxruntime-node sessions, one per worker thread, so
 * that inference never runs on the JS thread (DESIGN.md decision 5). A request crosses
 * through the worker's shared-memory mailbox where the worker polls for it, else by
 * message with its buffers transferred (mailbox.mjs); the workers themselves, workers.ts.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import type { Backend, BatchParts, RunHint } from '../types.js';
import type { Feeds, TensorDtype, TensorInfo, TensorLike, TypedArray } from '../../tensor.js';
import { TensorrtNodeError } from '../../errors.js';
import { addonState } from '../../native/index.js';
import { BufferPool } from '../../batching/pool.js';
import { CTORS, dtypeOf, layout, postRequest, readResult, writeRequest } from './mailbox.mjs';
import { PolicyWatch, type PolicyChange } from './policy-watch.js';
import { openDoorbell, type Doorbell } from './doorbell.js';
import { OnnxruntimeWorker, isBackground, spawn, workerUrl, type OnnxruntimeRunResult, type Started, type WireTensor, type WorkerInit, type WorkerMessage } from './workers.js';

export type { OnnxruntimeRunResult } from './workers.js';
export { workerExecArgv } from './workers.js';

export interface OnnxruntimeBackendOptions {
  /** Worker threads, each with its own session. Default: see `defaultThreading`. */
  instances?: number;
  /** intraOpNumThreads of each session. Default: see `defaultThreading`. */
  threadsPerInstance?: number;
  /**
   * Whether ORT's intra-op threads spin between the parallel parts of a run (default
   * yes). They stop spinning when a run returns (ORT's session.force_spinning_stop), so
   * idle workers do not compete with the JS thread for the cores. Measured on PaddleOCR
   * cls, 2 threads: batch 1 ran 1.6 ms spinning against 2.3 ms not, batch 16 13.2 ms
   * against 15.5 ms (docs/engine.md).
   */
  spinning?: boolean;
  /**
   * Whether the inference threads (each worker and ORT's intra-op threads) run at
   * background priority, 10 nice steps below the JS thread, so that the JS thread takes a
   * core from them the moment it wakes (default yes). With every core busy in ORT at the
   * same priority, the JS thread waited up to 7 ms for a core; the price is that other busy
   * processes of the machine (or of the container's cgroup) outweigh inference
   * (docs/engine.md): where that starves the workers (starvation.ts), they are replaced by
   * workers of normal priority. Linux only; elsewhere the threads keep the normal priority
   * and `threadPolicy` says why.
   */
  backgroundThreads?: boolean;
  /** onnxruntime graph optimization level. Default 'all'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** More session config entries (`session.*` keys without the prefix), e.g. for Q/DQ models. */
  sessionConfig?: Readonly<Record<string, string>>;
}

/** The onnxruntime-node version, read from its package.json. */
export function onnxruntimeVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

/**
 * Worker count and threads per session from the cores: one single-threaded worker per
 * core, up to 8 workers, then more threads per worker (2 cores: 2 × 1; 16 cores: 8 × 2).
 * Under concurrent load, single-threaded sessions side by side beat one session with
 * the same cores as intra-op threads (no synchronisation inside each operator); a lone
 * request runs on one thread, somewhat slower. The cap bounds the memory of the
 * sessions, which share nothing. Measured: docs/engine.md, bench/engine-threads.ts.
 */
export function defaultThreading(cores = availableParallelism()): { instances: number; threadsPerInstance: number } {
  const instances = Math.max(1, Math.min(cores, 8));
  const threadsPerInstance = Math.max(1, Math.floor(cores / instances));
  return { instances, threadsPerInstance };
}

/**
 * The onnxruntime-node session options of each worker's session (also for a raw
 * session to compare the engine with, like with like): one run at a time, `threads`
 * intra-op threads that spin within a run and stop when it returns.
 */
export function workerSessionOptions(threads: number, spinning = true): {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  executionMode: 'sequential';
  extra: { session: { force_spinning_stop: '0' | '1'; intra_op: { allow_spinning: '0' | '1' } } };
} {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { force_spinning_stop: '1', intra_op: { allow_spinning: spinning ? '1' : '0' } } },
  };
}

/**
 * How long a worker polls for its next request after a result before it sleeps (with
 * `spinning`). A request that arrives within it skips waking the thread; at batch 1, one
 * in flight, the next request comes ~0.3 ms after the result.
 */
const WORKER_SPIN_MS = 1;

/**
 * Memory for a request of `bytes` (a mailbox or a request slot) where `old` holds less:
 * twice the old size, at least `bytes`, at most MAILBOX_MAX_BYTES; with its alias.
 */
function requestMemory(bytes: number, old: SharedArrayBuffer | undefined): { memory: SharedArrayBuffer; alias: ArrayBuffer | undefined } {
  const memory = new SharedArrayBuffer(Math.min(MAILBOX_MAX_BYTES, Math.max(bytes, 2 * (old?.byteLength ?? 0))));
  return { memory, alias: sharedMemoryAlias(memory) };
}

/** A plain ArrayBuffer over `memory`'s bytes (the addon's sharedMemoryAlias), where the addon is loaded and has it. */
function sharedMemoryAlias(memory: SharedArrayBuffer): ArrayBuffer | undefined {
  const s = addonState();
  if (!s.loaded || typeof s.addon.binding.sharedMemoryAlias !== 'function') return undefined;
  try {
    return s.addon.binding.sharedMemoryAlias(new Uint8Array(memory));
  } catch {
    return undefined; // copied into the shared memory itself
  }
}

function toDtype(type: string, where: string): TensorDtype {
  if (type in CTORS) return type as TensorDtype;
  throw new TensorrtNodeError('EMODEL', `${where}: tensor type '${type}' is not supported by the engine`);
}

/** Workers that exit unexpectedly are replaced, unless more than MAX_EXITS exit within RESTART_WINDOW_MS. */
const MAX_EXITS = 3;
const RESTART_WINDOW_MS = 60_000;

/** What threadPolicy says of workers replaced for starvation. */
function starvedWhy(c: PolicyChange): string {
  return `starved at background priority: over ${c.windows} windows of ${c.windowMs} ms the workers ran ${c.ranPercent!.toFixed(1)} % of the time they were ready to`;
}

/**
 * A request larger than this goes by postMessage, merged and transferred: each worker keeps
 * its mailbox for good, and a run long enough to need that much input gains little from a
 * quicker hop. Either way the callers' memory is copied once.
 */
const MAILBOX_MAX_BYTES = 1 << 20;

export class OnnxruntimeBackend implements Backend {
  readonly name = 'onnxruntime' as const;
  readonly version: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly inputDimParams: Readonly<Record<string, readonly (string | null)[]>>;
  readonly instances: number;
  readonly threadsPerInstance: number;
  /** 'nice <n>' (background priority), or 'normal' with the reason (which may say the workers left the background, starved, until the machine is quiet again). */
  threadPolicy: string;
  private readonly workers: OnnxruntimeWorker[];
  /**
   * Memory of large results the engine released (`release`), sent back to the workers as
   * spares to copy later results into, so that result memory does not arrive fresh on the
   * JS thread for every batch. Kept by exact size: results of fixed shapes repeat it.
   */
  private readonly spares = new BufferPool(8, true);
  /** Byte length of each large output at a batch's row count, from the last such result. */
  private readonly resultBytes = new Map<number, Map<string, number>>();
  private nextId = 1;
  private disposed = false;
  /** How a worker is started, kept to start one in place of a worker that exits. */
  private init: WorkerInit;
  /** Each input's position in the session's inputs, as the mailbox names them. */
  private readonly inputIndex: Map<string, number>;
  /** When workers exited unexpectedly, within the last RESTART_WINDOW_MS. */
  private readonly exits: number[] = [];
  /** Replacements being started. */
  private readonly starting = new Set<Promise<void>>();
  /** Set once workers exited too often to start more: runs that find no live worker fail with it. */
  private gaveUp: TensorrtNodeError | undefined;
  private restartCount = 0;
  /**
   * Runs sent; those of them that reached a polling worker through its mailbox; and those
   * whose inputs onnxruntime read in place there (as the workers report).
   */
  private runCount = 0;
  private mailboxRunCount = 0;
  private inPlaceRunCount = 0;
  /** Runs written into a request slot (the worker busy or asleep), announced by a message. */
  private slotRunCount = 0;
  /** Results that came back through a result box. */
  private boxResultCount = 0;
  /** The session's output names by position, as the result box numbers them. */
  private readonly outputNames: string[];
  /** Time the workers spent inside onnxruntime's run(), as each measured it: their busy time. */
  private sessionRunMs = 0;
  /** Says when the workers should leave background priority (starved) and go back to it (the machine quiet). */
  private readonly policyWatch = new PolicyWatch(
    {
      tids: () => this.workers.filter((w) => !w.dead).map((w) => w.tid),
      runsWaiting: () => this.workers.some((w) => w.pending.size > 0),
    },
    { starved: (c) => this.leaveIdle(c), quiet: (c) => this.returnToIdle(c) },
  );
  /** Workers replaced for another policy, ending once their runs settle. */
  private readonly retiring = new Set<Promise<void>>();
  /**
   * Workers replaced because they starved at background priority, idle now: ended once the
   * machine is quiet (returnToIdle) or at dispose. A niced thread that ends beside busy
   * processes closes its message port holding the port's mutex and, preempted there, held the
   * JS thread 120 ms (perf, docs/engine.md); idle, it costs its memory only.
   */
  private readonly parked = new Set<OnnxruntimeWorker>();
  /** The doorbell the workers ring for results in their boxes (doorbell.ts), where the addon has one. */
  private bell: Doorbell | undefined;
  /** Workers that ring it and have a run out whose result may come through their box: whose boxes a ring may concern. */
  private readonly ringing = new Set<OnnxruntimeWorker>();

  private constructor(init: WorkerInit, workers: OnnxruntimeWorker[], inputs: TensorInfo[], outputs: TensorInfo[], dimParams: Record<string, (string | null)[]>, threads: number, threadPolicy: string) {
    this.init = init;
    this.threadPolicy = threadPolicy;
    this.workers = workers;
    this.inputs = inputs;
    this.outputs = outputs;
    this.outputNames = outputs.map((o) => o.name);
    this.inputDimParams = dimParams;
    this.inputIndex = new Map(inputs.map((t, i) => [t.name, i]));
    this.instances = workers.length;
    this.threadsPerInstance = threads;
    this.version = onnxruntimeVersion();
  }

  static async create(model: string | Uint8Array, options: OnnxruntimeBackendOptions = {}): Promise<OnnxruntimeBackend> {
    const defaults = defaultThreading();
    const instances = options.instances ?? defaults.instances;
    const threads = options.threadsPerInstance ?? defaults.threadsPerInstance;
    if (!Number.isInteger(instances) || instances < 1) throw new RangeError(`instances must be a positive integer, got ${instances}`);
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threadsPerInstance must be a positive integer, got ${threads}`);
    const background = options.backgroundThreads ?? true;
    const base = workerSessionOptions(threads, options.spinning ?? true);
    const sessionOptions = {
      ...base,
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      extra: { session: { ...base.extra.session, ...options.sessionConfig } },
    };
    let made: OnnxruntimeBackend | undefined;
    const bell = openDoorbell(() => made?.readRungBoxes());
    const init: WorkerInit = { url: workerUrl(), model, sessionOptions, spinMs: (options.spinning ?? true) ? WORKER_SPIN_MS : 0, background, normalWhy: 'normal (backgroundThreads: false)', doorbell: bell?.id };
    const settled = await Promise.allSettled(Array.from({ length: instances }, () => spawn(init)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const ok = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
    // A build that fails ends the workers it started: a live worker keeps the process from exiting.
    const abandon = async (e: unknown): Promise<never> => {
      await Promise.all(ok.map(({ w }) => w.worker.terminate()));
      bell?.close();
      throw e instanceof Error ? e : new Error(String(e));
    };
    if (failed) return abandon(failed.reason);
    const first = ok[0]!.ready;
    let inputs: TensorInfo[];
    let outputs: TensorInfo[];
    try {
      inputs = first.inputs.map((i) => ({ name: i.name, dtype: toDtype(i.type, `input '${i.name}'`), shape: i.shape }));
      outputs = first.outputs.map((o) => ({ name: o.name, dtype: toDtype(o.type, `output '${o.name}'`), shape: o.shape }));
    } catch (e) {
      return abandon(e);
    }
    const dimParams = Object.fromEntries(first.inputs.map((i) => [i.name, i.dimParams]));
    const backend = new OnnxruntimeBackend(init, ok.map(({ w }) => w), inputs, outputs, dimParams, threads, ok[0]!.policy);
    backend.bell = bell;
    made = backend;
    for (const w of backend.workers) {
      backend.listen(w);
      w.worker.unref(); // until a run is in flight (track)
    }
    if (isBackground(backend.threadPolicy)) backend.policyWatch.watchStarvation();
    return backend;
  }

  private listen(w: OnnxruntimeWorker): void {
    w.worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'ready') return;
      const c = w.control.get(msg.id);
      if (c) {
        w.untrackControl(msg.id);
        if (msg.type === 'error') c.reject(new TensorrtNodeError('EMODEL', `onnxruntime: ${msg.message}`, { backend: 'onnxruntime' }));
        else c.resolve();
        return;
      }
      if (msg.type === 'wide') return;
      const p = w.pending.get(msg.id);
      if (!p) return;
      w.untrack(msg.id);
      if (msg.type === 'error') {
        p.reject(new TensorrtNodeError('EMODEL', `onnxruntime run failed: ${msg.message}`, { backend: 'onnxruntime' }));
        return;
      }
      for (const b of msg.spare) this.spares.give(b);
      // Put the input memory back into the caller's feeds, for reuse.
      for (const name in msg.inputs) {
        const t = p.feeds[name] as { data: TypedArray } | undefined;
        if (t) t.data = new CTORS[dtypeOf(t.data)](msg.inputs[name]!, 0, p.lengths[name]!);
      }
      const outputs: Record<string, TensorLike> = {};
      for (const name in msg.outputs) {
        const t = msg.outputs[name]!;
        const dtype = toDtype(t.type, `output '${name}'`);
        outputs[name] = { data: new CTORS[dtype](t.buffer, t.byteOffset, t.length), dims: t.dims, type: t.type };
        if (recyclable(t.buffer)) {
          let sizes = this.resultBytes.get(p.rows);
          if (!sizes) this.resultBytes.set(p.rows, (sizes = new Map()));
          const before = sizes.get(name);
          // Results changed size (another input shape): spares of the old size would wait forever.
          if (before !== undefined && before !== t.buffer.byteLength) this.spares.drop(before);
          sizes.set(name, t.buffer.byteLength);
        }
      }
      if (msg.inPlace && p.viaMailbox) this.inPlaceRunCount++;
      this.sessionRunMs += msg.computeMs;
      // Which session ran it, as the worker says: a run asked for the wide session runs on
      // the single-threaded one where the worker has none.
      p.resolve({ outputs, computeMs: msg.computeMs, wide: msg.wide, ...(msg.cpuMs !== undefined ? { cpuMs: msg.cpuMs } : {}) });
    });
    // An uncaught error ends the thread: 'exit' follows, and says what it was.
    w.worker.on('error', (err) => (w.cause ??= err));
    w.worker.on('exit', (code) => this.lost(w, code));
  }

  /**
   * Waits for the next result in `w`'s result box (mailbox.mjs), while a run of its whose
   * inputs crossed in shared memory is out: by the doorbell where the worker rings it, else by
   * Atomics.waitAsync (one armed at a time).
   */
  private watchResults(w: OnnxruntimeWorker): void {
    if (w.dead || !w.boxRunOut()) return;
    if (w.rings) {
      this.ringing.add(w);
      return;
    }
    if (w.watchingResults) return;
    w.watchingResults = true;
    const wait = Atomics.waitAsync(w.resultCount, 0, Atomics.load(w.resultsRead, 0));
    if (wait.async) void wait.value.then(() => this.takeResult(w)).catch((err: unknown) => this.unreadable(w, err));
    else this.takeResult(w);
  }

  /** A result box that could not be read fails the worker's mailbox runs (not the process, as an unhandled rejection would). */
  private unreadable(w: OnnxruntimeWorker, err: unknown): void {
    w.watchingResults = false;
    for (const [id, p] of w.pending) {
      if (!p.viaMailbox && p.slot === undefined) continue;
      w.untrack(id);
      p.reject(new TensorrtNodeError('EBACKEND', `onnxruntime: a result could not be read from shared memory: ${(err as Error)?.message ?? String(err)}`, { backend: 'onnxruntime' }));
    }
  }

  /** The doorbell rang: a result may be in the box of any worker that rings it. */
  private readRungBoxes(): void {
    for (const w of this.ringing) {
      try {
        this.readBox(w);
      } catch (err) {
        this.unreadable(w, err); // as a failed waitAsync: the worker's runs fail, not the process
      }
      if (w.dead || !w.boxRunOut()) this.ringing.delete(w);
    }
  }

  private takeResult(w: OnnxruntimeWorker): void {
    w.watchingResults = false;
    this.readBox(w);
    this.watchResults(w);
  }

  /**
   * A result the worker wrote into its result box, if a new one is there. Its run may have
   * settled already (the worker exited, and its runs failed): then it is dropped.
   */
  private readBox(w: OnnxruntimeWorker): void {
    const count = Atomics.load(w.resultCount, 0);
    if (count !== Atomics.load(w.resultsRead, 0)) {
      const r = readResult(w.resultBox, this.outputNames);
      // Read: the worker may write its next result.
      Atomics.store(w.resultsRead, 0, count);
      const p = w.pending.get(r.id);
      if (p) {
        w.untrack(r.id);
        if (r.inPlace && p.viaMailbox) this.inPlaceRunCount++;
        this.sessionRunMs += r.computeMs;
        this.boxResultCount++;
        p.resolve({ outputs: r.outputs, computeMs: r.computeMs, wide: r.wide });
      }
    }
  }

  /**
   * A worker's thread ended. After dispose() that is the end. Otherwise its runs fail with
   * EBACKEND marked `retry` (the batcher runs them again on another worker: they were
   * accepted, and the inputs are still the callers'), and another worker starts in its
   * place, unless workers exited more than MAX_EXITS times within RESTART_WINDOW_MS.
   */
  private lost(w: OnnxruntimeWorker, code: number): void {
    if (w.retired) {
      // Its replacement serves already; a run it still held (it ended early) runs again there.
      w.fail(new TensorrtNodeError('EBACKEND', `a retired onnxruntime worker exited (code ${code}) while running this batch`, { backend: 'onnxruntime', retry: true, exitCode: code }));
      return;
    }
    if (this.disposed) {
      w.fail(new TensorrtNodeError('EDISPOSED', `onnxruntime worker exited (code ${code})`));
      return;
    }
    const why = `code ${code}${w.cause ? `: ${w.cause.message}` : ''}`;
    w.fail(new TensorrtNodeError('EBACKEND', `an onnxruntime worker exited (${why}) while running this batch`, { backend: 'onnxruntime', retry: true, exitCode: code }));
    this.exited(why);
  }

  /** Counts an unexpected exit (or a failed start) and starts a replacement, within the limit. */
  private exited(why: string): void {
    const now = performance.now();
    this.exits.push(now);
    while (this.exits[0]! < now - RESTART_WINDOW_MS) this.exits.shift();
    if (this.exits.length > MAX_EXITS) {
      this.gaveUp = new TensorrtNodeError('EBACKEND', `onnxruntime workers exited ${this.exits.length} times within ${RESTART_WINDOW_MS / 1000} s (last: ${why}); no more are started`, { backend: 'onnxruntime' });
      process.emitWarning(`tensorrt-node: ${this.gaveUp.message}`, { code: 'EBACKEND' });
      return;
    }
    process.emitWarning(`tensorrt-node: an onnxruntime worker exited (${why}); its batches run again and another worker starts`, { code: 'EBACKEND' });
    const task: Promise<void> = this.replace().finally(() => this.starting.delete(task));
    this.starting.add(task);
  }

  /** Replaces every worker by one of normal priority (starved at background priority); the old ones end once their runs settle. */
  private leaveIdle(c: PolicyChange): void {
    const why = starvedWhy(c);
    this.init = { ...this.init, background: false, normalWhy: `normal (${why})` };
    this.threadPolicy = this.init.normalWhy;
    process.emitWarning(`tensorrt-node: the onnxruntime workers were ${why}, other work holding the cores; new workers of normal priority take their place, until the machine is quiet again (backgroundThreads: false starts an engine so)`, { code: 'EBACKEND' });
    const task: Promise<void> = this.renew()
      .then(() => {
        if (!this.disposed) this.policyWatch.watchQuiet();
      })
      .finally(() => this.starting.delete(task));
    this.starting.add(task);
  }

  /** Replaces every worker by one at background priority again (the machine is quiet); the old ones end once their runs settle. */
  private returnToIdle(c: PolicyChange): void {
    // Quiet now: the starved workers parked since can end without a wait.
    for (const w of this.parked) void w.worker.terminate();
    this.parked.clear();
    this.init = { ...this.init, background: true };
    process.emitWarning(`tensorrt-node: other processes used under ${c.othersBelowPercent} % of the cores over ${c.windows} windows of ${c.windowMs} ms; new onnxruntime workers at background priority take the place of those of normal priority`, { code: 'EBACKEND' });
    const task: Promise<void> = this.renew()
      .then((policy) => {
        if (this.disposed) return;
        if (policy === undefined) {
          // None started (each failed): the old workers serve on, at
          // the normal policy, until the machine is quiet again.
          this.init = { ...this.init, background: false };
          this.policyWatch.watchQuiet();
          return;
        }
        this.threadPolicy = policy;
        if (isBackground(policy)) this.policyWatch.watchStarvation();
      })
      .finally(() => this.starting.delete(task));
    this.starting.add(task);
  }

  /**
   * Starts a worker for each live one, with `init` as it is now, and retires the old one once
   * the new one is ready. Resolves with the new workers' scheduling policy (undefined where
   * none started).
   */
  private async renew(): Promise<string | undefined> {
    const old = this.workers.filter((w) => !w.dead);
    const wide = this.wide;
    const starts = old.map((w) => spawn(this.init, w === wide?.worker ? wide.threads : undefined));
    const started = await Promise.allSettled(starts);
    let policy: string | undefined;
    for (const [k, s] of started.entries()) {
      if (s.status === 'rejected') {
        process.emitWarning(`tensorrt-node: a worker to take another's place (${this.init.background ? 'background priority' : 'normal priority'}) failed to start (${(s.reason as Error).message}); the old one serves on`, { code: 'EBACKEND' });
        continue;
      }
      const fresh = s.value.w;
      policy ??= s.value.policy;
      const i = this.workers.indexOf(old[k]!);
      if (this.disposed || i < 0) {
        await fresh.worker.terminate();
        continue;
      }
      this.install(fresh, i);
      if (wide && old[k] === wide.worker && this.wide === wide) this.wide = { worker: fresh, threads: wide.threads };
      // Starved workers hand their batches back; workers of normal priority finish theirs.
      this.retire(old[k]!, !this.init.background);
    }
    return policy;
  }

  /**
   * Ends a replaced worker. With `handBack` (a starved worker), the batcher's runs it holds go
   * back to the batcher at once, to run again on the new workers (starved, it would take
   * seconds to reach them); other runs, and callers other than the batcher (the build's
   * probes), wait for their answer. It is ended once it has answered them all, as ending a
   * thread inside onnxruntime's run() can abort the process; a starved one only once the
   * machine is quiet (`parked`).
   */
  private retire(w: OnnxruntimeWorker, handBack: boolean): void {
    w.retired = true;
    const again = new TensorrtNodeError('EBACKEND', 'the onnxruntime worker holding this batch was replaced (starved at background priority); it runs again on a new one', { backend: 'onnxruntime', retry: true });
    for (const p of w.pending.values()) {
      if (!handBack || !p.batcher) continue;
      const { reject } = p;
      p.resolve = () => {};
      p.reject = () => {};
      reject(again);
    }
    const task: Promise<void> = settledRuns(w)
      .then(async () => {
        if (handBack && !this.disposed) this.parked.add(w); // starved: ends once the machine is quiet (parked)
        else await w.worker.terminate();
      })
      .then(() => undefined, () => undefined)
      .finally(() => this.retiring.delete(task));
    this.retiring.add(task);
  }

  /** Starts a worker in place of the first dead one (and the wide session again, where the dead one held it). */
  private async replace(): Promise<void> {
    let started: Started;
    try {
      started = await spawn(this.init);
    } catch (e) {
      if (!this.disposed) this.exited(`a replacement failed to start: ${(e as Error).message}`);
      return;
    }
    if (this.disposed) {
      await started.w.worker.terminate();
      return;
    }
    this.install(started.w, this.workers.findIndex((x) => x.dead));
    this.restartCount++;
    // Exits are rare: the wide session comes back on a worker of its own (addWide), not on
    // this one, whose slot another replacement may race for.
    const wide = this.wide;
    if (!wide || !wide.worker.dead || this.disposed) return;
    this.wide = undefined;
    try {
      await this.addWide(wide.threads);
    } catch (e) {
      process.emitWarning(`tensorrt-node: the wide session could not be made again on a new onnxruntime worker (${(e as Error).message}); lone batches run on one thread`, { code: 'EBACKEND' });
    }
  }

  /** Serves from a started worker, in slot `i` (a new one where -1). */
  private install(w: OnnxruntimeWorker, i: number): void {
    this.workers[i < 0 ? this.workers.length : i] = w;
    this.listen(w);
    w.worker.unref(); // until a run is in flight (track)
  }

  /**
   * The first worker's second session, with `threads` intra-op threads: where there is one,
   * a batch that finds every worker idle may run on it (`runTimed`'s `wide`), so that a lone
   * request of a large model uses every core, while under load the single-threaded sessions
   * side by side keep serving. Made by `addWide`; the engine decides (src/engine/lone-runs.ts).
   */
  private wide: { worker: OnnxruntimeWorker; threads: number } | undefined;

  /**
   * Runs sent to the workers, how many of them went through a mailbox (mailbox.mjs), how
   * many of those onnxruntime read in place, without a copy in the worker, how many were
   * written into a request slot for a busy or sleeping worker, and how many results came
   * back through a result box rather than a message.
   */
  stats(): { runs: number; mailboxRuns: number; mailboxRunsInPlace: number; slotRuns: number; boxResults: number; sessionRunMs: number } {
    return { runs: this.runCount, mailboxRuns: this.mailboxRunCount, mailboxRunsInPlace: this.inPlaceRunCount, slotRuns: this.slotRunCount, boxResults: this.boxResultCount, sessionRunMs: this.sessionRunMs };
  }

  /** Workers started in place of ones that exited. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Threads of the wide session, where one is in use; undefined otherwise. */
  get wideThreads(): number | undefined {
    return this.wide?.threads;
  }

  private control(w: OnnxruntimeWorker, message: Record<string, unknown>): Promise<void> {
    if (w.dead) return Promise.reject(w.dead);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      w.trackControl(id, { resolve, reject });
      w.worker.postMessage({ ...message, id });
    });
  }

  /**
   * Makes the wide session (see `wide`) with `threads` intra-op threads: a new worker with
   * both sessions takes the first live worker's place, which ends once its runs settle. Made
   * on a worker already in the background (then SCHED_IDLE), the session's creation starved
   * beside busy processes and held the build (29.6 s beside three busy loops a core, session
   * 19), unseen by the starvation check, which watches runs only; a new worker makes both at
   * the normal priority (spawn).
   */
  async addWide(threads: number): Promise<void> {
    if (!Number.isInteger(threads) || threads < 2) throw new RangeError(`a wide session needs 2 or more threads, got ${threads}`);
    // Workers replaced meanwhile (starved, or exited) are replaced again, a few times at most.
    for (let attempt = 0; attempt < 3; attempt++) {
      const old = this.workers.find((x) => !x.dead);
      if (!old || this.disposed) throw new TensorrtNodeError('EDISPOSED', 'no onnxruntime worker is alive');
      const init = this.init;
      const { w: fresh } = await spawn(init, threads);
      const i = this.workers.indexOf(old);
      if (this.disposed || i < 0 || old.dead || init !== this.init) {
        await fresh.worker.terminate();
        continue;
      }
      this.install(fresh, i);
      this.retire(old, false);
      this.wide = { worker: fresh, threads };
      return;
    }
    throw new TensorrtNodeError('EBACKEND', 'the onnxruntime workers were replaced while the wide session was made, three times', { backend: 'onnxruntime' });
  }

  /** Releases the wide session; runs go to the single-threaded sessions only. */
  async dropWide(): Promise<void> {
    const wide = this.wide;
    this.wide = undefined;
    if (wide && !wide.worker.dead) await this.control(wide.worker, { type: 'dropWide' });
  }

  /** The least busy live worker, where one is alive. */
  private pick(): OnnxruntimeWorker | undefined {
    let best: OnnxruntimeWorker | undefined;
    for (const w of this.workers) {
      if (w.dead) continue;
      if (!best || w.pending.size < best.pending.size) best = w;
    }
    return best;
  }

  async run(feeds: Feeds): Promise<Record<string, TensorLike>> {
    return (await this.runTimed(feeds)).outputs;
  }

  /** A batch the batcher dispatched alone may go to the wide session (where every worker is idle). */
  async runHinted(feeds: Feeds, hint: RunHint): Promise<Record<string, TensorLike>> {
    return (await this.runTimed(feeds, { wide: hint.alone ? 'auto' : false })).outputs;
  }

  /** As runHinted, with the batch's parts: a run through a mailbox merges them there, the batcher's merge skipped. */
  async runBatch(batch: BatchParts, hint: RunHint): Promise<Record<string, TensorLike>> {
    return (await this.send(batch, { wide: hint.alone ? 'auto' : false, batcher: true })).outputs;
  }

  /** Whether a batch goes to the wide session: as told, or for 'auto' where every worker is idle. */
  private goesWide(wide: boolean | 'auto'): boolean {
    // Not on a retired worker (renew()): it ends once the runs it held settle.
    if (!this.wide || this.wide.worker.dead || this.wide.worker.retired || wide === false) return false;
    return wide === true || this.workers.every((w) => w.dead || w.pending.size === 0);
  }

  /**
   * Runs one (batched) request. The feeds' buffers are transferred to the worker
   * (the engine's batch buffers: views from offset 0 of an ArrayBuffer of their
   * own) and come back into `feeds` when the run settles; any other view is
   * copied once. A run through a worker's mailbox copies them into it and leaves `feeds` as
   * they are. `wide`: on the wide session (true), never (false, the default), or
   * where every worker is idle ('auto'). `cpuTime`: also the worker thread's time on a CPU
   * (`cpuMs`; the run goes by message, and the worker reads its CPU clock around run()).
   */
  runTimed(feeds: Feeds, options: { wide?: boolean | 'auto'; cpuTime?: boolean } = {}): Promise<OnnxruntimeRunResult> {
    return this.send({ parts: [feeds], rows: firstDim(feeds), merged: () => feeds }, options);
  }

  /**
   * A batch to a worker: through its mailbox, where the worker polls, with the parts
   * written there one after another; else by message, merged (`batch.merged()`) and
   * transferred as runTimed says.
   */
  private send(batch: BatchParts, options: { wide?: boolean | 'auto'; batcher?: boolean; cpuTime?: boolean }): Promise<OnnxruntimeRunResult> {
    if (this.disposed) return Promise.reject(new TensorrtNodeError('EDISPOSED', 'the onnxruntime backend is disposed'));
    const wide = this.goesWide(options.wide ?? false);
    const w = wide ? this.wide!.worker : this.pick();
    if (!w) {
      // Every worker exited: wait for a replacement, where one is starting (merged now: the
      // parts are the callers' memory).
      if (this.starting.size > 0) {
        const feeds = batch.merged();
        return Promise.race(this.starting).then(() => this.runTimed(feeds, options));
      }
      return Promise.reject(this.gaveUp ?? new TensorrtNodeError('EBACKEND', 'no onnxruntime worker is alive', { backend: 'onnxruntime' }));
    }
    const id = this.nextId++;
    this.runCount++;
    const rows = batch.parts.length === 1 ? firstDim(batch.parts[0]!) : batch.rows;
    // Memory of released results to copy this run's large results into (see `spares`).
    const spare: ArrayBuffer[] = [];
    for (const bytes of this.resultBytes.get(rows)?.values() ?? []) {
      const b = this.spares.reuse(bytes);
      if (b) spare.push(b);
    }
    // A worker polling for its next run (idle, nothing else asked of it) takes this one
    // through its mailbox: a copy here instead of a message through its event loop. Not
    // with spares, which only a message can carry. A worker that never polls has none.
    const mayPoll = this.init.spinMs > 0 && spare.length === 0 && !options.cpuTime && w.pending.size + w.control.size === 0;
    // Else, to a worker that rings the doorbell, through one of its request slots, so that
    // the result may come back through its result box: no message from the worker, whose
    // sending holds a lock the JS thread then waits on (doorbell.ts).
    const freeSlot = w.rings && spare.length === 0 && !options.cpuTime ? w.freeSlot() : undefined;
    const plan = mayPoll || freeSlot !== undefined ? layout(batch.parts, batch.rows, this.inputIndex) : undefined;
    if (mayPoll && plan && w.mailbox && plan.bytes <= w.mailbox.byteLength && postRequest(w.state, w.mailbox, id, wide, plan, w.mailboxAlias)) {
      this.mailboxRunCount++;
      return new Promise<OnnxruntimeRunResult>((resolve, reject) => {
        w.track(id, { feeds: {}, lengths: {}, rows, batcher: options.batcher, viaMailbox: true, resolve, reject });
        this.watchResults(w);
      });
    }
    // Memory for later mailbox requests goes with this run, where it needs more than the worker has.
    let mailbox: SharedArrayBuffer | undefined;
    if (mayPoll && plan && plan.bytes > (w.mailbox?.byteLength ?? 0) && plan.bytes <= MAILBOX_MAX_BYTES) {
      const grown = requestMemory(plan.bytes, w.mailbox);
      mailbox = w.mailbox = grown.memory;
      w.mailboxAlias = grown.alias;
    }
    if (freeSlot !== undefined && plan && plan.bytes <= MAILBOX_MAX_BYTES) {
      const slot = freeSlot;
      let slotMemory: SharedArrayBuffer | undefined;
      if (!w.slots[slot] || w.slots[slot].memory.byteLength < plan.bytes) {
        w.slots[slot] = requestMemory(plan.bytes, w.slots[slot]?.memory);
        slotMemory = w.slots[slot].memory;
      }
      const { memory, alias } = w.slots[slot];
      writeRequest(memory, id, wide, plan, alias);
      this.slotRunCount++;
      return new Promise<OnnxruntimeRunResult>((resolve, reject) => {
        w.track(id, { feeds: {}, lengths: {}, rows, batcher: options.batcher, slot, resolve, reject });
        w.worker.postMessage({ type: 'run', id, wide, slot, ...(slotMemory ? { slotMemory } : {}), ...(mailbox ? { mailbox } : {}) });
        this.watchResults(w);
      });
    }
    const feeds = batch.merged();
    const wire: Record<string, WireTensor> = {};
    const lengths: Record<string, number> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      let data = t.data;
      const own = data.buffer instanceof ArrayBuffer && data.byteOffset === 0;
      if (!own || transfer.includes(data.buffer as ArrayBuffer)) {
        data = data.slice() as TypedArray;
        (t as { data: TypedArray }).data = data;
      }
      transfer.push(data.buffer as ArrayBuffer);
      const type = t.type ?? dtypeOf(data);
      wire[name] = { type, dims: [...t.dims], buffer: data.buffer as ArrayBuffer, byteOffset: 0, length: data.length };
      lengths[name] = data.length;
    }
    transfer.push(...spare);
    return new Promise<OnnxruntimeRunResult>((resolve, reject) => {
      w.track(id, { feeds, lengths, rows, batcher: options.batcher, resolve, reject });
      w.worker.postMessage({ type: 'run', id, feeds: wire, spare, wide, mailbox, ...(options.cpuTime ? { cpuTime: true } : {}) }, transfer);
    });
  }

  release(outputs: Record<string, TensorLike>): void {
    for (const name in outputs) {
      const buffer = outputs[name]!.data.buffer;
      if (recyclable(buffer)) this.spares.give(buffer);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.policyWatch.stop();
    // A replacement still starting ends itself once started (replace(), renew()).
    await Promise.allSettled(this.starting);
    await Promise.all(
      this.workers.map(async (w) => {
        // Let runs in progress finish, then end the thread.
        await settledRuns(w);
        await w.worker.terminate();
      }),
    );
    await Promise.allSettled(this.retiring);
    await Promise.all([...this.parked].map((w) => w.worker.terminate()));
    this.parked.clear();
    // Every worker has ended: nothing rings it any more.
    this.ringing.clear();
    this.bell?.close();
  }
}

/** Resolves once every run and control request `w` holds now has settled (its callers' handlers called first). */
function settledRuns(w: OnnxruntimeWorker): Promise<void> {
  return Promise.allSettled(
    [...w.pending.values(), ...w.control.values()].map((p) => new Promise<void>((r) => {
      const { resolve, reject } = p;
      p.resolve = (v) => { resolve(v); r(); };
      p.reject = (e) => { reject(e); r(); };
    })),
  ).then(() => undefined);
}

/** Results this large have their memory reused; smaller ones cost V8 little and stay fresh. */
const RECYCLE_MIN_BYTES = 65536;

function recyclable(buffer: ArrayBufferLike): buffer is ArrayBuffer {
  return buffer instanceof ArrayBuffer && buffer.byteLength >= RECYCLE_MIN_BYTES;
}

/** Axis 0 of the first input (1 for a scalar input). */
function firstDim(feeds: Feeds): number {
  for (const name in feeds) return feeds[name]!.dims[0] ?? 1;
  return 1;
}

export function createOnnxruntimeBackend(model: string | Uint8Array, options?: OnnxruntimeBackendOptions): Promise<OnnxruntimeBackend> {
  return OnnxruntimeBackend.create(model, options);
}
