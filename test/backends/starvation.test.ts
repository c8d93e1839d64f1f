/**
 * The judgements of one window (starvation.ts: starved at background priority; machine-load.ts:
 * the machine quiet again), on figures shaped like those measured here (docs/engine.md),
 * and their reading of Linux's schedstat and /proc/stat.
 */
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import { backgroundThreadIds, schedTimes, starvedWindow, threadStates, waitBetween } from '../../src/backends/onnxruntime/starvation.js';
import { BACKGROUND_NICE, BACKGROUND_POLICY, BACKGROUND_SLICE_WORDS, CLS_MODEL, srcUrl, threadsNamed } from '../engine/helpers.js';
import { machineBusyMs, quietWindow } from '../../src/machine-load.js';

const W = 1000;

describe('starvation at background priority', () => {
  it('counts workers starved only where other work keeps them off cores they could have had', () => {
    // Two busy processes beside two workers on 2 cores: runnable the whole window, 0.5 % run.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 10, workersWaitMs: 1990, mainRunMs: 60 })).toBe(true);
    // Quiet, 64 in flight: the workers run nearly all the window.
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 1850, workersWaitMs: 60, mainRunMs: 120 })).toBe(false);
    // One busy process beside them: they share the other core (about half).
    expect(starvedWindow({ windowMs: W, cores: 2, runsWaiting: true, workersRunMs: 950, workersWaitMs: 1050, mainRunMs: 80 })).toBe(false);
    // The JS thread itself 80 % busy: what the background priority yields to, so not starvation.
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

  it('counts a wait still going on, which schedstat shows only in lumps, and counts no wait twice', () => {
    // A SCHED_IDLE shell loop beside three busy loops a core, read every 500 ms (run and
    // wait in ms from its schedstat): 5.02 / 662.4 three times over, then 5.02 / 2362.3.
    const start = { runMs: 5.02, waitMs: 662.4, runnable: true, countedWaitMs: 662.4 };
    const a = waitBetween(start, { runMs: 5.02, waitMs: 662.4, runnable: true }, 500);
    expect(a.waitMs).toBe(500);
    const b = waitBetween(a.reading, { runMs: 5.02, waitMs: 662.4, runnable: true }, 500);
    expect(b.waitMs).toBe(500);
    // The lump: 1699.9 ms more in schedstat, of which 1000 were counted already and the
    // rest is older than the window; the window holds 500 at most.
    const c = waitBetween(b.reading, { runMs: 5.02, waitMs: 2362.3, runnable: true }, 500);
    expect(c.waitMs).toBe(500);
    expect(c.reading.countedWaitMs).toBeCloseTo(2362.3, 6);
    // It ran 2 ms: the window's wait is what schedstat adds, within the room the run left.
    const d = waitBetween(c.reading, { runMs: 7.02, waitMs: 2800, runnable: true }, 500);
    expect(d.waitMs).toBeCloseTo(437.7, 6);
    // Asleep at either end, or it ran: no wait is assumed.
    expect(waitBetween({ ...start, runnable: false }, { runMs: 5.02, waitMs: 662.4, runnable: true }, 500).waitMs).toBe(0);
    expect(waitBetween(start, { runMs: 5.02, waitMs: 662.4, runnable: false }, 500).waitMs).toBe(0);
    expect(waitBetween(start, { runMs: 400, waitMs: 662.4, runnable: true }, 500).waitMs).toBe(0);
  });

  it.runIf(process.platform === 'linux')('reads whether a thread is runnable: this one, running, is; one ended is not known', () => {
    const self = Number(readlinkSync('/proc/thread-self').split('/').pop());
    expect(threadStates().get(self)?.runnable).toBe(true);
    expect(threadStates().get(0)?.runnable).toBeUndefined();
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

  it.runIf(process.platform === 'linux')("puts the worker's thread and the intra-op threads its session made at background priority, found by the name the worker gave itself, and nothing else", async () => {
    const before = new Set(backgroundThreadIds());
    const b = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 3 });
    try {
      expect(b.threadPolicy).toBe(BACKGROUND_POLICY);
      const [tid] = (b as unknown as { workers: { tid: number }[] }).workers.map((w) => w.tid);
      const added = backgroundThreadIds().filter((t) => !before.has(t));
      // The worker's thread and the two intra-op threads of its 3-thread session, each named
      // as the worker named itself (a new thread inherits its maker's name).
      expect(added.sort()).toEqual(threadsNamed(`trtn-${tid}`).sort());
      expect(added).toHaveLength(3);
      expect(added).toContain(tid);
    } finally {
      await b.dispose();
    }
    // The worker's thread and its session's are gone with it (a thread may take a moment to leave /proc).
    await vi.waitFor(() => expect(backgroundThreadIds().filter((t) => !before.has(t))).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  // A process started under `nice`: the workers go BACKGROUND_NICE_STEP below its JS thread,
  // up to 19, and the starvation check finds them there; at 19 nothing is lower.
  it.runIf(process.platform === 'linux')('nices the workers below a JS thread that is niced itself, and leaves them at its priority where it runs at 19', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tnp-niced-'));
    try {
      const file = join(dir, 'run.mts');
      writeFileSync(file, [
        `import { OnnxruntimeBackend } from ${srcUrl('src/backends/onnxruntime/index.ts')};`,
        `import { backgroundThreadIds, threadStates } from ${srcUrl('src/backends/onnxruntime/starvation.ts')};`,
        `const b = await OnnxruntimeBackend.create(${JSON.stringify(CLS_MODEL)}, { instances: 1, threadsPerInstance: 1 });`,
        'const tid = (b as unknown as { workers: { tid: number }[] }).workers[0]!.tid;',
        'console.log(JSON.stringify({ policy: b.threadPolicy, nice: threadStates().get(tid)?.nice, found: backgroundThreadIds().includes(tid) }));',
        'await b.dispose();',
      ].join('\n'));
      const run = (n: number): { policy: string; nice: number; found: boolean } => {
        const r = spawnSync('nice', ['-n', String(n), process.execPath, '--import', 'tsx', file], { cwd: process.cwd(), encoding: 'utf8', timeout: 60_000 });
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout.trim().split('\n').pop()!) as { policy: string; nice: number; found: boolean };
      };
      expect(run(5)).toEqual({ policy: `nice 15${BACKGROUND_SLICE_WORDS}`, nice: 15, found: true });
      expect(run(12)).toEqual({ policy: `nice 19${BACKGROUND_SLICE_WORDS}`, nice: 19, found: true });
      expect(run(19)).toEqual({ policy: 'normal (the JS thread already runs at nice 19)', nice: 19, found: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A mount namespace of its own with /proc read-only (unshare, where this user may make one):
  // the worker cannot name its thread. A bind mount made read-only, as a plain remount would
  // make the proc filesystem itself read-only, this process's /proc too.
  const READ_ONLY_PROC = 'mount --bind /proc /proc && mount -o remount,bind,ro /proc';
  const procMountOptions = (): string | undefined => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === '/proc')?.split(' ')[5];
  const canUnshare = process.platform === 'linux' && spawnSync('unshare', ['-m', 'sh', '-c', READ_ONLY_PROC], { encoding: 'utf8' }).status === 0;
  it.runIf(canUnshare)('says so where a worker cannot name its thread: its session\'s intra-op threads keep the normal priority, the worker alone goes to background priority', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tnp-ro-proc-'));
    try {
      const file = join(dir, 'run.mts');
      writeFileSync(file, [
        `import { OnnxruntimeBackend } from ${srcUrl('src/backends/onnxruntime/index.ts')};`,
        `import { threadStates } from ${srcUrl('src/backends/onnxruntime/starvation.ts')};`,
        'const before = new Set(threadStates().keys());',
        'const warnings: string[] = [];',
        "process.on('warning', (w: Error & { code?: string }) => { if (w.code === 'EBACKEND') warnings.push(w.message); });",
        `const b = await OnnxruntimeBackend.create(${JSON.stringify(CLS_MODEL)}, { instances: 1, threadsPerInstance: 2 });`,
        'await new Promise((r) => setImmediate(r));',
        'const tid = (b as unknown as { workers: { tid: number }[] }).workers[0]!.tid;',
        'const added = [...threadStates()].filter(([t]) => !before.has(t)).map(([t, s]) => [t, s.nice]);',
        'console.log(JSON.stringify({ policy: b.threadPolicy, warnings, tid, added }));',
        'await b.dispose();',
      ].join('\n'));
      const r = spawnSync('unshare', ['-m', 'sh', '-c', `${READ_ONLY_PROC} && exec "$0" --import tsx "$1"`, process.execPath, file], { cwd: process.cwd(), encoding: 'utf8', timeout: 60_000 });
      // This process's /proc stays writable.
      expect(procMountOptions()).toMatch(/^rw\b/);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { policy: string; warnings: string[]; tid: number; added: [number, number][] };
      expect(out.policy).toBe(BACKGROUND_POLICY);
      expect(out.warnings.join('\n')).toMatch(/could not name its thread .*: they keep the normal priority, the worker alone runs at background priority/);
      const policy = new Map(out.added);
      expect(policy.get(out.tid)).toBe(BACKGROUND_NICE);
      // The session's intra-op thread, at least, among the new threads of normal policy.
      expect(out.added.filter(([t, p]) => t !== out.tid && p !== BACKGROUND_NICE).length).toBeGreaterThanOrEqual(1);
      expect(out.added.filter(([, p]) => p === BACKGROUND_NICE)).toEqual([[out.tid, BACKGROUND_NICE]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
