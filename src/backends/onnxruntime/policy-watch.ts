/**
 * When the workers' scheduling policy should change: a timer that reads, once a window,
 * whether workers at background priority are starved, or, after they left it, whether the machine
 * is quiet again (the judgements are starvation.ts's). The backend (index.ts) makes the
 * change, by new workers; this module only says when.
 */
import { availableParallelism } from 'node:os';
import { backgroundThreadIds, schedTimes, starvedWindow, threadStates, waitBetween, type SchedTimes, type ThreadReading } from './starvation.js';
import { QUIET_SHARE, machineSample, quietBetween, type MachineSample } from '../../machine-load.js';

/**
 * Windows are this long; starvation is acted on after STARVED_WINDOWS of them in a row. 1 s
 * until session 20: at nice 10 a starved worker still runs in slices, so its schedstat moves
 * steadily, and 0.5 s windows switched 1.45-1.53 s after busy processes started (against
 * 3.0 s) with no switch in the cases that must not (a busy process beside two workers, the
 * JS thread 80 % busy, 64 in flight on a quiet machine; two runs each, .exp/window-fp.mts).
 */
export const WINDOW_MS = 500;
export const STARVED_WINDOWS = 2;
/**
 * Quiet windows in a row (5 s) before workers that left background priority go back to it;
 * doubled at each return, so that work on the machine that comes and goes settles the
 * workers at the normal priority rather than replacing them over and over.
 */
export const QUIET_WINDOWS = 10;

/** The workers as the backend has them now. */
export interface WatchedWorkers {
  /** The live workers' Linux thread ids (undefined where not known). */
  tids(): readonly (number | undefined)[];
  /** Whether runs wait on the workers. */
  runsWaiting(): boolean;
}

export interface PolicyChange {
  /** The windows in a row that decided it, and their length. */
  windows: number;
  windowMs: number;
  /** Starved: the share of the time they were ready to run that the workers ran, in %. */
  ranPercent?: number;
  /** Quiet: under this share of the cores used by other processes, in %. */
  othersBelowPercent?: number;
}

export class PolicyWatch {
  private timer: NodeJS.Timeout | undefined;
  private inRow = 0;
  private quietNeeded = QUIET_WINDOWS;
  private lastTimes: { at: number; main: SchedTimes; workers: Map<number, ThreadReading> } | undefined;
  private lastMachine: MachineSample | undefined;

  constructor(
    private readonly workers: WatchedWorkers,
    private readonly on: { starved(change: PolicyChange): void; quiet(change: PolicyChange): void },
  ) {}

  /**
   * At background priority: calls `on.starved` once STARVED_WINDOWS windows in a row were
   * starved, then stops. Each check reads small /proc files on the JS thread, and only while
   * runs wait: each thread's stat (its nice value and state), then the times of those niced
   * below the JS thread: 0.22 ms for the 15 threads of a process with a 2 x 1 engine here
   * (scratch .exp/checkcost.mts, 0.222-0.226 ms in two runs), 0.45 ms a second at two
   * checks a second. False where it cannot watch (a thread id unknown, no schedstat).
   */
  watchStarvation(): boolean {
    this.stop();
    if (this.workers.tids().some((tid) => tid === undefined) || !schedTimes('/proc/thread-self/schedstat')) return false;
    this.lastTimes = undefined;
    this.start(() => this.checkStarvation());
    return true;
  }

  /**
   * After leaving background priority: calls `on.quiet` once the machine was quiet for the windows
   * needed (QUIET_WINDOWS, doubled at each call), then stops. Starvation cannot be seen from
   * the normal priority; the other work can, in /proc/stat. False where that cannot be read.
   */
  watchQuiet(): boolean {
    this.stop();
    if (machineSample() === undefined) return false;
    this.lastMachine = undefined;
    this.start(() => this.checkQuiet());
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.inRow = 0;
  }

  private start(check: () => void): void {
    this.timer = setInterval(check, WINDOW_MS);
    this.timer.unref();
  }

  private checkStarvation(): void {
    // A window counts only with runs waiting at both ends (starvation.ts): an idle engine
    // reads nothing, and its next busy check starts a window.
    const last = this.lastTimes;
    this.lastTimes = undefined;
    if (!this.workers.runsWaiting()) {
      this.inRow = 0;
      return;
    }
    const now = performance.now();
    const main = schedTimes('/proc/thread-self/schedstat');
    const workers = new Map<number, ThreadReading>();
    let workersRunMs = 0;
    let workersWaitMs = 0;
    // The workers and every other thread niced below this one: their sessions' intra-op threads.
    const states = threadStates();
    for (const tid of new Set([...this.workers.tids(), ...backgroundThreadIds(states)])) {
      const t = tid === undefined ? undefined : schedTimes(`/proc/self/task/${tid}/schedstat`);
      if (tid === undefined || !t) continue;
      const reading = { ...t, runnable: states.get(tid)?.runnable ?? false };
      const before = last?.workers.get(tid);
      if (!last || !before) {
        // a new thread: from the next window
        workers.set(tid, { ...reading, countedWaitMs: reading.waitMs });
        continue;
      }
      const between = waitBetween(before, reading, now - last.at);
      workers.set(tid, between.reading);
      workersRunMs += reading.runMs - before.runMs;
      workersWaitMs += between.waitMs;
    }
    if (main) this.lastTimes = { at: now, main, workers };
    if (!last || !main) {
      this.inRow = 0;
      return;
    }
    // Runs waited at both ends: this check and the last read only while they did.
    const window = { windowMs: now - last.at, cores: availableParallelism(), runsWaiting: true, workersRunMs, workersWaitMs, mainRunMs: main.runMs - last.main.runMs };
    this.inRow = starvedWindow(window) ? this.inRow + 1 : 0;
    if (this.inRow < STARVED_WINDOWS) return;
    this.stop();
    this.on.starved({ windows: STARVED_WINDOWS, windowMs: WINDOW_MS, ranPercent: (100 * workersRunMs) / (workersRunMs + workersWaitMs) });
  }

  private checkQuiet(): void {
    const last = this.lastMachine;
    const now = (this.lastMachine = machineSample());
    if (!last || !now) {
      this.inRow = 0;
      return;
    }
    this.inRow = quietBetween(last, now, availableParallelism()) ? this.inRow + 1 : 0;
    if (this.inRow < this.quietNeeded) return;
    const windows = this.quietNeeded;
    this.quietNeeded *= 2;
    this.stop();
    this.on.quiet({ windows, windowMs: WINDOW_MS, othersBelowPercent: QUIET_SHARE * 100 });
  }
}
