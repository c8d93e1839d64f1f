/**
 * Load drivers in the manner of perf_analyzer: a closed loop keeps `concurrency`
 * requests in flight for a time and records each latency; a burst driver sends
 * `concurrency` requests at once and records the time to the first result. Both
 * watch the event loop's longest stall with perf_hooks.monitorEventLoopDelay.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
      }
    }
  };
  const loops = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  const monitor = stallMonitor();
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  stop = true;
  const stallMaxMs = monitor.stop();
  await Promise.all(loops);
  return {
    concurrency,
    requests: latencies.length,
    seconds: elapsed,
    throughput: latencies.length / elapsed,
    latencyMs: percentiles(latencies),
    stallMaxMs,
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
