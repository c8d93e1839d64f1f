/**
 * Prometheus metrics under Triton Inference Server's names, through prom-client,
 * in a Registry of the engine's own (so two engines never collide).
 * Counters of time are cumulative microseconds, as in Triton.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { WindowSummary } from './window-summary.js';
import type { ErrorCode } from '../errors.js';

/** Triton's failure reasons: REJECTED (queue full, timed out), CANCELED, BACKEND, OTHER. */
export type FailureReason = 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';

export function failureReason(code: ErrorCode | 'BACKEND'): FailureReason {
  switch (code) {
    case 'EQUEUEFULL':
    case 'ETIMEOUT':
      return 'REJECTED';
    case 'EABORTED':
    case 'EDISPOSED':
      return 'CANCELED';
    case 'BACKEND':
    case 'EBACKEND':
    case 'EMODEL':
      return 'BACKEND';
    default:
      return 'OTHER';
  }
}

const REASONS: readonly FailureReason[] = ['REJECTED', 'CANCELED', 'BACKEND', 'OTHER'];

/** Running totals, kept in plain numbers and handed to prom-client at scrape time. */
interface Totals {
  success: number;
  count: number;
  execCount: number;
  queueUs: number;
  computeUs: number;
  requestUs: number;
  failure: Record<FailureReason, number>;
}

/**
 * A Counter whose value is `total()`, handed over when scraped (the rise since the last
 * scrape, so it only grows): prom-client hashes the labels at every inc(), and the seven
 * incs of a request and its batch cost 1.2-1.3 us a request in a hot loop here.
 */
function scrapedCounter(name: string, help: string, labels: Record<string, string>, registry: Registry, total: () => number): Counter<string> {
  let handed = 0;
  const counter = new Counter({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      const now = total();
      this.inc(labels, now - handed);
      handed = now;
    },
  });
  counter.inc(labels, 0); // every series visible from the start, as Triton does
  return counter;
}

export class TritonMetrics {
  readonly registry = new Registry();
  private readonly totals: Totals = { success: 0, count: 0, execCount: 0, queueUs: 0, computeUs: 0, requestUs: 0, failure: { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 } };
  private readonly pending: Gauge<string>;
  private readonly requestSummary: WindowSummary;
  private readonly queueSummary: WindowSummary;
  private readonly labels: { model: string; version: string };

  /**
   * `pendingNow` reports the requests waiting for execution at collection time;
   * `backendCounters` the backend's own counters then (engine.stats().backendCounters).
   */
  constructor(model: string, pendingNow: () => number, backendCounters: () => Readonly<Record<string, number>> | undefined = () => undefined, version = '1') {
    this.labels = { model, version };
    const r = [this.registry];
    const names = ['model', 'version'];
    const labels = this.labels;
    const totals = this.totals;
    scrapedCounter('nv_inference_request_success', 'Number of successful inference requests, all batch sizes', labels, this.registry, () => totals.success);
    const failureHanded: Record<FailureReason, number> = { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 };
    const failure = new Counter({
      name: 'nv_inference_request_failure',
      help: 'Number of failed inference requests, all batch sizes',
      labelNames: [...names, 'reason'],
      registers: r,
      collect() {
        for (const reason of REASONS) {
          this.inc({ ...labels, reason }, totals.failure[reason] - failureHanded[reason]);
          failureHanded[reason] = totals.failure[reason];
        }
      },
    });
    for (const reason of REASONS) failure.inc({ ...labels, reason }, 0);
    scrapedCounter('nv_inference_count', 'Number of inferences performed (a batch of n counts n)', labels, this.registry, () => totals.count);
    scrapedCounter('nv_inference_exec_count', 'Number of model executions performed (a batch counts 1)', labels, this.registry, () => totals.execCount);
    this.pending = new Gauge({
      name: 'nv_inference_pending_request_count',
      help: 'Instantaneous number of pending requests awaiting execution',
      labelNames: names,
      registers: r,
      collect() {
        this.set(labels, pendingNow());
      },
    });
    scrapedCounter('nv_inference_queue_duration_us', 'Cumulative inference queuing duration in microseconds', labels, this.registry, () => totals.queueUs);
    scrapedCounter('nv_inference_compute_infer_duration_us', 'Cumulative compute inference duration in microseconds', labels, this.registry, () => totals.computeUs);
    scrapedCounter('nv_inference_request_duration_us', 'Cumulative inference request duration in microseconds', labels, this.registry, () => totals.requestUs);
    this.requestSummary = new WindowSummary({ name: 'nv_inference_request_summary_us', help: 'Summary of inference request duration in microseconds', labels: this.labels, percentiles: [0.5, 0.9, 0.95, 0.99], maxAgeSeconds: 600, registers: r });
    // Not Triton's: the backend's own counters, one series each (on ONNX Runtime
    // sessionRunMs, the workers' busy time, gives their saturation: its rate over instances).
    new Gauge({
      name: 'tensorrt_node_backend_counter',
      help: "The backend's own counters, as engine.stats().backendCounters gives them",
      labelNames: [...names, 'counter'],
      registers: r,
      collect() {
        for (const [counter, value] of Object.entries(backendCounters() ?? {})) this.set({ ...labels, counter }, value);
      },
    });
    this.queueSummary = new WindowSummary({ name: 'nv_inference_queue_summary_us', help: 'Summary of inference queuing duration in microseconds', labels: this.labels, percentiles: [0.5, 0.9, 0.95, 0.99], maxAgeSeconds: 600, registers: r });
    this.pending.set(this.labels, 0);
  }

  /** A request that completed: durations per request, as Triton counts them. */
  succeeded(batch: number, times: { requestMs: number; queueMs: number; computeMs: number }): void {
    const t = this.totals;
    t.success++;
    t.count += batch;
    t.requestUs += times.requestMs * 1000;
    t.queueUs += times.queueMs * 1000;
    t.computeUs += times.computeMs * 1000;
    this.requestSummary.observe(times.requestMs * 1000);
    this.queueSummary.observe(times.queueMs * 1000);
  }

  /** A request that failed, at submission (EQUEUEFULL, EINPUT, ...) or later. */
  failed(code: ErrorCode | 'BACKEND'): void {
    this.totals.failure[failureReason(code)]++;
  }

  /** One model execution (a batch counts once). */
  executed(): void {
    this.totals.execCount++;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
