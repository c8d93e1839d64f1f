/**
 * Load drivers in the manner of perf_analyzer: a closed loop keeps `concurrency`
 * requests in flight for a time and records each latency; a burst driver sends
 * `concurrency` requests at once and records the time to the first result. Both
 * watch the event loop's longest stall with perf_hooks.monitorEventLoopDelay.
 */
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import { percentiles, type Percentiles } from '../engine/stats.js';
import { addonState } from '../native/index.js';

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
  /**
   * The JS thread's CPU time per completed request, µs: all of it, GC included (the addon's
   * thread clock; undefined without the addon). What a service's own JS has left to share.
   */
  jsThreadCpuUs?: number;
  errors: number;
}

/** The calling thread's CPU time so far, ms, where the addon gives the thread's clock. */
function threadCpuMs(): number | undefined {
  const s = addonState();
  return s.loaded ? s.addon.binding.threadCpuTimeMs?.() : undefined;
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
  const cpu0 = threadCpuMs();
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  const cpu1 = threadCpuMs();
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
    ...(cpu0 !== undefined && cpu1 !== undefined && mine.length > 0 ? { jsThreadCpuUs: ((cpu1 - cpu0) * 1000) / mine.length } : {}),
    errors,
  };
}

/**
 * The event loop's longest stall over `seconds` with nothing in flight: the machine's own
 * floor under the stall figures (a VM's timer wake-ups, other processes, V8's threads), taken
 * in the same rounds as the contenders so that it meets the same moments of a noisy machine.
 */
export async function idleLoop(seconds: number): Promise<number> {
  const monitor = stallMonitor();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return monitor.stop();
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
    ...(rounds.every((r) => r.jsThreadCpuUs !== undefined) && requests > 0
      ? { jsThreadCpuUs: rounds.reduce((a, r) => a + r.jsThreadCpuUs! * r.requests, 0) / requests }
      : {}),
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

/** "median (min–max)" of a figure over rounds, to `digits` decimals, as the bench scripts' tables print it. */
export function medianRange(xs: readonly number[], digits: number): string {
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
}

export interface OverheadResult {
  rounds: number;
  /** Rounds run before those kept, not kept (interleavedAtOne). */
  warmRounds: number;
  /** Median over rounds of the engine's p50 latency, ms. */
  engineP50Ms: number;
  /** Median over rounds of the raw call's p50 latency, ms. */
  rawP50Ms: number;
  /**
   * The median over rounds of each round's engine p50 over the same round's raw p50, − 1.
   * Paired by round, because the contenders of a round share the machine's state; this VM's
   * rounds differ more than the contenders do (a run whose rounds read 24.9, 14.6, 16.0,
   * 6.7 and 26.3 % gave 25.8 % as the ratio of the two medians, taken from different rounds).
   */
  overhead: number;
  /** Each round's engine p50 over the same round's raw p50, − 1: the spread behind the median. */
  overheadByRound: number[];
  /** Median over rounds of the p50 latency of a bare worker hop (src/bench/bare-worker.ts), ms, where one was timed. */
  hopP50Ms?: number;
  /** As `overhead`, for the bare worker hop: what leaving the JS thread alone costs on this machine. */
  hopOverhead?: number;
  /** As `overheadByRound`, for the bare worker hop. */
  hopOverheadByRound?: number[];
}

/**
 * One request in flight: each contender's calls come back to back, as a caller awaiting
 * each result makes them, in blocks of BLOCK_CALLS, the contenders taking turns block by
 * block and their order turning, so that all of them see the same machine within a fraction
 * of a second and none always follows another (on a noisy machine, alternating whole rounds
 * of each swung the overhead between 10 % and 45 % from run to run). The first WARM_CALLS of
 * each block are not timed: they pay for the switch (another session's threads just ran); nor
 * are the first WARM_ROUNDS rounds, while V8 still compiles the calls' code.
 * Calls interleaved one by one instead measured something no caller meets: the engine's
 * worker, which polls for its next request for 1 ms after a result, always asleep again.
 * Returns each contender's p50 latency per round, ms.
 */
export async function interleavedAtOne(contenders: readonly Infer[], inputs: number, rounds: number, secondsPerRound: number): Promise<number[][]> {
  const p50s: number[][] = contenders.map(() => []);
  const timed = async (infer: Infer, i: number, into: number[] | undefined): Promise<void> => {
    const t0 = performance.now();
    await infer(i);
    into?.push(performance.now() - t0);
    // Untimed: let work either side left for later (the engine's deferred bookkeeping runs
    // from setImmediate) finish here, not inside the next call.
    await new Promise((r) => setImmediate(r));
  };
  for (let i = 0; i < 20; i++) for (const c of contenders) await timed(c, i % inputs, undefined);
  let next = 0;
  // WARM_ROUNDS more than asked, not kept. In the bench, just after the engines were built,
  // the first round read 19.9-32.1 % over raw in seven runs against -6.8-26.3 % for rounds
  // 3-5. Measured apart (engine, raw and hop taking turns, 1.5 s rounds), the engine read
  // 12.3 and 14.7 % in its first 9.5 s of calls and 8.0-9.3 % after; waiting 10 s before
  // the calls did not shorten that, and V8 finished optimizing 208 functions in those first
  // seconds against 14 in the next 9: JIT compiling, on the cores the runs use.
  for (let k = -WARM_ROUNDS; k < rounds; k++) {
    const latencies: number[][] = contenders.map(() => []);
    const until = performance.now() + secondsPerRound * 1000;
    while (performance.now() < until) {
      const turn = next++;
      for (let j = 0; j < contenders.length; j++) {
        const c = (turn + j) % contenders.length;
        for (let b = 0; b < BLOCK_CALLS; b++) await timed(contenders[c]!, (turn * BLOCK_CALLS + b) % inputs, b < WARM_CALLS ? undefined : latencies[c]);
      }
    }
    if (k >= 0) latencies.forEach((l, c) => p50s[c]!.push(percentiles(l).p50));
  }
  return p50s;
}

const BLOCK_CALLS = 50;
const WARM_CALLS = 5;
const WARM_ROUNDS = 6;

/** The engine against the raw call (and, where given, a bare worker hop) at 1 in flight: medians of the rounds' p50s. */
export async function overheadAtOne(engine: Infer, raw: Infer, inputs: number, rounds: number, secondsPerRound: number, hop?: Infer): Promise<OverheadResult> {
  const p50s = await interleavedAtOne(hop ? [engine, raw, hop] : [engine, raw], inputs, rounds, secondsPerRound);
  const engineP50Ms = median(p50s[0]!);
  const rawP50Ms = median(p50s[1]!);
  const overheadByRound = p50s[0]!.map((e, k) => e / p50s[1]![k]! - 1);
  const result: OverheadResult = { rounds, warmRounds: WARM_ROUNDS, engineP50Ms, rawP50Ms, overhead: median(overheadByRound), overheadByRound };
  if (hop) {
    result.hopP50Ms = median(p50s[2]!);
    result.hopOverheadByRound = p50s[2]!.map((h, k) => h / p50s[1]![k]! - 1);
    result.hopOverhead = median(result.hopOverheadByRound);
  }
  return result;
}

export type ArrivalDistribution = 'poisson' | 'constant';

/**
 * Arrival times (ms from the start) of requests at `rate` per second for `seconds`, like
 * perf_analyzer's --request-distribution: 'constant' spaces them evenly; 'poisson' draws
 * exponential gaps from a seeded generator, so that every contender meets the same arrivals.
 */
export function arrivalTimes(rate: number, seconds: number, distribution: ArrivalDistribution, seed = 1): number[] {
  if (!(rate > 0) || !(seconds > 0)) throw new RangeError(`arrivals need a positive rate and duration, got ${rate}/s for ${seconds} s`);
  const gapMs = 1000 / rate;
  const endMs = seconds * 1000;
  const times: number[] = [];
  if (distribution === 'constant') {
    for (let t = 0; t < endMs; t += gapMs) times.push(t);
    return times;
  }
  // mulberry32: small, seeded, uniform in [0, 1).
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  for (let t = -Math.log(1 - uniform()) * gapMs; t < endMs; t += -Math.log(1 - uniform()) * gapMs) times.push(t);
  return times;
}

export interface OpenLoopResult {
  /** Offered requests per second. */
  rate: number;
  distribution: ArrivalDistribution;
  /** Requests sent in the measured window (after the warm-up's). */
  requests: number;
  /** Of those, completed per second: from the window's start to the last of them completing. */
  throughput: number;
  /** From each request's arrival time (not when it could be sent) to its result, ms. */
  latencyMs: Percentiles;
  /**
   * From each arrival to its send, ms: the driver's timers (whole milliseconds in libuv) and
   * any hold of the event loop. Part of `latencyMs`, the same for every contender but the holds.
   */
  sendDelayMs: Percentiles;
  /** Most requests outstanding at once. */
  maxInFlight: number;
  stallMaxMs: number;
  eventLoopUtilization: number;
  errors: number;
  /** Requests without a result `drainSeconds` after the last arrival (not in the latencies). */
  unfinished: number;
}

/**
 * Sends requests at their arrival times whatever is outstanding, like perf_analyzer's
 * --request-rate-range. Latency counts from the arrival time, so that a contender that holds
 * the event loop is charged for the arrivals it kept waiting (no coordinated omission).
 * The first `warmupSeconds` of arrivals are sent but not measured.
 */
export async function openLoop(
  infer: Infer,
  inputs: number,
  rate: number,
  seconds: number,
  options: { distribution?: ArrivalDistribution; seed?: number; warmupSeconds?: number; drainSeconds?: number } = {},
): Promise<OpenLoopResult> {
  const distribution = options.distribution ?? 'poisson';
  const warmupMs = (options.warmupSeconds ?? 0.5) * 1000;
  const schedule = arrivalTimes(rate, warmupMs / 1000 + seconds, distribution, options.seed);
  const latencies: number[] = [];
  const sendDelays: number[] = [];
  let errors = 0;
  let maxInFlight = 0;
  let measured = 0;
  let lastDone = 0;
  let monitor: { stop(): number } | undefined;
  let elu0: ReturnType<typeof perf.eventLoopUtilization> | undefined;
  const outstanding = new Set<Promise<void>>();
  const start = performance.now();
  const send = (k: number): void => {
    const due = start + schedule[k]!;
    const counted = schedule[k]! >= warmupMs;
    if (counted) {
      measured++;
      sendDelays.push(performance.now() - due);
    }
    const p: Promise<void> = infer(k % inputs).then(
      () => {
        if (counted) {
          const now = performance.now();
          latencies.push(now - due);
          lastDone = Math.max(lastDone, now);
        }
      },
      () => {
        if (counted) errors++;
      },
    ).finally(() => outstanding.delete(p));
    outstanding.add(p);
    maxInFlight = Math.max(maxInFlight, outstanding.size);
  };
  let next = 0;
  while (next < schedule.length) {
    const elapsed = performance.now() - start;
    if (!monitor && elapsed >= warmupMs) {
      monitor = stallMonitor();
      elu0 = perf.eventLoopUtilization();
    }
    while (next < schedule.length && schedule[next]! <= elapsed) send(next++);
    if (next < schedule.length) await new Promise((r) => setTimeout(r, Math.max(0, schedule[next]! - (performance.now() - start))));
  }
  await Promise.race([Promise.all(outstanding), new Promise((r) => setTimeout(r, (options.drainSeconds ?? 30) * 1000).unref())]);
  const stallMaxMs = monitor?.stop() ?? 0;
  const eventLoopUtilization = elu0 ? perf.eventLoopUtilization(elu0).utilization : 0;
  const windowMs = (lastDone || performance.now()) - (start + warmupMs);
  return {
    rate,
    distribution,
    requests: measured,
    throughput: latencies.length / Math.max(windowMs / 1000, seconds),
    latencyMs: percentiles(latencies),
    sendDelayMs: percentiles(sendDelays),
    maxInFlight,
    stallMaxMs,
    eventLoopUtilization,
    errors,
    unfinished: measured - latencies.length - errors,
  };
}
