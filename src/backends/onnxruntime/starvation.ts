/**
 * Whether inference threads at background priority (nice 10, workers.ts) are starved:
 * runnable, yet kept off the cores by other work. Their low weight lets the JS thread
 * preempt them at once (docs/engine.md), but other processes' threads of normal priority
 * outweigh them too: beside one busy process per core on 2 cores the workers ran 9.5-10 %
 * of the time they were ready to. Linux keeps an unprivileged thread from raising its
 * priority again, so the backend answers starvation with new threads of normal priority,
 * and goes back to the background priority by new threads again once the other work has
 * ended (index.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';

/** Time on a CPU and time runnable but waiting for one, in ms. */
export interface SchedTimes {
  runMs: number;
  waitMs: number;
}

/**
 * A thread's times from Linux's schedstat (`/proc/self/task/<tid>/schedstat`, or
 * `/proc/thread-self/schedstat` for the calling thread): nanoseconds on a CPU, waiting on
 * a run queue, and timeslices. Undefined where the file cannot be read (not Linux, thread
 * gone, schedstats off).
 */
export function schedTimes(path: string): SchedTimes | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
  return { runMs: run! / 1e6, waitMs: wait! / 1e6 };
}

/** A thread as one check read it, with the wait counted for it up to then. */
export interface ThreadReading extends SchedTimes {
  runnable: boolean;
  countedWaitMs: number;
}

/**
 * A thread's wait between two checks, a wait still going on included, and its reading for
 * the next. Linux adds a wait to schedstat in lumps (once the thread gets a core, or at some
 * accounting), so a thread kept off the cores read as not waiting in the windows between:
 * beside three busy loops a core, a SCHED_IDLE loop's figure stood still for 1.5 s, then
 * rose by 2.1 s, and in CI a starved session's creation went unflagged for ~20 s. A thread
 * runnable at both checks that did not run between them waited all along (to sleep it
 * would have had to run); what schedstat shows later for that time is not counted twice,
 * and no window counts more wait than it had room for beside the thread's run.
 */
export function waitBetween(before: ThreadReading, now: SchedTimes & { runnable: boolean }, elapsedMs: number): { waitMs: number; reading: ThreadReading } {
  const ranMs = now.runMs - before.runMs;
  const waitedThrough = before.runnable && now.runnable && ranMs === 0;
  const countedWaitMs = Math.max(now.waitMs, before.countedWaitMs + (waitedThrough ? elapsedMs : 0));
  return {
    waitMs: Math.max(0, Math.min(countedWaitMs - before.countedWaitMs, elapsedMs - ranMs)),
    reading: { ...now, countedWaitMs },
  };
}

/** A thread's nice value, and whether it is runnable: on a core or waiting for one ('R'). */
export interface ThreadState {
  nice: number;
  runnable: boolean;
}

/** Each thread of this process and its state (/proc/self/task/<tid>/stat: fields 3 and 19), one read each; empty where there is no /proc. */
export function threadStates(): Map<number, ThreadState> {
  const out = new Map<number, ThreadState>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // Fields after the command name, which may hold spaces: ') S ppid ...' is field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), { nice: Number(fields[16]), runnable: fields[0] === 'R' });
  }
  return out;
}

/**
 * The threads of this process niced below the calling thread (the JS thread): the workers
 * and the intra-op threads their sessions made, whose ids the backend learns by name only. A
 * worker waiting for its starved intra-op threads is not runnable, so its own times alone
 * read as an idle window (a build beside two busy processes once ended starved, unflagged).
 */
export function backgroundThreadIds(states = threadStates(), ownNice = getPriority()): number[] {
  return [...states].filter(([, t]) => t.nice > ownNice).map(([tid]) => tid);
}

/** One window of measurement: the inference threads' times summed, and the JS thread's time on a CPU. */
export interface StarvationWindow {
  windowMs: number;
  cores: number;
  /** Whether runs waited on the workers at the window's start and at its end. */
  runsWaiting: boolean;
  workersRunMs: number;
  workersWaitMs: number;
  mainRunMs: number;
}

/** Below this share of the time they could have had, the workers count as starved. */
export const STARVED_SHARE = 0.25;

/**
 * Starved: runs waited on the workers from the window's start to its end (an idle worker
 * that other work caught inside its 1 ms poll stays runnable until it gets a core; that
 * starved nothing, yet tripped the check while another engine served), the workers were
 * runnable for at least a quarter of the window, and they ran less
 * than a quarter of what the cores could have given them. What they could have had is
 * their runnable time, capped by the cores less the JS thread's own time: yielding to the
 * JS thread is what the background priority is for, and more workers than cores wait on each other.
 * A single busy process beside them takes about half (one core of two) and does not count.
 */
export function starvedWindow(w: StarvationWindow): boolean {
  if (!w.runsWaiting) return false;
  const runnable = w.workersRunMs + w.workersWaitMs;
  if (runnable < 0.25 * w.windowMs) return false;
  const couldHave = Math.min(runnable, Math.max(0, w.cores * w.windowMs - w.mainRunMs));
  return w.workersRunMs < STARVED_SHARE * couldHave;
}
