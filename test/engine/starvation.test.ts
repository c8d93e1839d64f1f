/**
 * Workers at background priority starved by other busy processes: the engine replaces them by
 * workers of normal priority, says so, and loses no request; once the busy processes are
 * gone it goes back to background priority the same way. Real busy processes (a shell loop per core,
 * three per core beside a build) beside a real engine; the
 * threads' policies read back from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { backgroundThreadIds } from '../../src/backends/onnxruntime/starvation.js';
import { BACKGROUND_NICE, BACKGROUND_POLICY, CLS_ITEM, CLS_MODEL, clsInput, engineGraphSession, ort, sameBits, threadNices, threadsNamed, withWarnings } from './helpers.js';
import { QUIET_WINDOWS, STARVED_WINDOWS, WINDOW_MS } from '../../src/backends/onnxruntime/policy-watch.js';

/** What threadPolicy reads once starved workers were replaced. */
const STARVED_POLICY = new RegExp(`^normal \\(starved at background priority: over ${STARVED_WINDOWS} windows of ${WINDOW_MS} ms the workers ran \\d+\\.\\d % of the time they were ready to\\)$`);

const OUT = 'softmax_0.tmp_0';

/** The engine's worker threads' Linux ids (private: reached into, as test/engine/worker-exit.test.ts does). */
function workerTids(e: Engine): number[] {
  return (e as unknown as { impl: { workers: { tid: number }[] } }).impl.workers.map((w) => w.tid);
}

/** The ids of the workers the backend holds parked (replaced because they starved, idle until the machine is quiet). */
function parkedTids(e: Engine): number[] {
  return [...(e as unknown as { impl: { parked: Set<{ tid: number }> } }).impl.parked].map((w) => w.tid);
}

/** The scheduling policies of these threads of this process. */
const policiesOf = (tids: number[]): (number | undefined)[] => {
  const all = threadNices();
  return tids.map((t) => all.get(t));
};

/** `perCore` shell loops per core, busy at normal priority. */
const busyProcesses = (perCore = 1): ChildProcess[] => Array.from({ length: perCore * availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));

/**
 * Busy loops a core beside the second test's build: what starved every creation of a 1 × 2
 * session made under SCHED_IDLE, as sessions were until session 19 (0 of 6 made within the
 * watch's 3 s; scratch .exp/createstarve.mts).
 */
const BUSY_BESIDE_BUILD = 3;

/** Each process's CPU time so far, in clock ticks (/proc/<pid>/stat utime + stime). */
function cpuTicks(procs: ChildProcess[]): number[] {
  return procs.map((p) => {
    try {
      const fields = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  });
}

/** Waits until every busy process has run 50 ms (5 s at most): the premise of a test that they starve the workers. */
async function spinning(procs: ChildProcess[]): Promise<void> {
  const until = performance.now() + 5000;
  while (cpuTicks(procs).some((t) => t < 5) && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(cpuTicks(procs).every((t) => t >= 5), `the busy processes' CPU ticks: ${cpuTicks(procs).join(', ')}`).toBe(true);
}

/** Whether every thread of `tids` has ended within 30 s. */
async function threadsEnd(tids: number[]): Promise<boolean> {
  const gone = (): boolean => tids.every((tid) => !existsSync(`/proc/self/task/${tid}`));
  const until = performance.now() + 30_000;
  while (!gone() && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  return gone();
}

describe('workers starved at background priority', () => {
  it.runIf(process.platform === 'linux')('are replaced by workers of normal priority, then at background priority again once the machine is quiet, and every request gets its own result', async () => {
    const engine = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1, maxBatchSize: 4, shapes: { x: [-1, ...CLS_ITEM] } });
    const hogs: ChildProcess[] = [];
    const seeds: number[] = [];
    const results: Float32Array[] = [];
    try {
      expect(engine.backend.threadPolicy).toBe(BACKGROUND_POLICY);
      const oldWorkers = workerTids(engine);
      const idleAtStart = backgroundThreadIds();
      for (const tid of oldWorkers) expect(idleAtStart).toContain(tid);
      hogs.push(...busyProcesses());
      /**
       * Eight callers in a closed loop until 16 requests have settled after the policy read
       * `changed`, or 60 s; each result kept for the check below, seeds from `first`.
       */
      const serveUntil = async (changed: (policy: string | undefined) => boolean, first: number, pauseMs: number): Promise<number> => {
        const deadline = performance.now() + 60_000;
        let next = first;
        let after = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (after < 16 && performance.now() < deadline) {
              const seed = next++;
              const r = await engine.infer(clsInput(seed));
              seeds.push(seed);
              results.push(r[OUT]!.data as Float32Array);
              if (changed(engine.backend.threadPolicy)) after++;
              if (pauseMs) await new Promise((done) => setTimeout(done, pauseMs));
            }
          }),
        );
        return after;
      };
      // Until the engine leaves background priority (within ~1.5 s here), then a round more on the new
      // workers, the busy processes still running.
      let after = 0;
      const { warnings } = await withWarnings('EBACKEND', async () => {
        after = await serveUntil((policy) => policy !== BACKGROUND_POLICY, 1, 0);
      });
      expect(engine.backend.threadPolicy).toMatch(STARVED_POLICY);
      expect(warnings.join('\n')).toMatch(/the onnxruntime workers were starved at background priority: .*; new workers of normal priority take their place/);
      expect(after).toBeGreaterThanOrEqual(16);
      // The new workers, and any thread they made, have the normal policy. The old ones wait,
      // parked and idle, until the machine is quiet: a niced thread that ends beside busy
      // processes holds a port mutex the JS thread takes (docs/engine.md).
      // The policy reads so from the warning on; the new workers take over once started.
      await vi.waitFor(() => expect(workerTids(engine).filter((tid) => oldWorkers.includes(tid))).toEqual([]), { timeout: 30_000, interval: 20 });
      const newWorkers = workerTids(engine);
      expect(newWorkers).toHaveLength(2);
      for (const tid of backgroundThreadIds()) expect(idleAtStart).toContain(tid);
      for (const tid of oldWorkers) expect(existsSync(`/proc/self/task/${tid}`), `parked worker ${tid}`).toBe(true);
      // Once they have answered what they held, they are parked, not ended.
      await vi.waitFor(() => expect(parkedTids(engine).sort()).toEqual([...oldWorkers].sort()), { timeout: 30_000, interval: 20 });
      for (const tid of oldWorkers) expect(existsSync(`/proc/self/task/${tid}`), `parked worker ${tid}`).toBe(true);
      for (const h of hogs) h.kill('SIGKILL');

      // The busy processes gone, the engine goes back to background priority after 10 quiet windows
      // of 0.5 s (~6 s here), serving all along: 8 callers until then, and a round more after,
      // each pausing 20 ms between requests (every result is checked below).
      let back = 0;
      const { warnings: returned } = await withWarnings('EBACKEND', async () => {
        back = await serveUntil((policy) => policy === BACKGROUND_POLICY, 10_000, 20);
      });
      expect(engine.backend.threadPolicy).toBe(BACKGROUND_POLICY);
      expect(returned.join('\n')).toMatch(`other processes used under 25 % of the cores over ${QUIET_WINDOWS} windows of ${WINDOW_MS} ms; new onnxruntime workers at background priority take the place of those of normal priority`);
      expect(back).toBeGreaterThanOrEqual(16);
      // The parked workers ended once the machine was quiet, and the workers of normal priority
      // once their runs settled; the new ones are at background priority.
      expect(parkedTids(engine)).toEqual([]);
      expect(await threadsEnd(oldWorkers)).toBe(true);
      expect(await threadsEnd(newWorkers)).toBe(true);
      // Left at background priority besides them: only threads there from the start that outlive
      // the workers (onnxruntime's first session makes a thread that lasts the process; it waits idle).
      const idleAgain = workerTids(engine);
      expect(idleAgain).toHaveLength(2);
      const idleNow = backgroundThreadIds();
      for (const tid of idleAgain) {
        expect(newWorkers).not.toContain(tid);
        expect(idleNow).toContain(tid);
      }
      const sessionThreads = new Set(idleAgain.flatMap((tid) => threadsNamed(`trtn-${tid}`)));
      for (const tid of idleNow) if (!sessionThreads.has(tid)) expect(idleAtStart).toContain(tid);
      const stats = engine.stats();
      expect(stats.failed).toEqual({});
      expect(stats.succeeded).toBe(seeds.length);
      expect(stats.instanceRestarts).toBe(0);
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
      await engine.dispose();
    }
    // Every result is onnxruntime-node's on the engine's graph, bit for bit (checked once the busy processes are gone).
    const reference = await engineGraphSession(CLS_MODEL);
    try {
      for (const [k, seed] of seeds.entries()) {
        const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[OUT]!.data as Float32Array;
        expect(sameBits(results[k]!, want), `request ${seed}`).toBe(true);
      }
    } finally {
      await reference.release();
    }
  });

  it.runIf(process.platform === 'linux')('makes sessions of several threads at normal priority beside busy processes, then puts them at background priority with their intra-op threads, and those threads leave it and come back with their workers', async () => {
    // Made under SCHED_IDLE (until session 19), such a session's creation starved here, and
    // held onnxruntime's process-wide lock while it did (docs/engine.md).
    const hogs = busyProcesses(BUSY_BESIDE_BUILD);
    let engine: Engine | undefined;
    try {
      await spinning(hogs);
      // maxBatchSize 1: the build runs no request of its own (with 2 or more, the batch axis
      // check runs rows at background priority beside these busy processes, and the workers
      // could starve and be replaced before the test looks: CI, at 260ad11). The callers
      // below run one request at a time, so nothing merges anyway.
      const { value, warnings } = await withWarnings('EBACKEND', () =>
        Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 2, maxBatchSize: 1, shapes: { x: [-1, ...CLS_ITEM] } }));
      engine = value;
      expect(engine.batching.reason).toMatch(/^maxBatchSize is 1/);
      expect(warnings).toEqual([]);
      expect(engine.backend.threadPolicy, `the busy processes' CPU ticks: ${cpuTicks(hogs).join(', ')}`).toBe(BACKGROUND_POLICY);
      const [tid] = workerTids(engine);
      // The worker's thread and the intra-op thread its session made, found by the name it
      // gave itself, both at background priority.
      const sessionThreads = threadsNamed(`trtn-${tid}`);
      expect(sessionThreads).toContain(tid);
      expect(sessionThreads.length).toBeGreaterThanOrEqual(2);
      expect(policiesOf(sessionThreads)).toEqual(sessionThreads.map(() => BACKGROUND_NICE));

      const reference = await engineGraphSession(CLS_MODEL);
      /** Serves requests, checking each one's bits, until `done` or 60 s. */
      const serveUntil = async (done: () => boolean): Promise<void> => {
        const deadline = performance.now() + 60_000;
        let seed = 0;
        while (!done() && performance.now() < deadline) {
          const got = (await engine!.infer(clsInput(++seed)))[OUT]!.data as Float32Array;
          const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[OUT]!.data as Float32Array;
          expect(sameBits(got, want), `request ${seed}`).toBe(true);
        }
      };
      try {
        // Serving beside the busy processes: starved, the workers are replaced by workers of
        // normal priority, whose intra-op threads are of normal priority too.
        await serveUntil(() => engine!.backend.threadPolicy !== BACKGROUND_POLICY);
        expect(engine.backend.threadPolicy).toMatch(STARVED_POLICY);
        // The policy reads so from the warning on; the new worker takes over once started.
        await vi.waitFor(() => expect(workerTids(engine!)[0]).not.toBe(tid), { timeout: 30_000, interval: 20 });
        const [normalTid] = workerTids(engine);
        const normalThreads = threadsNamed(`trtn-${normalTid}`);
        expect(normalThreads.length).toBeGreaterThanOrEqual(2);
        expect(policiesOf(normalThreads).every((p) => p !== BACKGROUND_NICE)).toBe(true);
        // The busy processes gone: back at background priority after 5 s of quiet windows, the new
        // worker's intra-op threads with it.
        for (const h of hogs.splice(0)) h.kill('SIGKILL');
        await serveUntil(() => engine!.backend.threadPolicy === BACKGROUND_POLICY);
      } finally {
        await reference.release();
      }
      expect(engine.backend.threadPolicy).toBe(BACKGROUND_POLICY);
      const [idleTid] = workerTids(engine);
      const idleThreads = threadsNamed(`trtn-${idleTid}`);
      expect(idleThreads.length).toBeGreaterThanOrEqual(2);
      expect(policiesOf(idleThreads)).toEqual(idleThreads.map(() => BACKGROUND_NICE));
      expect(engine.stats().failed).toEqual({});
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
      await engine?.dispose();
    }
  });
});
