/**
 * The judgements of one window (starvation.ts: starved under SCHED_IDLE; machine-load.ts:
 * the machine quiet again), on figures shaped like those measured here (docs/engine.md),
 * and their reading of Linux's schedstat and /proc/stat.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import { idleThreadIds, schedTimes, starvedWindow } from '../../src/backends/onnxruntime/starvation.js';
import { addonState } from '../../src/native/index.js';
import { CLS_MODEL } from '../engine/helpers.js';
import { machineBusyMs, quietWindow } from '../../src/machine-load.js';

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

  it.runIf(process.platform === 'linux' && addonState().loaded)("lists the workers' threads under SCHED_IDLE with the intra-op threads their sessions made, which the backend never learns", async () => {
    const before = new Set(idleThreadIds());
    const b = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 3 });
    try {
      expect(b.threadPolicy).toBe('SCHED_IDLE');
      const tids = (b as unknown as { workers: { tid: number }[] }).workers.map((w) => w.tid);
      const added = idleThreadIds().filter((t) => !before.has(t));
      // The worker's thread and the two intra-op threads of its 3-thread session, at least
      // (under vitest one more, idle, that may outlive the backend; what makes it was not
      // looked into: it inherits the policy all the same).
      expect(added.length).toBeGreaterThanOrEqual(3);
      expect(added).toEqual(expect.arrayContaining(tids));
    } finally {
      await b.dispose();
    }
    // The worker's thread and its session's are gone with it.
    expect(idleThreadIds().filter((t) => !before.has(t)).length).toBeLessThanOrEqual(1);
  });

  it('counts the machine quiet only where other processes used under a quarter of the cores', () => {
    // Measured in 1 s windows beside an engine of normal priority on 2 cores (.exp/quiet.mts):
    // idle engine, nothing else running.
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 10, processMs: 1 })).toBe(true);
    // 64 in flight, nothing else running: the process is the machine's load (ticks of 10 ms
    // make the others' share come out a little below zero too).
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 1910, processMs: 1866 })).toBe(true);
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 1970, processMs: 1981 })).toBe(true);
    // 64 in flight beside one busy process, and beside two.
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 1990, processMs: 1308 })).toBe(false);
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 2010, processMs: 1029 })).toBe(false);
    // An idle engine beside one busy process.
    expect(quietWindow({ windowMs: W, cores: 2, machineBusyMs: 1000, processMs: 1 })).toBe(false);
    // The bound: a quarter of 8 cores is 2000 ms of others' time in a second.
    expect(quietWindow({ windowMs: W, cores: 8, machineBusyMs: 2500, processMs: 600 })).toBe(true);
    expect(quietWindow({ windowMs: W, cores: 8, machineBusyMs: 2500, processMs: 400 })).toBe(false);
  });

  it("reads the machine's busy time from /proc/stat's first line, in ms, and undefined where it cannot", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tnp-stat-'));
    try {
      const file = join(dir, 'stat');
      // user nice system idle iowait irq softirq steal guest guest_nice, in ticks of 10 ms:
      // idle, iowait and steal are not busy.
      writeFileSync(file, 'cpu  48726 5 3981 76634 297 7 43 65 0 0\ncpu0 24000 0 2000 38000 150 0 20 30 0 0\nintr 1 2 3\n');
      expect(machineBusyMs(file)).toBe((48726 + 5 + 3981 + 7 + 43) * 10);
      writeFileSync(file, 'cpu  1 2\n');
      expect(machineBusyMs(file)).toBeUndefined();
      expect(machineBusyMs(join(dir, 'none'))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')("counts this process's own busy time on the real /proc/stat", () => {
    const before = machineBusyMs()!;
    const until = performance.now() + 200;
    while (performance.now() < until);
    // Most of the 200 ms spun (less a tick at each end, and any time the hypervisor stole).
    expect(machineBusyMs()! - before).toBeGreaterThanOrEqual(100);
  });
});
