/**
 * Engine statistics: counts, batch sizes, queue and compute time, and latency
 * percentiles over the most recent requests.
 */
import type { ErrorCode } from '../errors.js';
import type { BatcherObserver, Outcome, RequestTimes } from '../batching/batcher.js';
import type { TritonMetrics } from '../metrics/triton.js';

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
  /** How many samples the figures come from (the most recent, up to 100 000). */
  samples: number;
}

export interface EngineStats {
  /** Requests accepted into the queue. */
  requests: number;
  /** Requests that resolved with a result. */
  succeeded: number;
  /** Requests that failed, by error code (including those refused at submission). */
  failed: Partial<Record<ErrorCode | 'BACKEND', number>>;
  /** Inferences: batch items completed (a request of batch n counts n), as Triton counts them. */
  inferences: number;
  /** Model executions (merged batches). */
  batches: number;
  /** Batches that went back to the queue because the instance running them was lost (an ONNX Runtime worker that exited). */
  retriedBatches: number;
  /**
   * Merged batches that failed (not for their instance) and whose requests then ran one at
   * a time, so that a request the model refuses fails alone (its batch-mates succeed).
   */
  batchesRunApart: number;
  meanBatchSize: number;
  /** Requests waiting for a batch now. */
  pending: number;
  /** Batches dispatched and not yet finished: up to one per instance, two where short runs that cannot merge are pipelined. */
  executing: number;
  /** Mean time a successful request waited in the queue, ms. */
  meanQueueMs: number;
  /** Mean time of one execution in the backend (worker round trip included), ms. */
  meanComputeMs: number;
  /** Sums behind the means (for differences between two snapshots), ms. */
  totalQueueMs: number;
  totalComputeMs: number;
  /** Request latency, infer() call to result, ms, successful requests. */
  latencyMs: Percentiles;
  /**
   * Time to first result, ms: from the start of Engine.build() (cache lookup,
   * quantization and loading included) to the first request that resolved.
   * Undefined until one has.
   */
  timeToFirstResultMs: number | undefined;
  /** Time Engine.build() took, ms. */
  buildMs: number;
}

const WINDOW = 100_000;

export function percentiles(values: ArrayLike<number>): Percentiles {
  const n = values.length;
  if (n === 0) return { p50: 0, p90: 0, p95: 0, p99: 0, mean: 0, max: 0, samples: 0 };
  // Selection instead of a full sort: sorting the 100 000-sample window took ~14 ms of
  // the JS thread per stats() call here; four selections take a fraction of that.
  const work = values instanceof Float64Array ? values.slice() : Float64Array.from(values);
  let sum = 0;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = work[i]!;
    sum += v;
    if (v > max) max = v;
  }
  // Nearest-rank percentile. Each selection leaves the larger values to its right, so
  // the next (higher) one only searches there.
  const rank = (p: number): number => Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1));
  const p50 = select(work, rank(0.5), 0);
  const p90 = select(work, rank(0.9), rank(0.5));
  const p95 = select(work, rank(0.95), rank(0.9));
  const p99 = select(work, rank(0.99), rank(0.95));
  return { p50, p90, p95, p99, mean: sum / n, max, samples: n };
}

/** The k-th smallest of `a`, given that a[left..] holds the largest values (quickselect, Hoare partition); reorders `a`. */
function select(a: Float64Array, k: number, left: number): number {
  let lo = left;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot.
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

export class StatsCollector implements BatcherObserver {
  private requests = 0;
  private succeeded = 0;
  private readonly failed: Partial<Record<ErrorCode | 'BACKEND', number>> = {};
  private inferences = 0;
  private batches = 0;
  private retriedBatches = 0;
  private batchesRunApart = 0;
  private batchItems = 0;
  private queueMsTotal = 0;
  private computeMsTotal = 0;
  private readonly latencies = new Float64Array(WINDOW);
  private latencyCount = 0;
  private firstResultAt: number | undefined;

  constructor(
    private readonly buildStartedAt: number,
    private readonly metrics: TritonMetrics | undefined,
  ) {}

  buildMs = 0;

  rejected(code: ErrorCode): void {
    this.failed[code] = (this.failed[code] ?? 0) + 1;
    this.metrics?.failed(code);
  }

  accepted(): void {
    this.requests++;
  }

  settled(outcome: Outcome, t: RequestTimes): void {
    if (!outcome.ok) {
      this.failed[outcome.code] = (this.failed[outcome.code] ?? 0) + 1;
      this.metrics?.failed(outcome.code);
      return;
    }
    this.succeeded++;
    this.inferences += t.batch;
    const requestMs = t.settledAt - t.enqueuedAt;
    const queueMs = (t.dispatchedAt ?? t.settledAt) - t.enqueuedAt;
    const computeMs = (t.computeDoneAt ?? t.settledAt) - (t.dispatchedAt ?? t.enqueuedAt);
    this.queueMsTotal += queueMs;
    this.latencies[this.latencyCount % WINDOW] = requestMs;
    this.latencyCount++;
    this.firstResultAt ??= t.settledAt;
    this.metrics?.succeeded(t.batch, { requestMs, queueMs, computeMs });
  }

  executed(batchSize: number, _requests: number, computeMs: number): void {
    this.batches++;
    this.batchItems += batchSize;
    this.computeMsTotal += computeMs;
    this.metrics?.executed();
  }

  retried(): void {
    this.retriedBatches++;
  }

  ranApart(): void {
    this.batchesRunApart++;
  }

  snapshot(pending: number, executing: number): EngineStats {
    const n = Math.min(this.latencyCount, WINDOW);
    return {
      requests: this.requests,
      succeeded: this.succeeded,
      failed: { ...this.failed },
      inferences: this.inferences,
      batches: this.batches,
      retriedBatches: this.retriedBatches,
      batchesRunApart: this.batchesRunApart,
      meanBatchSize: this.batches ? this.batchItems / this.batches : 0,
      pending,
      executing,
      meanQueueMs: this.succeeded ? this.queueMsTotal / this.succeeded : 0,
      meanComputeMs: this.batches ? this.computeMsTotal / this.batches : 0,
      totalQueueMs: this.queueMsTotal,
      totalComputeMs: this.computeMsTotal,
      latencyMs: percentiles(this.latencies.subarray(0, n)),
      timeToFirstResultMs: this.firstResultAt === undefined ? undefined : this.firstResultAt - this.buildStartedAt,
      buildMs: this.buildMs,
    };
  }
}
