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

export class TritonMetrics {
  readonly registry = new Registry();
  private readonly success: Counter<string>;
  private readonly failure: Counter<string>;
  private readonly count: Counter<string>;
  private readonly execCount: Counter<string>;
  private readonly pending: Gauge<string>;
  private readonly queueUs: Counter<string>;
  private readonly computeUs: Counter<string>;
  private readonly requestUs: Counter<string>;
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
    this.success = new Counter({ name: 'nv_inference_request_success', help: 'Number of successful inference requests, all batch sizes', labelNames: names, registers: r });
    this.failure = new Counter({ name: 'nv_inference_request_failure', help: 'Number of failed inference requests, all batch sizes', labelNames: [...names, 'reason'], registers: r });
    this.count = new Counter({ name: 'nv_inference_count', help: 'Number of inferences performed (a batch of n counts n)', labelNames: names, registers: r });
    this.execCount = new Counter({ name: 'nv_inference_exec_count', help: 'Number of model executions performed (a batch counts 1)', labelNames: names, registers: r });
    const labels = this.labels;
    this.pending = new Gauge({
      name: 'nv_inference_pending_request_count',
      help: 'Instantaneous number of pending requests awaiting execution',
      labelNames: names,
      registers: r,
      collect() {
        this.set(labels, pendingNow());
      },
    });
    this.queueUs = new Counter({ name: 'nv_inference_queue_duration_us', help: 'Cumulative inference queuing duration in microseconds', labelNames: names, registers: r });
    this.computeUs = new Counter({ name: 'nv_inference_compute_infer_duration_us', help: 'Cumulative compute inference duration in microseconds', labelNames: names, registers: r });
    this.requestUs = new Counter({ name: 'nv_inference_request_duration_us', help: 'Cumulative inference request duration in microseconds', labelNames: names, registers: r });
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
    // Make every series visible from the start, as Triton does.
    this.success.inc(this.labels, 0);
    this.count.inc(this.labels, 0);
    this.execCount.inc(this.labels, 0);
    this.pending.set(this.labels, 0);
    for (const reason of ['REJECTED', 'CANCELED', 'BACKEND', 'OTHER'] as const) this.failure.inc({ ...this.labels, reason }, 0);
  }

  /** A request that completed: durations per request, as Triton counts them. */
  succeeded(batch: number, times: { requestMs: number; queueMs: number; computeMs: number }): void {
    this.success.inc(this.labels);
    this.count.inc(this.labels, batch);
    this.requestUs.inc(this.labels, times.requestMs * 1000);
    this.queueUs.inc(this.labels, times.queueMs * 1000);
    this.computeUs.inc(this.labels, times.computeMs * 1000);
    this.requestSummary.observe(times.requestMs * 1000);
    this.queueSummary.observe(times.queueMs * 1000);
  }

  /** A request that failed, at submission (EQUEUEFULL, EINPUT, ...) or later. */
  failed(code: ErrorCode | 'BACKEND'): void {
    this.failure.inc({ ...this.labels, reason: failureReason(code) });
  }

  /** One model execution (a batch counts once). */
  executed(): void {
    this.execCount.inc(this.labels);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
