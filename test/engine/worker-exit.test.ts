/**
 * An ONNX Runtime worker whose thread ends while the engine serves: the batches it held run
 * again on another worker, every accepted request still gets its own result, and a new
 * worker takes its place, up to a limit. The workers are real threads, ended by a real
 * uncaught error: a message their handler cannot read. (Not Worker#terminate: ending a
 * thread inside onnxruntime-node's run() can abort the whole process, "terminate called
 * after throwing an instance of 'Napi::Error'", seen here once in six runs.)
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import { isTensorrtNodeError } from '../../src/errors.js';
import { CLS_ITEM, CLS_MODEL, clsInput, engineGraphSession, ort, referenceSession, sameBits, withWarnings } from './helpers.js';

const OUT = 'softmax_0.tmp_0';
const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

// Without spinning, every run reaches its worker by message, ahead of the message that ends
// the worker on the same port, so each case below meets a worker that dies with the batch
// it holds. A polling worker may take a run from its mailbox (mailbox.mjs) and finish it
// before that message arrives, and may find that message while it polls: those cases have
// tests of their own.
async function build(instances: number, spinning = false): Promise<Engine> {
  const e = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances, threadsPerInstance: 1, maxBatchSize: 4, shapes: { x: [-1, ...CLS_ITEM] }, spinning });
  engines.push(e);
  return e;
}

/** The backend's worker threads (private: reached into, to end one for real). */
function workers(e: Engine): { worker: Worker; dead: Error | undefined; pending: Map<number, unknown> }[] {
  return (e as unknown as { impl: { workers: { worker: Worker; dead: Error | undefined; pending: Map<number, unknown> }[] } }).impl.workers;
}

/** Ends the worker's thread with an uncaught TypeError, from its own message handler, between runs. */
function crash(w: { worker: Worker }): void {
  w.worker.postMessage(null);
}

/** Engine outputs against plain onnxruntime-node on the engine's graph, bit for bit, input by input. */
async function expectOwnResults(results: Record<string, { data: unknown }>[], seeds: number[]): Promise<void> {
  const reference = await engineGraphSession(CLS_MODEL);
  try {
    for (const [k, seed] of seeds.entries()) {
      const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[OUT]!.data as Float32Array;
      expect(sameBits(results[k]![OUT]!.data as Float32Array, want), `request ${k}`).toBe(true);
    }
  } finally {
    await reference.release();
  }
}

describe('a worker that exits', () => {
  it('runs its batches again on the other worker, gives every request its own result, and is replaced', async () => {
    const engine = await build(2);
    const seeds = Array.from({ length: 32 }, (_, k) => k + 1);
    const { value: results, warnings } = await withWarnings('EBACKEND', async () => {
      const all = Promise.all(seeds.map((s) => engine.infer(clsInput(s))));
      // Dispatched in a microtask: the first worker holds a batch now.
      await Promise.resolve();
      const [first] = workers(engine);
      expect(first!.pending.size).toBeGreaterThan(0);
      crash(first!);
      return all;
    });
    await expectOwnResults(results, seeds);
    expect(warnings.join('\n')).toMatch(/an onnxruntime worker exited \(code 1: Cannot read properties of null \(reading 'type'\)\); its batches run again and another worker starts/);
    await vi.waitFor(() => expect(engine.stats().instanceRestarts).toBe(1), { timeout: 20_000, interval: 20 });
    const stats = engine.stats();
    expect(stats.failed).toEqual({});
    expect(stats.succeeded).toBe(32);
    expect(stats.retriedBatches).toBeGreaterThanOrEqual(1);
    // Two live workers again, and the new one serves.
    expect(workers(engine).filter((w) => !w.dead)).toHaveLength(2);
    const more = [101, 102, 103, 104, 105, 106, 107, 108];
    const after = Promise.all(more.map((s) => engine.infer(clsInput(s))));
    await Promise.resolve();
    expect(workers(engine).every((w) => w.pending.size > 0)).toBe(true);
    await expectOwnResults(await after, more);
  });

  it('with a single worker, holds its requests until the replacement is ready', async () => {
    const engine = await build(1);
    const seeds = [11, 12, 13, 14, 15, 16];
    const { value: results } = await withWarnings('EBACKEND', async () => {
      const all = Promise.all(seeds.map((s) => engine.infer(clsInput(s))));
      await Promise.resolve();
      crash(workers(engine)[0]!);
      return all;
    });
    await expectOwnResults(results, seeds);
    expect(engine.stats().instanceRestarts).toBe(1);
    expect(engine.stats().failed).toEqual({});
  });

  it('stops starting workers that keep exiting, and fails what waits with EBACKEND, each request once', async () => {
    const engine = await build(1);
    const { warnings } = await withWarnings('EBACKEND', async () => {
      // Three exits are replaced; the fourth within a minute is not.
      // The message that ends the worker goes first: sent after the run, it raced the run on a
      // busy machine (a worker woken by the run before it came finished the run first).
      for (let exit = 1; exit <= 3; exit++) {
        crash(workers(engine)[0]!);
        const r = engine.infer(clsInput(exit));
        await expectOwnResults([await r], [exit]);
        // Counted once the replacement is ready, which may come after the result on a busy machine.
        await vi.waitFor(() => expect(engine.stats().instanceRestarts).toBe(exit), { timeout: 30_000, interval: 10 });
      }
      const settled: string[] = [];
      crash(workers(engine)[0]!);
      const last = Array.from({ length: 3 }, (_, k) => engine.infer(clsInput(50 + k)).then(
        () => settled.push('ok'),
        (e: unknown) => settled.push(isTensorrtNodeError(e, 'EBACKEND') ? e.message : `other: ${String(e)}`),
      ));
      await Promise.all(last);
      expect(settled).toHaveLength(3);
      for (const m of settled) expect(m).toMatch(/onnxruntime workers exited 4 times within 60 s \(last: code 1: Cannot read properties of null \(reading 'type'\)\); no more are started/);
      await expect(engine.infer(clsInput(60))).rejects.toMatchObject({ code: 'EBACKEND' });
    });
    expect(warnings.at(-1)).toMatch(/no more are started/);
    const stats = engine.stats();
    expect(stats.instanceRestarts).toBe(3);
    expect(stats.succeeded).toBe(3);
    expect(stats.failed).toEqual({ EBACKEND: 4 });
    expect(await engine.metrics()).toMatch(/nv_inference_request_failure\{[^}]*reason="BACKEND"[^}]*\} 4/);
  });

  it('gives the replacement the wide session the exited worker held', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 1 });
    try {
      await backend.addWide(2);
      const holder = (backend as unknown as { wide: { worker: { worker: Worker } } }).wide.worker;
      await withWarnings('EBACKEND', async () => {
        crash(holder);
        await vi.waitFor(() => expect(backend.restarts).toBe(1), { timeout: 20_000, interval: 20 });
        await vi.waitFor(() => expect(backend.wideThreads).toBe(2), { timeout: 20_000, interval: 20 });
      });
      const x = clsInput(7);
      const wide = await backend.runTimed({ x: { data: x.slice(), dims: [1, ...CLS_ITEM] } }, { wide: true });
      expect(wide.wide).toBe(true);
      // The backend runs the model as given: onnxruntime-node's bits on it.
      const reference = await referenceSession(CLS_MODEL);
      const want = (await reference.run({ x: new ort.Tensor('float32', x, [1, ...CLS_ITEM]) }))[OUT]!.data as Float32Array;
      await reference.release();
      expect(sameBits(wide.outputs[OUT]!.data as Float32Array, want)).toBe(true);
    } finally {
      await backend.dispose();
    }
  });

  it('while it polls: a run it took from its mailbox still gets its own result, once, and the worker is replaced', async () => {
    const engine = await build(1, true);
    const mailboxRuns = (): number => engine.stats().backendCounters?.mailboxRuns ?? 0;
    await engine.infer(clsInput(1)); // by message, bringing the mailbox; the worker polls after it
    const { value: results } = await withWarnings('EBACKEND', async () => {
      // Back to back until a request finds the worker polling (it polls 1 ms after each
      // result; a busy machine may hold this thread longer), then end the worker at once.
      const seeds: number[] = [];
      const done: Record<string, { data: unknown }>[] = [];
      // Inputs made first, so that nothing but the engine sits between a result and the next run.
      const inputs = Array.from({ length: 200 }, (_, k) => clsInput(k + 2));
      let crashed = false;
      for (const [k, x] of inputs.entries()) {
        const before = mailboxRuns();
        const r = engine.infer(x);
        await Promise.resolve(); // dispatched in a microtask: the run is out now
        seeds.push(k + 2);
        if (mailboxRuns() > before) {
          crash(workers(engine)[0]!); // the run may finish first, or run again on the replacement
          crashed = true;
          done.push(await r);
          break;
        }
        done.push(await r);
      }
      // (In session 13's CI the wait for a restart below timed out: the worker, polling when
      // the ending message came, dropped it, as the next test shows; fixed in the worker.)
      expect(crashed, 'no request found the worker polling').toBe(true);
      await vi.waitFor(() => expect(engine.stats().instanceRestarts).toBe(1), { timeout: 20_000, interval: 20 });
      seeds.push(100);
      done.push(await engine.infer(clsInput(100)));
      return { seeds, done };
    });
    await expectOwnResults(results.done, results.seeds);
    const stats = engine.stats();
    expect(stats.succeeded).toBe(results.seeds.length + 1);
    expect(stats.failed).toEqual({});
  });

  it('while it polls: a message it cannot read ends it, as from its event loop', async () => {
    const engine = await build(1, true);
    await withWarnings('EBACKEND', async () => {
      // Right after a result the worker polls its port for 1 ms (mailbox.mjs); a message
      // found there went to the handler only where truthy, so this one was dropped and the
      // worker lived on (pipeline.test.ts's exit case then found no exit, in CI).
      await engine.infer(clsInput(1));
      const w = workers(engine)[0]!;
      const exited = new Promise<boolean>((r) => {
        w.worker.once('exit', () => r(true));
        setTimeout(() => r(false), 10_000).unref();
      });
      crash(w);
      expect(await exited).toBe(true);
      await vi.waitFor(() => expect(engine.stats().instanceRestarts).toBe(1), { timeout: 20_000, interval: 20 });
    });
    await expectOwnResults([await engine.infer(clsInput(2))], [2]);
  });

  it('while the engine is disposed: dispose waits for the replacement and ends it', async () => {
    const engine = await build(1);
    const r = engine.infer(clsInput(1)).then(() => 'ok', (e: unknown) => (e as { code?: string }).code);
    await Promise.resolve();
    const { warnings } = await withWarnings('EBACKEND', async () => {
      const w = workers(engine)[0]!;
      crash(w);
      await new Promise((r) => w.worker.once('exit', r));
      await engine.dispose();
    });
    expect(warnings).toHaveLength(1);
    // Its batch failed with the worker and met the disposing engine (EDISPOSED, as a rule); but
    // it may have been requeued and sent on to the starting replacement before dispose(), which
    // then waits for it ('ok': seen once in CI, Node 26). Either way it settles once, and no
    // worker is left.
    expect(['EDISPOSED', 'ok']).toContain(await r);
    expect(workers(engine).every((w) => w.dead)).toBe(true);
  });
});
