/**
 * Dynamic batching named after Triton's dynamic batcher (DESIGN.md decision 9):
 * requests queue by priority, merge along axis 0 up to `maxBatchSize` (sooner at a
 * preferred size, or when the oldest has waited `maxQueueDelayMs`), and run with up
 * to `maxInFlight` batches at once so that the backend's instances never wait for
 * a batch to form. Every accepted request settles exactly once.
 */
import { TensorrtNodeError, inputError, type ErrorCode } from '../errors.js';
import { kindOf } from '../shapes.js';
import type { TensorLike, TypedArray } from '../tensor.js';
import type { BatchParts } from '../backends/types.js';
import { joinParts, mergeBatch, ownFeeds, recycle, rowsMisfit, rowViews, sameItemShape, splitBatch, type BatchTensor } from './merge.js';
import { BufferPool } from './pool.js';

export interface BatcherOptions {
  /** Largest merged batch; 1 turns merging off. */
  maxBatchSize: number;
  /** How long the oldest request may wait for others to join its batch. 0: never wait. */
  maxQueueDelayMs: number;
  /** Batch sizes to dispatch as soon as they can be formed (Triton's preferred_batch_size). */
  preferredBatchSizes: readonly number[];
  /** Requests waiting beyond this are rejected at once with EQUEUEFULL. */
  maxQueueSize: number;
  /** Timeout for requests that do not give one (undefined: none). */
  defaultTimeoutMs: number | undefined;
  /** Priority levels 1 (highest) .. priorityLevels. */
  priorityLevels: number;
  /** The level of a request that gives none. */
  defaultPriority: number;
  /** Batches running at the same time (the backend's instances). */
  maxInFlight: number;
  /**
   * Where no two requests can merge (no batch axis, or `maxBatchSize` 1) and runs have
   * lately taken less than this (ms), each instance gets its next batch before its run
   * ends, so it does not wait on the JS thread between short runs. 0: never.
   */
  pipelineUnderMs?: number;
  /** Whether the model has a batch axis; without one every request runs alone. */
  batchAxis: boolean;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  priority?: number;
  /** Turns this request's outputs into what its caller gets; a throw rejects the request. */
  finish?: (outputs: Record<string, TensorLike>) => Record<string, TensorLike>;
  /** Whether `finish` copies every output, so that the caller keeps none of the batch's memory. */
  finishCopies?: boolean;
  /**
   * Where `finish` copies each output to (with `finishCopies`): a request split over batches
   * joins its parts straight into it, where it fits, rather than into fresh memory first.
   */
  joinInto?: Readonly<Record<string, TypedArray | Buffer>>;
}

/** Runs a batch; `alone`: no other batch runs or waits as it starts. */
export type Execute = (batch: BatchParts, hint: { alone: boolean }) => Promise<Record<string, TensorLike>>;

/** Told of a batch's outputs that no caller references (each got a copy), for reuse. */
export type Release = (outputs: Record<string, TensorLike>) => void;

/** Times of one request, in performance.now() milliseconds. */
export interface RequestTimes {
  enqueuedAt: number;
  dispatchedAt: number | undefined;
  computeDoneAt: number | undefined;
  settledAt: number;
  batch: number;
}

export type Outcome = { ok: true } | { ok: false; code: ErrorCode | 'BACKEND' };

/** What the engine's statistics and metrics learn from the batcher. */
export interface BatcherObserver {
  /** A request refused at submission (EQUEUEFULL, EINPUT, EABORTED, EDISPOSED). */
  rejected(code: ErrorCode): void;
  accepted(): void;
  settled(outcome: Outcome, times: RequestTimes): void;
  executed(batchSize: number, requests: number, computeMs: number): void;
  /** A batch whose instance was lost went back to the queue to run again. */
  retried(): void;
  /** A merged batch failed, and its requests ran again one at a time. */
  ranApart(): void;
}

/**
 * Times a part may be dispatched: a batch whose instance was lost (the backend rejects it
 * with `details.retry`, e.g. an ONNX Runtime worker that exited) runs again, but a batch
 * that loses its instance every time fails rather than taking instance after instance.
 */
const MAX_DISPATCHES = 3;

/**
 * The longest delay a Node timer keeps: a longer one fires after 1 ms (with a
 * TimeoutOverflowWarning). A timeout or queue delay from here on (24.8 days, Infinity
 * included) sets no timer: no timeout, or a batch that waits until it fills.
 */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * Who still reads a batch's result memory. A whole request handed views of it pins it for
 * good; a part of a split request holds it until its request's parts are joined (a copy).
 * Once nothing pins or holds it, the backend may reuse it (Release).
 */
interface BatchHold {
  outputs: Record<string, TensorLike>;
  pinned: boolean;
  parts: number;
}

/**
 * Rows of one request that run in one batch: all of them, unless the request has more
 * rows than a batch may take (then it runs as several parts, possibly side by side).
 */
interface Part {
  req: AcceptedRequest;
  /** The part's first row in its request. */
  start: number;
  rows: number;
  /** The request's inputs over these rows (views, no copy). */
  feeds: Record<string, BatchTensor>;
  /** Times it has been dispatched (more than once where its instance was lost). */
  dispatches?: number;
}

export class DynamicBatcher {
  private readonly options: BatcherOptions;
  private readonly execute: Execute;
  private readonly observer: BatcherObserver | undefined;
  private readonly release: Release | undefined;
  /** The largest of preferredBatchSizes, where there are some (fixed: read on every dispatch). */
  private readonly largestPreferred: number | undefined;
  /** One FIFO of parts per priority level, index 0 = priority 1. */
  private readonly queues: Part[][];
  /** Parts in the queues, and requests with at least one there. */
  private queuedParts = 0;
  private queued = 0;
  private inFlight = 0;
  /** Recent batches' time from dispatch to result, per batch ahead of them (an exponential mean). */
  private recentRunMs = Number.POSITIVE_INFINITY;
  private finishedBatches = 0;
  private readonly running = new Set<Promise<boolean>>();
  private scheduled = false;
  private delayTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Cleared by close(): from then on submissions are refused, and what is queued runs without waiting to fill. */
  private accepting = true;
  /** When a close() that drains stops waiting for the queue to empty (performance.now() ms). */
  private drainDeadline = Number.POSITIVE_INFINITY;
  /** Wakes a draining close() to look again: a batch ended, a request left the queue, or the deadline moved. */
  private wakeDrain: (() => void) | undefined;
  /** A later close() moved the drain's end sooner (said to the requests it leaves queued). */
  private drainCut = false;
  private closing: Promise<void> | undefined;
  private readonly pool = new BufferPool();
  /** Bookkeeping deferred off the results' path: calls, and settled requests for the observer. */
  private readonly later: ((() => void) | AcceptedRequest)[] = [];
  private laterScheduled = false;
  /** Whether the warning that the model seems not to run merged batches was given. */
  private warnedMergeFails = false;

  constructor(options: BatcherOptions, execute: Execute, observer?: BatcherObserver, release?: Release) {
    validateOptions(options);
    this.options = options;
    this.execute = execute;
    this.observer = observer;
    this.release = release;
    this.largestPreferred = options.preferredBatchSizes.length ? Math.max(...options.preferredBatchSizes) : undefined;
    this.queues = Array.from({ length: options.priorityLevels }, () => []);
  }

  /** Requests waiting to be dispatched. */
  get pending(): number {
    return this.queued;
  }

  /** Batches running now. */
  get executing(): number {
    return this.inFlight;
  }

  submit(feeds: Record<string, BatchTensor>, batch: number, opts: RequestOptions = {}): Promise<Record<string, TensorLike>> {
    const closed = this.closedError();
    if (closed) return this.refuse(closed);
    const o = this.options;
    const priority = opts.priority ?? o.defaultPriority;
    if (!Number.isInteger(priority) || priority < 1 || priority > o.priorityLevels) {
      return this.refuse(inputError('priority', `an integer from 1 to ${o.priorityLevels}`, String(priority), 'option'));
    }
    const timeoutMs = opts.timeoutMs ?? o.defaultTimeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs > 0)) {
      return this.refuse(inputError('timeoutMs', 'a positive number of milliseconds', String(timeoutMs), 'option'));
    }
    if (o.batchAxis && batch < 1) {
      return this.refuse(inputError(Object.keys(feeds)[0] ?? 'input', 'a batch of at least 1 on axis 0', `a batch of ${batch}`));
    }
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
      return this.refuse(inputError('signal', 'an AbortSignal', kindOf(opts.signal), 'option'));
    }
    if (opts.signal?.aborted) {
      return this.refuse(new TensorrtNodeError('EABORTED', 'the request was aborted before it was queued', { reason: String(opts.signal.reason) }));
    }
    if (this.queued >= o.maxQueueSize) {
      return this.refuse(new TensorrtNodeError('EQUEUEFULL', `the queue is full (maxQueueSize ${o.maxQueueSize})`, { maxQueueSize: o.maxQueueSize }));
    }

    return new Promise<Record<string, TensorLike>>((resolve, reject) => {
      const req = new AcceptedRequest(feeds, batch, priority, this.finishedBatches, opts, resolve, reject, this.requestEnded);
      if (timeoutMs !== undefined && timeoutMs < LONGEST_TIMER_MS) req.startTimer(timeoutMs);
      req.listen();
      this.queues[priority - 1]!.push({ req, start: 0, rows: batch, feeds });
      req.queuedParts = 1;
      this.queuedParts++;
      this.queued++;
      this.observer?.accepted();
      this.schedule();
    });
  }

  /** A request settled (once): out of the queues, a draining close() told, its statistics deferred. */
  private readonly requestEnded: RequestEnded = {
    settling: (req) => this.removeQueued(req),
    settled: (req) => {
      this.wakeDrain?.();
      if (!this.observer) return;
      req.settledAt = performance.now();
      this.defer(req);
    },
  };

  /** Why a request is refused once close() was called (EDISPOSED); undefined before. */
  closedError(): TensorrtNodeError | undefined {
    if (this.accepting) return undefined;
    return new TensorrtNodeError('EDISPOSED', this.closed
      ? 'the engine is disposed'
      : 'the engine is being disposed: it finishes the requests it accepted and takes no more');
  }

  private refuse(err: TensorrtNodeError): Promise<never> {
    this.observer?.rejected(err.code);
    return Promise.reject(err);
  }

  /**
   * Takes no more requests; runs what is queued for up to `drainTimeoutMs` (dispatching at
   * once, as no request will come to fill a batch); then rejects what still waits with
   * EDISPOSED and waits for running batches. Called again, it may move the drain's end
   * sooner (a second signal: stop now), never later, and returns the same promise.
   */
  close(drainTimeoutMs = 0): Promise<void> {
    const deadline = performance.now() + drainTimeoutMs;
    if (deadline < this.drainDeadline) {
      if (this.closing) this.drainCut = true;
      this.drainDeadline = deadline;
      this.wakeDrain?.();
    }
    this.accepting = false;
    return (this.closing ??= this.drainThenClose(drainTimeoutMs));
  }

  private async drainThenClose(drainTimeoutMs: number): Promise<void> {
    for (let first = true; ; first = false) {
      const left = this.drainDeadline - performance.now();
      if ((this.queued === 0 && this.inFlight === 0) || left <= 0) break;
      if (first) this.schedule();
      await new Promise<void>((resolve) => {
        const timer = left < LONGEST_TIMER_MS ? setTimeout(resolve, left) : undefined;
        this.wakeDrain = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeDrain = undefined;
    }
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    const why = this.drainCut
      ? 'the engine was disposed while the request was queued (a later dispose() ended the drain)'
      : drainTimeoutMs > 0
        ? `the engine was disposed while the request was queued (the drain's ${drainTimeoutMs} ms ran out)`
        : 'the engine was disposed while the request was queued';
    for (const q of this.queues) {
      for (const part of [...q]) part.req.reject(new TensorrtNodeError('EDISPOSED', why));
    }
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Takes every queued part of a settled request out of its queue. */
  private removeQueued(req: AcceptedRequest): void {
    if (req.queuedParts === 0) return;
    const q = this.queues[req.priority - 1]!;
    for (let i = q.length - 1; i >= 0; i--) if (q[i]!.req === req) this.unqueue(q, i);
  }

  private unqueue(q: Part[], i: number): void {
    const part = q.splice(i, 1)[0]!;
    this.queuedParts--;
    if (--part.req.queuedParts === 0) this.queued--;
  }

  /**
   * Splits the first `rows` rows off a queued part, as a part of their own placed just
   * before it (a request larger than a batch may take, or than an idle instance's share).
   */
  private splitPart(part: Part, rows: number): Part {
    const head: Part = { req: part.req, start: part.start, rows, feeds: rowViews(part.feeds, 0, rows) };
    part.feeds = rowViews(part.feeds, rows, part.rows - rows);
    part.start += rows;
    part.rows -= rows;
    const q = this.queues[part.req.priority - 1]!;
    q.splice(q.indexOf(part), 0, head);
    part.req.queuedParts++;
    this.queuedParts++;
    return head;
  }

  /**
   * Dispatch once the current synchronous turn ends (a microtask), so requests submitted
   * together batch together without waiting a turn of the event loop (setImmediate cost
   * ~0.07 ms per request at batch 1).
   */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(this.dispatchScheduled);
  }

  private readonly dispatchScheduled = (): void => {
    this.scheduled = false;
    this.dispatch();
  };

  private dispatch(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    const o = this.options;
    // A ready group split over idle instances: its first member and each part's size.
    let group: { head: Part; share: number } | undefined;
    // Idle instances whose first batch of a burst is its oldest request alone (see below).
    let opening = 0;
    const capacity = this.capacity();
    while (!this.closed && this.inFlight < capacity && this.queuedParts > 0) {
      const { batch, size, head, available } = this.form();
      if (group && !sameItemShape(group.head.feeds, head.feeds)) group = undefined; // another group, ready on its own
      const waited = performance.now() - head.req.enqueuedAt;
      const expired = waited >= o.maxQueueDelayMs || !this.accepting;
      const largestPreferred = this.largestPreferred;
      let take: Part[] | undefined;
      if (!o.batchAxis || size >= o.maxBatchSize) take = batch;
      else if (largestPreferred !== undefined && size >= largestPreferred) take = trim(batch, largestPreferred);
      else if (expired) {
        const fits = o.preferredBatchSizes.filter((p) => p <= size);
        take = fits.length ? trim(batch, Math.max(...fits)) : batch;
      } else if (group) take = batch; // the rest of a group judged ready
      if (!take) {
        // Without a timer the batch waits for rows enough to fill it (or preferred sizes).
        if (o.maxQueueDelayMs < LONGEST_TIMER_MS) this.delayTimer = setTimeout(() => this.dispatch(), Math.max(0, o.maxQueueDelayMs - waited));
        return;
      }
      // Several idle instances share a ready group evenly rather than one taking it all
      // and the others idling (without preferred sizes, which fix the sizes to run). A
      // request with more rows than its share is split by rows.
      const idle = Math.max(0, o.maxInFlight - this.inFlight);
      if (o.batchAxis && !largestPreferred && idle > 1 && !group) {
        group = { head, share: Math.ceil(Math.min(available, idle * o.maxBatchSize) / idle) };
      }
      if (group) take = trim(take, group.share);
      if (group && take[0]!.rows > group.share) take = [this.splitPart(take[0]!, group.share)];
      // A burst that meets an idle engine with more than a full round of rows: each idle
      // instance first runs the oldest request alone, so the first result comes in one
      // request's time, not a full batch's (PaddleOCR cls, 64 at once on 2 × 1: first
      // result 3.2-3.4 ms instead of 13.1-13.6, the last 0.5-2.3 % later; docs/engine.md).
      const burst = this.inFlight === 0 && head.req.finishedBefore === this.finishedBatches && available > o.maxInFlight * o.maxBatchSize;
      if (burst && o.batchAxis && !largestPreferred) opening = idle;
      if (opening > 0) {
        take = take.slice(0, 1);
        opening--;
      }
      const now = performance.now();
      for (const part of take) {
        const q = this.queues[part.req.priority - 1]!;
        this.unqueue(q, q.indexOf(part));
        part.req.state = 'running';
        part.req.dispatchedAt ??= now;
      }
      this.run(take, this.inFlight === 0 && this.queuedParts === 0);
    }
  }

  /**
   * The next batch: the oldest part of the highest priority, then every compatible one
   * that fits. `available` counts every queued row compatible with it, fitting or not. A
   * head with more rows than a batch takes is split first.
   */
  private form(): { batch: Part[]; size: number; head: Part; available: number } {
    const o = this.options;
    let head: Part | undefined;
    const batch: Part[] = [];
    let size = 0;
    let available = 0;
    for (const q of this.queues) {
      for (let i = 0; i < q.length; i++) {
        let part = q[i]!;
        if (!head) {
          // The remainder of a split head stays next in the queue and is counted next.
          if (o.batchAxis && part.rows > o.maxBatchSize) part = this.splitPart(part, o.maxBatchSize);
          head = part;
          batch.push(part);
          size = available = part.rows;
          if (!o.batchAxis) return { batch, size, head, available };
          continue;
        }
        if (!sameItemShape(head.feeds, part.feeds)) continue;
        available += part.rows;
        if (size < o.maxBatchSize && size + part.rows <= o.maxBatchSize) {
          batch.push(part);
          size += part.rows;
        }
        if (available > o.maxBatchSize * o.maxInFlight) return { batch, size, head, available };
      }
    }
    return { batch, size, head: head!, available };
  }

  /**
   * Batches that may be in flight: one per instance, or two where runs are short and no
   * requests can merge (so dispatching early costs no batch its size).
   */
  private capacity(): number {
    const o = this.options;
    const merges = o.batchAxis && o.maxBatchSize > 1;
    return !merges && this.recentRunMs < (o.pipelineUnderMs ?? 0) ? 2 * o.maxInFlight : o.maxInFlight;
  }

  private run(parts: Part[], alone: boolean): void {
    // A batch dispatched behind others waits for them on its instance: its time counts per batch.
    const rounds = Math.ceil((this.inFlight + 1) / this.options.maxInFlight);
    this.inFlight++;
    const task = this.runBatch(parts, alone, rounds).finally(() => {
      this.inFlight--;
      this.finishedBatches++;
      this.running.delete(task);
      this.schedule();
      this.wakeDrain?.();
    });
    this.running.add(task);
  }

  /** Runs a batch and settles its requests; false where the run failed them. `apart`: a request of a failed batch, run again alone. */
  private async runBatch(parts: Part[], alone: boolean, rounds: number, apart = false): Promise<boolean> {
    // A request aborted or timed out since dispatch is dropped before the batch starts.
    const live = parts.filter((p) => p.req.state === 'running');
    if (live.length === 0) return true;
    const total = live.reduce((a, p) => a + p.rows, 0);
    const started = performance.now();
    let outputs: Record<string, TensorLike>;
    // Merged, where the backend asks, always into buffers of the batch's own: the backend may
    // transfer them to a worker (and hands them back in `merged` when done, for reuse).
    let merged: Record<string, BatchTensor> | undefined;
    const tensors = live.map((p) => p.feeds);
    const batch: BatchParts = {
      parts: tensors,
      rows: total,
      merged: () => (merged ??= this.options.batchAxis ? mergeBatch(tensors, total, this.pool) : ownFeeds(tensors[0]!, this.pool)),
    };
    try {
      outputs = await this.execute(batch, { alone });
    } catch (err) {
      let e = err instanceof Error ? err : new Error(String(err));
      if (e instanceof TensorrtNodeError && e.details.retry === true) {
        if (!this.closed && this.requeue(live)) return true;
        if (this.closed) e = new TensorrtNodeError('EDISPOSED', 'the engine was disposed before the request could run again (its instance was lost)', {}, { cause: e });
      } else if (!apart && new Set(live.map((p) => p.req)).size > 1) {
        await this.runApart(live, total, e);
        return true;
      }
      for (const p of live) p.req.reject(e);
      return false;
    }
    const done = performance.now();
    const ms = (done - started) / rounds;
    this.recentRunMs = Number.isFinite(this.recentRunMs) ? 0.9 * this.recentRunMs + 0.1 * ms : ms;
    // Outputs without the batch's rows on axis 0 (a model whose open axis 0 is not a batch
    // axis, e.g. boxes kept by NMS): a whole request alone gets them as they are, as
    // onnxruntime gives them; a merged batch cannot be split, so its requests run apart.
    const misfit = this.options.batchAxis ? rowsMisfit(outputs, total) : undefined;
    const whole = live.length === 1 && live[0]!.rows === live[0]!.req.batch;
    if (misfit && !whole && !apart && new Set(live.map((p) => p.req)).size > 1) {
      this.defer(() => {
        if (merged) recycle(merged, this.pool);
        this.release?.(outputs);
      });
      await this.runApart(live, total, new TensorrtNodeError('EMODEL', misfit));
      return true;
    }
    const free = this.settleBatch(live, outputs, done, misfit !== undefined && whole);
    this.defer(() => {
      if (merged) recycle(merged, this.pool);
      for (const o of free) this.release?.(o);
      this.observer?.executed(total, live.length, done - started);
    });
    return true;
  }

  /**
   * A merged batch that failed (not for its instance) runs again a request at a time, on
   * the same instance, so that a request the model refuses (an id past the vocabulary, a
   * shape it cannot take) fails alone rather than with every request merged with it.
   * Where each then succeeds, the model seems not to run batches of that size: said once.
   */
  private async runApart(live: Part[], rows: number, err: Error): Promise<void> {
    const byRequest = new Map<AcceptedRequest, Part[]>();
    for (const p of live) byRequest.set(p.req, [...(byRequest.get(p.req) ?? []), p]);
    const observer = this.observer;
    if (observer) this.defer(() => observer.ranApart());
    let failed = 0;
    for (const parts of byRequest.values()) {
      if (!(await this.runBatch(parts, false, 1, true))) failed++;
    }
    if (failed === 0 && !this.warnedMergeFails) {
      this.warnedMergeFails = true;
      process.emitWarning(`tensorrt-node: a batch of ${rows} rows merged from ${byRequest.size} requests failed (${err.message}), and each request then succeeded alone: the model seems not to run batches of ${rows} rows; a lower maxBatchSize (1: no merging) saves the failed runs`, { code: 'EMODEL' });
    }
  }

  /**
   * Puts a batch whose instance was lost back at the head of the queues, in its order, to
   * run again: its requests were accepted, their inputs are still the callers' (a batch
   * runs on copies), and a run has no side effects. Not past MAX_DISPATCHES. Returns
   * whether it did.
   */
  private requeue(live: Part[]): boolean {
    if (live.some((p) => (p.dispatches ?? 1) >= MAX_DISPATCHES)) return false;
    for (let i = live.length - 1; i >= 0; i--) {
      const part = live[i]!;
      const req = part.req;
      if (req.state === 'settled') continue;
      part.dispatches = (part.dispatches ?? 1) + 1;
      this.queues[req.priority - 1]!.unshift(part);
      if (req.queuedParts++ === 0) this.queued++;
      this.queuedParts++;
      req.state = 'queued';
    }
    const observer = this.observer;
    if (observer) this.defer(() => observer.retried());
    return true;
  }

  /**
   * Bookkeeping (statistics, buffer reuse) runs after the callers' continuations and the
   * dispatch of what they submit next (setImmediate: after every microtask), so it stays
   * off their latency and overlaps the next run. A microtask ran it before that dispatch.
   */
  private defer(item: (() => void) | AcceptedRequest): void {
    this.later.push(item);
    if (this.laterScheduled) return;
    this.laterScheduled = true;
    setImmediate(this.flush);
  }

  /** Runs the deferred bookkeeping now (readers of statistics call this first). */
  readonly flush = (): void => {
    this.laterScheduled = false;
    const items = this.later.splice(0);
    for (const item of items) {
      if (typeof item === 'function') item();
      else this.observer?.settled(item.outcome, item);
    }
  };

  /**
   * Resolves the batch's requests with their rows. Returns the result memory nothing reads
   * any more, for the backend to reuse: this batch's, where no caller got views of it and no
   * part of a split request waits in it, and earlier batches' that the parts joined here
   * held last. `asIs`: one whole request, given outputs that do not follow its rows as they are.
   */
  private settleBatch(live: Part[], outputs: Record<string, TensorLike>, done: number, asIs = false): Record<string, TensorLike>[] {
    if (!this.options.batchAxis || asIs) {
      const req = live[0]!.req;
      const pinned = req.state !== 'settled' && !req.copies;
      req.computeDoneAt = done;
      req.resolve(outputs);
      return pinned ? [] : [outputs];
    }
    let results: Record<string, TensorLike>[];
    try {
      results = splitBatch(outputs, live.map((p) => p.rows));
    } catch (err) {
      for (const p of live) p.req.reject(err as Error);
      return [];
    }
    const hold: BatchHold = { outputs, pinned: false, parts: 0 };
    const free: Record<string, TensorLike>[] = [];
    live.forEach((part, i) => {
      const req = part.req;
      if (req.state === 'settled') return;
      req.rowsDone += part.rows;
      // A whole request gets views of the batch's results; a split one, its parts joined.
      if (part.rows === req.batch) {
        hold.pinned ||= !req.copies;
        req.computeDoneAt = done;
        req.resolve(results[i]!);
        return;
      }
      hold.parts++;
      (req.gathered ??= []).push({ start: part.start, outputs: results[i]!, hold });
      if (req.rowsDone < req.batch) return;
      req.computeDoneAt = done;
      let joined: Record<string, TensorLike>;
      try {
        joined = joinParts(req.gathered, req.batch, req.joinInto);
      } catch (err) {
        req.reject(err as Error);
        return;
      }
      // The join copied every part: their batches' memory is free of them.
      for (const g of req.gathered) {
        if (--g.hold.parts === 0 && !g.hold.pinned && g.hold !== hold) free.push(g.hold.outputs);
      }
      req.gathered = undefined;
      req.resolve(joined);
    });
    if (!hold.pinned && hold.parts === 0) free.push(outputs);
    return free;
  }
}

/** The first parts whose rows add up to at most `limit` (at least the first). */
function trim(batch: Part[], limit: number): Part[] {
  const out: Part[] = [];
  let size = 0;
  for (const p of batch) {
    if (out.length > 0 && size + p.rows > limit) break;
    out.push(p);
    size += p.rows;
  }
  return out;
}

/** What the batcher does as each request settles (once; shared by its requests). */
interface RequestEnded {
  /** Before its caller hears: its parts leave the queues. */
  settling(req: AcceptedRequest): void;
  /** After. */
  settled(req: AcceptedRequest): void;
}

/** A success, shared: settling a request allocates nothing for it. */
const SUCCEEDED: Outcome = { ok: true };

/**
 * An accepted request until it settles, exactly once. A class, not closures made per
 * request: those made submit() the largest allocation on the JS thread at 64 in flight
 * (1.1 KB of its 4.4 KB a request, sampling heap profiler).
 */
class AcceptedRequest implements RequestTimes {
  readonly enqueuedAt = performance.now();
  dispatchedAt: number | undefined = undefined;
  computeDoneAt: number | undefined = undefined;
  settledAt = 0;
  state: 'queued' | 'running' | 'settled' = 'queued';
  /** Its parts in the queues: more than one once it is split. */
  queuedParts = 0;
  /** Rows whose results came back, and those of a split request by first row (made on its first part). */
  rowsDone = 0;
  gathered: { start: number; outputs: Record<string, TensorLike>; hold: BatchHold }[] | undefined = undefined;
  outcome: Outcome = SUCCEEDED;
  /** Its result is a copy (`finish` copies every output): whole, it keeps none of its batch's memory. */
  readonly copies: boolean;
  /** Where that copy goes (RequestOptions.joinInto), with `copies` only. */
  readonly joinInto: Readonly<Record<string, TypedArray | Buffer>> | undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private signal: AbortSignal | undefined = undefined;
  private onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly feeds: Record<string, BatchTensor>,
    readonly batch: number,
    readonly priority: number,
    /** Batches finished when it arrived: unchanged at dispatch, it never waited behind a run. */
    readonly finishedBefore: number,
    private readonly opts: RequestOptions,
    private readonly fulfil: (outputs: Record<string, TensorLike>) => void,
    private readonly fail: (err: Error) => void,
    private readonly ended: RequestEnded,
  ) {
    this.copies = opts.finishCopies === true && opts.finish !== undefined;
    this.joinInto = this.copies ? opts.joinInto : undefined;
  }

  startTimer(timeoutMs: number): void {
    this.timer = setTimeout(() => {
      const state = this.state;
      this.reject(new TensorrtNodeError('ETIMEOUT', `the request timed out after ${timeoutMs} ms (${state === 'queued' ? 'still queued' : 'while its batch ran'})`, { timeoutMs }));
    }, timeoutMs);
  }

  /** Listens to the caller's AbortSignal, if any. */
  listen(): void {
    const signal = this.opts.signal;
    if (!signal) return;
    this.signal = signal;
    this.onAbort = () => {
      const state = this.state;
      this.reject(new TensorrtNodeError('EABORTED', state === 'running'
        ? 'the request was aborted while its batch ran; its result is discarded'
        : 'the request was aborted while queued and dropped from the queue', { reason: String(signal.reason) }));
    };
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  resolve(outputs: Record<string, TensorLike>): void {
    let value = outputs;
    try {
      if (this.opts.finish && this.state !== 'settled') value = this.opts.finish(outputs);
    } catch (err) {
      this.reject(err as Error);
      return;
    }
    if (this.end(SUCCEEDED)) return;
    this.fulfil(value);
    this.ended.settled(this);
  }

  reject(err: Error): void {
    if (this.end({ ok: false, code: codeOf(err) })) return;
    this.fail(err);
    this.ended.settled(this);
  }

  cleanup(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Marks it settled with `outcome`; true where it had settled already (then nothing changes). */
  private end(outcome: Outcome): boolean {
    if (this.state === 'settled') return true;
    this.ended.settling(this);
    this.state = 'settled';
    this.outcome = outcome;
    this.cleanup();
    return false;
  }
}

function codeOf(err: Error): ErrorCode | 'BACKEND' {
  return err instanceof TensorrtNodeError ? err.code : 'BACKEND';
}

function validateOptions(o: BatcherOptions): void {
  const positiveInt = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw inputError(name, 'a positive integer', String(v), 'option');
  };
  positiveInt('maxBatchSize', o.maxBatchSize);
  positiveInt('priorityLevels', o.priorityLevels);
  positiveInt('maxInFlight', o.maxInFlight);
  if (!(o.maxQueueDelayMs >= 0)) throw inputError('maxQueueDelayMs', 'a number of milliseconds ≥ 0', String(o.maxQueueDelayMs), 'option');
  if (!(o.maxQueueSize >= 1)) throw inputError('maxQueueSize', 'a positive integer (or Infinity)', String(o.maxQueueSize), 'option');
  for (const p of o.preferredBatchSizes) {
    if (!Number.isInteger(p) || p < 1 || p > o.maxBatchSize) {
      throw inputError('preferredBatchSizes', `integers from 1 to maxBatchSize ${o.maxBatchSize}`, String(p), 'option');
    }
  }
  if (!Number.isInteger(o.defaultPriority) || o.defaultPriority < 1 || o.defaultPriority > o.priorityLevels) {
    throw inputError('defaultPriority', `an integer from 1 to ${o.priorityLevels}`, String(o.defaultPriority), 'option');
  }
}
