/**
 * Prometheus metrics under Triton Inference Server's names, through prom-client: in a
 * Registry of the engine's own, and where given in a registry the service shares among
 * its engines (and its own metrics), one family per name with a series per model.
 * Counters of time are cumulative microseconds, as in Triton.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { RecentWindow, WindowSummary } from './window-summary.js';
import { inputError, type ErrorCode } from '../errors.js';

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

/** One engine's series: its labels, totals and windows, and what it reports when scraped. */
interface Source {
  labels: { model: string; version: string };
  /** Brings the totals up to date (the engine defers its bookkeeping past the callers' turn). */
  flush: () => void;
  totals: Totals;
  pendingNow: () => number;
  backendCounters: () => Readonly<Record<string, number>> | undefined;
  requestWindow: RecentWindow;
  queueWindow: RecentWindow;
}

/**
 * A Counter with a series per source holding `series(source)`'s totals, handed over when
 * scraped (each one's rise since the last scrape, so they only grow): prom-client hashes
 * the labels at every inc(), and the seven incs of a request and its batch cost 1.20-1.30
 * us a request in a hot loop here. `series` gives a source the same label sets in the same
 * order each time.
 */
class ScrapedCounter {
  readonly name: string;
  private readonly counter: Counter<string>;
  private readonly handed = new Map<Source, number[]>();

  constructor(name: string, help: string, labelNames: string[], registry: Registry, private readonly sources: ReadonlySet<Source>, private readonly series: (s: Source) => [Record<string, string>, number][]) {
    this.name = name;
    const handed = this.handed;
    this.counter = new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const source of sources) {
          source.flush();
          const given = handed.get(source) ?? [];
          series(source).forEach(([labels, total], i) => {
            this.inc(labels, total - (given[i] ?? 0));
            given[i] = total;
          });
          handed.set(source, given);
        }
      },
    });
  }

  /** Every series of a new source visible from the start, as Triton does. */
  add(source: Source): void {
    for (const [labels] of this.series(source)) this.counter.inc(labels, 0);
  }

  remove(source: Source): void {
    for (const [labels] of this.series(source)) this.counter.remove(labels);
    this.handed.delete(source);
  }
}

const NAMES = ['model', 'version'];
const GAUGE_NAMES = ['nv_inference_pending_request_count', 'tensorrt_node_backend_counter'] as const;
const SUMMARY = { percentiles: [0.5, 0.9, 0.95, 0.99], maxAgeSeconds: 600 };

/**
 * The metric families in one registry, each holding a series per engine that reports to
 * it (the label `model`): Prometheus text has each family once, so engines that share a
 * registry share its families, and prom-client refuses a second metric of the same name.
 */
class Families {
  readonly sources = new Set<Source>();
  private readonly counters: ScrapedCounter[];
  private readonly summaries: { summary: WindowSummary; window: (s: Source) => RecentWindow }[];

  constructor(private readonly registry: Registry) {
    const sources = this.sources;
    const one = (total: (t: Totals) => number) => (s: Source): [Record<string, string>, number][] => [[s.labels, total(s.totals)]];
    const counter = (name: string, help: string, labelNames: string[], series: (s: Source) => [Record<string, string>, number][]): ScrapedCounter =>
      new ScrapedCounter(name, help, labelNames, registry, sources, series);
    this.counters = [
      counter('nv_inference_request_success', 'Number of successful inference requests, all batch sizes', NAMES, one((t) => t.success)),
      counter('nv_inference_request_failure', 'Number of failed inference requests, all batch sizes', [...NAMES, 'reason'], (s) => REASONS.map((reason) => [{ ...s.labels, reason }, s.totals.failure[reason]])),
      counter('nv_inference_count', 'Number of inferences performed (a batch of n counts n)', NAMES, one((t) => t.count)),
      counter('nv_inference_exec_count', 'Number of model executions performed (a batch counts 1)', NAMES, one((t) => t.execCount)),
      counter('nv_inference_queue_duration_us', 'Cumulative inference queuing duration in microseconds', NAMES, one((t) => t.queueUs)),
      counter('nv_inference_compute_infer_duration_us', 'Cumulative compute inference duration in microseconds', NAMES, one((t) => t.computeUs)),
      counter('nv_inference_request_duration_us', 'Cumulative inference request duration in microseconds', NAMES, one((t) => t.requestUs)),
    ];
    new Gauge({
      name: GAUGE_NAMES[0],
      help: 'Instantaneous number of pending requests awaiting execution',
      labelNames: NAMES,
      registers: [registry],
      // Reset at each scrape: instantaneous values, so the series of engines gone go too.
      collect() {
        this.reset();
        for (const s of sources) {
          s.flush();
          this.set(s.labels, s.pendingNow());
        }
      },
    });
    // Not Triton's: the backend's own counters, one series each (on ONNX Runtime
    // sessionRunMs, the workers' busy time, gives their saturation: its rate over instances).
    new Gauge({
      name: GAUGE_NAMES[1],
      help: "The backend's own counters, as engine.stats().backendCounters gives them",
      labelNames: [...NAMES, 'counter'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sources) for (const [counter, value] of Object.entries(s.backendCounters() ?? {})) this.set({ ...s.labels, counter }, value);
      },
    });
    const flush = (): void => {
      for (const s of sources) s.flush();
    };
    this.summaries = [
      { summary: new WindowSummary({ name: 'nv_inference_request_summary_us', help: 'Summary of inference request duration in microseconds', ...SUMMARY, registers: [registry], beforeScrape: flush }), window: (s) => s.requestWindow },
      { summary: new WindowSummary({ name: 'nv_inference_queue_summary_us', help: 'Summary of inference queuing duration in microseconds', ...SUMMARY, registers: [registry], beforeScrape: flush }), window: (s) => s.queueWindow },
    ];
  }

  add(source: Source): void {
    this.sources.add(source);
    for (const c of this.counters) c.add(source);
    for (const { summary, window } of this.summaries) summary.add(window(source), source.labels);
  }

  /** Takes a source's series out; returns whether any source is left. */
  remove(source: Source): boolean {
    if (this.sources.delete(source)) {
      for (const c of this.counters) c.remove(source);
      for (const { summary, window } of this.summaries) summary.remove(window(source));
    }
    return this.sources.size > 0;
  }

  /** Takes the families out of the registry (its last source has gone). */
  unregister(): void {
    const names = [...this.counters.map((c) => c.name), ...GAUGE_NAMES, ...this.summaries.map((s) => s.summary.name)];
    for (const name of names) this.registry.removeSingleMetric(name);
  }
}

/**
 * A prom-client `Registry` as the engine uses it: this package's prom-client or the
 * service's own copy, of another major too (checked with 14 and 15), which a `Registry`
 * type of one version would refuse (14's lacks `setContentType`).
 */
export interface MetricsRegistry {
  // `never`: a registry takes its own version's metrics; the engine hands it prom-client 15's.
  registerMetric(metric: never): void;
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
}

const REGISTRY_METHODS = ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'] as const satisfies readonly (keyof MetricsRegistry)[];

/** Whether `r` has what MetricsRegistry names: a prom-client Registry of any copy or version. */
export function isMetricsRegistry(r: unknown): r is MetricsRegistry {
  const x = r as Record<string, unknown> | null;
  return typeof x === 'object' && x !== null && REGISTRY_METHODS.every((m) => typeof x[m] === 'function');
}

/** Each registry's families, made by the first engine that reports to it. */
const familiesOf = new WeakMap<Registry, Families>();

/** What an engine tells its metrics, and the registries it reports to. */
export class TritonMetrics {
  /** The engine's own registry: engine.metrics() gives its series alone. */
  readonly registry = new Registry();
  private readonly source: Source;
  private readonly shared: Registry | undefined;

  /**
   * `pendingNow` reports the requests waiting for execution at collection time,
   * `backendCounters` the backend's own counters then (engine.stats().backendCounters), and
   * `flush` runs the engine's deferred bookkeeping first. With `shared`, the engine's series
   * also go into that registry's families, beside other engines' (refused where one already
   * reports under the same model name and version).
   */
  constructor(o: {
    model: string;
    version?: string;
    pendingNow: () => number;
    backendCounters?: () => Readonly<Record<string, number>> | undefined;
    flush?: () => void;
    shared?: MetricsRegistry | undefined;
  }) {
    const version = o.version ?? '1';
    this.source = {
      labels: { model: o.model, version },
      flush: o.flush ?? (() => {}),
      totals: { success: 0, count: 0, execCount: 0, queueUs: 0, computeUs: 0, requestUs: 0, failure: { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 } },
      pendingNow: o.pendingNow,
      backendCounters: o.backendCounters ?? (() => undefined),
      requestWindow: new RecentWindow(),
      queueWindow: new RecentWindow(),
    };
    // Either content type: the families are the same metrics, formatted by the registry.
    const shared = o.shared as Registry | undefined; // of another copy or version: the engine uses only what MetricsRegistry names
    if (shared) {
      const families = familiesOf.get(shared);
      if (families && [...families.sources].some((s) => s.labels.model === o.model && s.labels.version === version)) {
        throw inputError('name', 'a model name no other engine reporting to this metrics registry has (its series would add up with theirs)', `'${o.model}'`, 'option');
      }
    }
    this.join(this.registry);
    if (shared) this.join(shared);
    this.shared = shared;
  }

  private join(registry: Registry): void {
    let families = familiesOf.get(registry);
    if (!families) {
      families = new Families(registry);
      familiesOf.set(registry, families);
    }
    families.add(this.source);
  }

  /** A request that completed: durations per request, as Triton counts them. */
  succeeded(batch: number, times: { requestMs: number; queueMs: number; computeMs: number }): void {
    const t = this.source.totals;
    t.success++;
    t.count += batch;
    t.requestUs += times.requestMs * 1000;
    t.queueUs += times.queueMs * 1000;
    t.computeUs += times.computeMs * 1000;
    this.source.requestWindow.observe(times.requestMs * 1000);
    this.source.queueWindow.observe(times.queueMs * 1000);
  }

  /** A request that failed, at submission (EQUEUEFULL, EINPUT, ...) or later. */
  failed(code: ErrorCode | 'BACKEND'): void {
    this.source.totals.failure[failureReason(code)]++;
  }

  /** One model execution (a batch counts once). */
  executed(): void {
    this.source.totals.execCount++;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Takes the engine's series out of the shared registry (it is disposed); its own registry keeps them. */
  leaveShared(): void {
    const shared = this.shared;
    const families = shared && familiesOf.get(shared);
    if (!shared || !families || families.remove(this.source)) return;
    families.unregister();
    familiesOf.delete(shared);
  }
}
