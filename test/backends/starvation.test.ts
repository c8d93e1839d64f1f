/**
 * starvation.ts's judgement of one window, on figures shaped like those measured here
 * (docs/engine.md), and its reading of Linux's schedstat.
 */
import { describe, expect, it } from 'vitest';
import { schedTimes, starvedWindow } from '../../src/backends/onnxruntime/starvation.js';

const W = 1000;

describe('starvation under SCHED_IDLE', () => {
  it('counts workers starved only where other work keeps them off cores they could have had', () => {
    // Two busy processes beside two workers on 2 cores: runnable the whole window, 0.5 % run.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 10, workersWaitMs: 1990, mainRunMs: 60 })).toBe(true);
    // Quiet, 64 in flight: the workers run nearly all the window.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 1850, workersWaitMs: 60, mainRunMs: 120 })).toBe(false);
    // One busy process beside them: they share the other core (about half).
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 950, workersWaitMs: 1050, mainRunMs: 80 })).toBe(false);
    // The JS thread itself 80 % busy: what SCHED_IDLE yields to, so not starvation.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 1150, workersWaitMs: 800, mainRunMs: 800 })).toBe(false);
    // The JS thread on a whole core of one: nothing was left to have.
    expect(starvedWindow({ windowMs: W, cores: 1, runsWaiting: true, workersRunMs: 5, workersWaitMs: 990, mainRunMs: 1000 })).toBe(false);
    // Eight workers on 2 cores, busy: they wait on each other, yet get the cores.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 1900, workersWaitMs: 6000, mainRunMs: 100 })).toBe(false);
    // Idle workers that other work caught polling (seen while another engine served): no runs waited.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: false, workersRunMs: 5, workersWaitMs: 1106, mainRunMs: 168 })).toBe(false);
    // Mostly idle: a few short runs that waited say nothing.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 1, workersWaitMs: 200, mainRunMs: 10 })).toBe(false);
  });

  it.runIf(process.platform === 'linux')("reads a thread's time on a CPU and waiting, and undefined where there is no such file", () => {
    const before = schedTimes('/proc/thread-self/schedstat');
    const until = performance.now() + 30;
    while (performance.now() < until);
    const after = schedTimes('/proc/thread-self/schedstat');
    expect(before).toBeDefined();
    expect(after!.runMs - before!.runMs).toBeGreaterThan(10);
    expect(after!.waitMs).toBeGreaterThanOrEqual(before!.waitMs);
    expect(schedTimes('/proc/self/task/0/schedstat')).toBeUndefined();
  });
});
