/**
 * Load drivers in the manner of perf_analyzer: a closed loop keeps `concurrency`
 * requests in flight for a time and records each latency; a burst driver sends
 * `concurrency` requests at once and records the time to the first result. Both
 * watch the event loop's longest stall with perf_hooks.monitorEventLoopDelay.
 */
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import { percentiles, type Percentiles } from '../engine/stats.js';

export type Infer = (index: number) => Promise<unknown>;

export interface ClosedLoopResult {
  concurrency: number;
  requests: number;
  seconds: number;
  /** Completed requests per second. */
  throughput: number;
  latencyMs: Percentiles;
  /** Longest time the event loop could not run a 1 ms timer, ms. */
  stallMaxMs: number;
  /** Fraction of the time the event loop was busy (perf_hooks eventLoopUtilization). */
  eventLoopUtilization: number;
  errors: number;
}

function stallMonitor(): { stop(): number } {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return {
    stop() {
      h.disable();
      // Delay beyond the 1 ms timer period, in ms.
      return Math.max(0, h.max / 1e6 - 1);
    },
  };
}

/** Keeps `concurrency` requests in flight for `seconds` after a warm-up, like perf_analyzer. */
export async function closedLoop(infer: Infer, inputs: number, concurrency: number, seconds: number, warmupSeconds = 0.5): Promise<ClosedLoopResult> {
  let next = 0;
  let measuring = false;
  let stop = false;
  const latencies: number[] = [];
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const i = next++ % inputs;
      const t0 = performance.now();
      try {
        await infer(i);
        if (measuring) latencies.push(performance.now() - t0);
      } catch {
        if (measuring) errors++;
        // A request refused at once settles in a microtask: without yielding, a loop of
        // refusals would never let the timers that end the run fire.
        await new Promise((r) => setImmediate(r));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  const monitor = stallMonitor();
  const elu0 = perf.eventLoopUtilization();
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  stop = true;
  const stallMaxMs = monitor.stop();
  const elu = perf.eventLoopUtilization(elu0).utilization;
  await Promise.all(loops);
  return {
    concurrency,
    requests: latencies.length,
    seconds: elapsed,
    throughput: latencies.length / elapsed,
    latencyMs: percentiles(latencies),
    stallMaxMs,
    eventLoopUtilization: elu,
    errors,
  };
}

export interface BurstResult {
  concurrency: number;
  bursts: number;
  /** Time from sending a burst of `concurrency` requests to the first result, ms. */
  firstResultMs: Percentiles;
  /** Time to the last result of the burst, ms. */
  lastResultMs: Percentiles;
}

/** Sends bursts of `concurrency` requests at once, one burst after another, for about `seconds`. */
export async function bursts(infer: Infer, inputs: number, concurrency: number, seconds: number, minBursts = 5): Promise<BurstResult> {
  const first: number[] = [];
  const last: number[] = [];
  const until = performance.now() + seconds * 1000;
  let next = 0;
  while (first.length < minBursts || performance.now() < until) {
    const t0 = performance.now();
    let firstAt = 0;
    await Promise.all(
      Array.from({ length: concurrency }, () =>
        infer(next++ % inputs).then(
          () => {
            firstAt ||= performance.now();
          },
          () => undefined,
        ),
      ),
    );
    first.push((firstAt || performance.now()) - t0);
    last.push(performance.now() - t0);
    if (first.length >= 1000) break;
  }
  return { concurrency, bursts: first.length, firstResultMs: percentiles(first), lastResultMs: percentiles(last) };
}

export interface OverheadResult {
  rounds: number;
  /** Median over rounds of the engine's p50 latency, ms. */
  engineP50Ms: number;
  /** Median over rounds of the raw call's p50 latency, ms. */
  rawP50Ms: number;
  /** engineP50Ms / rawP50Ms − 1. */
  overhead: number;
}

/**
 * One request in flight, the engine and the raw call alternating in short rounds
 * so that both see the same background load; medians of the rounds' p50s.
 */
export async function overheadAtOne(engine: Infer, raw: Infer, inputs: number, rounds: number, secondsPerRound: number): Promise<OverheadResult> {
  const e: number[] = [];
  const r: number[] = [];
  for (let k = 0; k < rounds; k++) {
    e.push((await closedLoop(engine, inputs, 1, secondsPerRound, 0.1)).latencyMs.p50);
    r.push((await closedLoop(raw, inputs, 1, secondsPerRound, 0.1)).latencyMs.p50);
  }
  const median = (xs: number[]): number => percentiles(xs).p50;
  const engineP50Ms = median(e);
  const rawP50Ms = median(r);
  return { rounds, engineP50Ms, rawP50Ms, overhead: engineP50Ms / rawP50Ms - 1 };
}
