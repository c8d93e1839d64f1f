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
 * A Counter whose series hold `series()`'s totals, handed over when scraped (each one's
 * rise since the last scrape, so they only grow): prom-client hashes the labels at every
 * inc(), and the seven incs of a request and its batch cost 1.20-1.30 us a request in a hot
 * loop here. `series()` gives the same label sets in the same order each time.
 */
function scrapedCounter(name: string, help: string, labelNames: string[], registry: Registry, series: () => [Record<string, string>, number][]): void {
  const handed: number[] = [];
  const counter = new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      series().forEach(([labels, total], i) => {
        this.inc(labels, total - (handed[i] ?? 0));
        handed[i] = total;
      });
    },
  });
  for (const [labels] of series()) counter.inc(labels, 0); // every series visible from the start, as Triton does
}

export class TritonMetrics {
  readonly registry = new Registry();
  private readonly totals: Totals = { success: 0, count: 0, execCount: 0, queueUs: 0, computeUs: 0, requestUs: 0, failure: { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 } };
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
    const one = (total: () => number) => (): [Record<string, string>, number][] => [[labels, total()]];
    scrapedCounter('nv_inference_request_success', 'Number of successful inference requests, all batch sizes', names, this.registry, one(() => totals.success));
    scrapedCounter('nv_inference_request_failure', 'Number of failed inference requests, all batch sizes', [...names, 'reason'], this.registry, () => REASONS.map((reason) => [{ ...labels, reason }, totals.failure[reason]]));
    scrapedCounter('nv_inference_count', 'Number of inferences performed (a batch of n counts n)', names, this.registry, one(() => totals.count));
    scrapedCounter('nv_inference_exec_count', 'Number of model executions performed (a batch counts 1)', names, this.registry, one(() => totals.execCount));
    new Gauge({
      name: 'nv_inference_pending_request_count',
      help: 'Instantaneous number of pending requests awaiting execution',
      labelNames: names,
      registers: r,
      collect() {
        this.set(labels, pendingNow());
      },
    });
    scrapedCounter('nv_inference_queue_duration_us', 'Cumulative inference queuing duration in microseconds', names, this.registry, one(() => totals.queueUs));
    scrapedCounter('nv_inference_compute_infer_duration_us', 'Cumulative compute inference duration in microseconds', names, this.registry, one(() => totals.computeUs));
    scrapedCounter('nv_inference_request_duration_us', 'Cumulative inference request duration in microseconds', names, this.registry, one(() => totals.requestUs));
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
