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

/**
 * Keeps `concurrency` requests in flight for `seconds` after a warm-up, like perf_analyzer.
 * Each measured latency also goes into `latencies` where given (to pool rounds).
 */
export async function closedLoop(
  infer: Infer,
  inputs: number,
  concurrency: number,
  seconds: number,
  warmupSeconds = 0.5,
  latencies: number[] = [],
): Promise<ClosedLoopResult> {
  let next = 0;
  let measuring = false;
  let stop = false;
  const first = latencies.length;
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
  const mine = latencies.slice(first);
  return {
    concurrency,
    requests: mine.length,
    seconds: elapsed,
    throughput: mine.length / elapsed,
    latencyMs: percentiles(mine),
    stallMaxMs,
    eventLoopUtilization: elu,
    errors,
  };
}

/**
 * Rounds of one contender as one result: requests and seconds summed, latency percentiles
 * over every round's latencies (`latencies`, pooled by closedLoop), the longest stall, and
 * the event loop's utilization weighted by each round's time.
 */
export function poolRounds(rounds: readonly ClosedLoopResult[], latencies: number[]): ClosedLoopResult {
  if (rounds.length === 0) throw new RangeError('no rounds to pool');
  const requests = rounds.reduce((a, r) => a + r.requests, 0);
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
  return {
    concurrency: rounds[0]!.concurrency,
    requests,
    seconds,
    throughput: requests / seconds,
    latencyMs: percentiles(latencies),
    stallMaxMs: Math.max(...rounds.map((r) => r.stallMaxMs)),
    eventLoopUtilization: rounds.reduce((a, r) => a + r.eventLoopUtilization * r.seconds, 0) / seconds,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
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

/** The middle value; for an even count, the mean of the two middle ones. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface OverheadResult {
  rounds: number;
  /** Median over rounds of the engine's p50 latency, ms. */
  engineP50Ms: number;
  /** Median over rounds of the raw call's p50 latency, ms. */
  rawP50Ms: number;
  /** engineP50Ms / rawP50Ms − 1. */
  overhead: number;
  /** Median over rounds of the p50 latency of a bare worker hop (src/bench/bare-worker.ts), ms, where one was timed. */
  hopP50Ms?: number;
  /** hopP50Ms / rawP50Ms − 1: what leaving the JS thread alone costs on this machine. */
  hopOverhead?: number;
}

/**
 * One request in flight, the engine, the raw call and (where given) a bare worker hop
 * interleaved request by request, their order turning each time, so that all of them see
 * the same machine at the same moment and none always follows another: on a noisy machine,
 * alternating whole rounds of each swung the overhead between 10 % and 45 % from run to
 * run. Medians of the rounds' p50s.
 */
export async function overheadAtOne(engine: Infer, raw: Infer, inputs: number, rounds: number, secondsPerRound: number, hop?: Infer): Promise<OverheadResult> {
  const contenders = hop ? [engine, raw, hop] : [engine, raw];
  const p50s: number[][] = contenders.map(() => []);
  const timed = async (infer: Infer, i: number, into: number[] | undefined): Promise<void> => {
    const t0 = performance.now();
    await infer(i);
    into?.push(performance.now() - t0);
    // Untimed: let work either side left for later (the engine's deferred bookkeeping runs
    // from setImmediate) finish here, not inside the next contender's call.
    await new Promise((r) => setImmediate(r));
  };
  for (let i = 0; i < 20; i++) for (const c of contenders) await timed(c, i % inputs, undefined);
  let next = 0;
  for (let k = 0; k < rounds; k++) {
    const latencies: number[][] = contenders.map(() => []);
    const until = performance.now() + secondsPerRound * 1000;
    while (performance.now() < until) {
      const turn = next++;
      const i = turn % inputs;
      for (let j = 0; j < contenders.length; j++) {
        const c = (turn + j) % contenders.length;
        await timed(contenders[c]!, i, latencies[c]);
      }
    }
    latencies.forEach((l, c) => p50s[c]!.push(percentiles(l).p50));
  }
  const engineP50Ms = median(p50s[0]!);
  const rawP50Ms = median(p50s[1]!);
  const result: OverheadResult = { rounds, engineP50Ms, rawP50Ms, overhead: engineP50Ms / rawP50Ms - 1 };
  if (hop) {
    result.hopP50Ms = median(p50s[2]!);
    result.hopOverhead = result.hopP50Ms / rawP50Ms - 1;
  }
  return result;
}
