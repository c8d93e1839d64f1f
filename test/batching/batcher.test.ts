/**
 * The dynamic batcher driven through a real engine (PaddleOCR classifier on
 * onnxruntime in a worker): queue limits, timeouts, aborts, dispose, priorities,
 * and many callers at once. Ordering is forced by the queue (one instance, full
 * batches ahead), never by timing assumptions about the model's speed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/options.js';
import { CLS_ITEM, CLS_MODEL, clsInput, ort, engineGraphSession, sameBits } from '../engine/helpers.js';

const engines: Engine[] = [];
async function build(options: EngineOptions = {}): Promise<Engine> {
  const e = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] }, ...options });
  engines.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

/** Settles to { ok, code } without throwing, counting settlements. */
function track(p: Promise<unknown>): Promise<{ ok: boolean; code?: string; value?: unknown }> {
  return p.then((value) => ({ ok: true, value }), (e: { code?: string }) => ({ ok: false, code: e.code ?? 'NONE' }));
}

describe('dynamic batcher', () => {
  it('refuses at once with EQUEUEFULL when maxQueueSize requests wait', async () => {
    const engine = await build({ maxQueueSize: 2 });
    const a = track(engine.infer(clsInput(1)));
    const b = track(engine.infer(clsInput(2)));
    // Both still queued (dispatch happens on the next turn of the loop): the third is refused.
    await expect(engine.infer(clsInput(3))).rejects.toMatchObject({ code: 'EQUEUEFULL' });
    expect((await a).ok && (await b).ok).toBe(true);
    expect(engine.stats().failed.EQUEUEFULL).toBe(1);
    expect(await engine.metrics()).toMatch(/nv_inference_request_failure\{[^}]*reason="REJECTED"\} 1/);
  });

  it('times out a request still queued behind full batches with ETIMEOUT', async () => {
    const engine = await build({ maxBatchSize: 8 });
    const big = [track(engine.infer(clsInput(1, 8))), track(engine.infer(clsInput(2, 8)))];
    const late = engine.infer(clsInput(3), { timeoutMs: 1 });
    await expect(late).rejects.toMatchObject({ code: 'ETIMEOUT' });
    for (const r of await Promise.all(big)) expect(r.ok).toBe(true);
    expect(engine.stats().failed.ETIMEOUT).toBe(1);
  });

  it('applies defaultTimeoutMs to requests that give none', async () => {
    const engine = await build({ maxBatchSize: 8, defaultTimeoutMs: 1 });
    const results = await Promise.all([track(engine.infer(clsInput(1, 8))), track(engine.infer(clsInput(2, 8))), track(engine.infer(clsInput(3, 8)))]);
    expect(results.some((r) => r.code === 'ETIMEOUT')).toBe(true);
  });

  it('drops an aborted request from its batch before it starts (EABORTED)', async () => {
    const engine = await build({ maxBatchSize: 8 });
    const first = track(engine.infer(clsInput(1, 8)));
    const ac = new AbortController();
    const aborted = engine.infer(clsInput(2, 4), { signal: ac.signal });
    const kept = track(engine.infer(clsInput(3, 2)));
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'EABORTED' });
    expect((await first).ok && (await kept).ok).toBe(true);
    const s = engine.stats();
    // 8 + 2 rows ran; the aborted request's 4 never did.
    expect(s.inferences).toBe(10);
    expect(s.failed.EABORTED).toBe(1);
    // An already-aborted signal is refused at submission.
    await expect(engine.infer(clsInput(4), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'EABORTED' });
  });

  it("a timeout or queue delay past Node's longest timer (Infinity too) sets none, rather than firing after 1 ms", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => { warnings.push(w.name); };
    process.on('warning', onWarning);
    try {
      const engine = await build({ maxBatchSize: 4, defaultTimeoutMs: 2 ** 31 });
      // Behind two full batches, so that a 1 ms timer would fire while they wait.
      const ahead = [track(engine.infer(clsInput(1, 4))), track(engine.infer(clsInput(2, 4)))];
      const results = await Promise.all([...ahead, track(engine.infer(clsInput(3), { timeoutMs: Infinity })), track(engine.infer(clsInput(4)))]);
      expect(results.map((r) => r.code ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok']);

      // maxQueueDelayMs: Infinity waits until a batch fills.
      const waiting = await build({ maxBatchSize: 4, maxQueueDelayMs: Infinity });
      const first = track(waiting.infer(clsInput(5)));
      await new Promise((r) => setTimeout(r, 50));
      expect(waiting.stats().batches).toBe(0);
      const rest = [6, 7, 8].map((k) => track(waiting.infer(clsInput(k))));
      for (const r of await Promise.all([first, ...rest])) expect(r.ok).toBe(true);
      expect(waiting.stats()).toMatchObject({ batches: 1, meanBatchSize: 4 });
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  });

  it('a signal that is not an AbortSignal is EINPUT, and nothing is queued', async () => {
    const engine = await build();
    const bad = { aborted: false } as unknown as AbortSignal;
    await expect(engine.infer(clsInput(1), { signal: bad })).rejects.toMatchObject({ code: 'EINPUT', details: { tensor: 'signal', expected: 'an AbortSignal' } });
    expect(engine.stats()).toMatchObject({ pending: 0 });
    expect((await track(engine.infer(clsInput(2)))).ok).toBe(true);
  });

  it('dispose() rejects queued requests with EDISPOSED and lets running ones finish', async () => {
    const engine = await build({ maxBatchSize: 8 });
    const reqs = [1, 2, 3, 4].map((s) => track(engine.infer(clsInput(s, 8))));
    // Let the first batch start, then dispose with the rest still queued.
    await new Promise((r) => setImmediate(r));
    await engine.dispose();
    const results = await Promise.all(reqs);
    expect(results[0]!.ok).toBe(true);
    expect(results.slice(1).every((r) => r.code === 'EDISPOSED')).toBe(true);
    await expect(engine.infer(clsInput(5))).rejects.toMatchObject({ code: 'EDISPOSED' });
    expect(() => engine.allocate()).toThrow(expect.objectContaining({ code: 'EDISPOSED' }));
  });

  it('dispose({ drainTimeoutMs }) runs every accepted request first (a batch waiting to fill goes at once), refusing new ones', async () => {
    // Batches of 4 that wait for ever to fill: without the drain, the last two requests would
    // wait until disposed (EDISPOSED) or for ever.
    const engine = await build({ maxBatchSize: 4, maxQueueDelayMs: Infinity });
    const reference = await engineGraphSession(CLS_MODEL);
    const inputs = Array.from({ length: 10 }, (_, i) => clsInput(300 + i));
    const reqs = inputs.map((x) => track(engine.infer(x)));
    const disposed = engine.dispose({ drainTimeoutMs: Infinity });
    await expect(engine.infer(clsInput(1))).rejects.toMatchObject({ code: 'EDISPOSED', message: expect.stringMatching(/being disposed/) });
    expect(() => engine.allocate()).toThrow(expect.objectContaining({ code: 'EDISPOSED' }));
    // Called again with the same drain, it returns the same promise (a plain dispose() would end the drain).
    expect(engine.dispose({ drainTimeoutMs: Infinity })).toBe(disposed);
    await disposed;
    const results = await Promise.all(reqs);
    for (const [i, r] of results.entries()) {
      expect(r.ok).toBe(true);
      const out = (r.value as Record<string, { data: Float32Array }>)['softmax_0.tmp_0']!.data;
      const want = await reference.run({ x: new ort.Tensor('float32', inputs[i]!, [1, ...CLS_ITEM]) });
      expect(sameBits(out, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
    await reference.release();
    const s = engine.stats();
    expect(s.succeeded).toBe(10);
    expect(s.failed.EDISPOSED).toBe(1);
    expect(s.pending).toBe(0);
    await expect(engine.infer(clsInput(2))).rejects.toMatchObject({ code: 'EDISPOSED', message: 'the engine is disposed' });
  });

  it('a drain that runs out of time, or that a later dispose() ends, rejects what still waits with EDISPOSED, each request once', async () => {
    for (const end of ['timeout', 'later dispose'] as const) {
      // 200 requests of 4 rows each: 800 rows in batches of 8, far more than 1 ms of work.
      const engine = await build({ maxBatchSize: 8 });
      const messages: string[] = [];
      const reqs = Array.from({ length: 200 }, (_, i) => engine.infer(clsInput(400 + i, 4)).then(
        () => true,
        (e: { code?: string; message: string }) => {
          expect(e.code).toBe('EDISPOSED');
          messages.push(e.message);
          return false;
        },
      ));
      let disposed: Promise<void>;
      if (end === 'timeout') {
        disposed = engine.dispose({ drainTimeoutMs: 1 });
      } else {
        disposed = engine.dispose({ drainTimeoutMs: Infinity });
        expect(await reqs[0]).toBe(true);
        expect(engine.dispose()).toBe(disposed);
      }
      await disposed;
      const ok = (await Promise.all(reqs)).filter(Boolean).length;
      expect(ok).toBeGreaterThan(0);
      expect(messages.length).toBeGreaterThan(0);
      expect(ok + messages.length).toBe(200);
      const why = end === 'timeout' ? "(the drain's 1 ms ran out)" : '(a later dispose() ended the drain)';
      for (const m of messages) expect(m).toBe(`the engine was disposed while the request was queued ${why}`);
      const s = engine.stats();
      expect(s.succeeded).toBe(ok);
      expect(s.failed.EDISPOSED).toBe(messages.length);
      expect(s.pending).toBe(0);
    }
  });

  it('dispose() refuses options it does not know, and a drainTimeoutMs that is not a number ≥ 0', async () => {
    const engine = await build();
    await expect(engine.dispose({ drainTimeoutMS: 5 } as never)).rejects.toMatchObject({ code: 'EINPUT', message: expect.stringMatching(/did you mean 'drainTimeoutMs'/) });
    await expect(engine.dispose({ drainTimeoutMs: -1 })).rejects.toMatchObject({ code: 'EINPUT', details: expect.objectContaining({ tensor: 'drainTimeoutMs', received: '-1' }) });
    await expect(engine.dispose({ drainTimeoutMs: Number.NaN })).rejects.toMatchObject({ code: 'EINPUT' });
    await expect(engine.dispose('now' as never)).rejects.toMatchObject({ code: 'EINPUT' });
    // None of these disposed it.
    expect((await track(engine.infer(clsInput(1)))).ok).toBe(true);
  });

  it('serves a higher priority first', async () => {
    const engine = await build({ maxBatchSize: 4, priorityLevels: 2 });
    const order: string[] = [];
    const note = (name: string, p: Promise<unknown>) => p.then(() => order.push(name));
    const done = Promise.all([
      note('low-a', engine.infer(clsInput(1, 4), { priority: 2 })),
      note('low-b', engine.infer(clsInput(2, 4), { priority: 2 })),
      note('high', engine.infer(clsInput(3, 4), { priority: 1 })),
    ]);
    await done;
    expect(order[0]).toBe('high');
    await expect(engine.infer(clsInput(1), { priority: 3 })).rejects.toMatchObject({ code: 'EINPUT' });
  });

  it('dispatches at a preferred batch size and waits up to maxQueueDelayMs otherwise', async () => {
    const engine = await build({ maxBatchSize: 16, preferredBatchSizes: [4], maxQueueDelayMs: 50 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => engine.infer(clsInput(i))));
    const s = engine.stats();
    expect(s.batches).toBe(2);
    expect(s.meanBatchSize).toBe(4);
    // A lone request goes out once the delay expires.
    await engine.infer(clsInput(99));
    expect(engine.stats().batches).toBe(3);
  });

  it('splits a ready group evenly over idle instances, and keeps it whole with one instance', async () => {
    const reference = await engineGraphSession(CLS_MODEL);
    const inputs = Array.from({ length: 6 }, (_, i) => clsInput(40 + i));
    for (const [instances, batches] of [[2, 2], [1, 1]] as const) {
      const engine = await build({ instances, maxBatchSize: 16 });
      // Submitted in one synchronous block: one group of 6 rows.
      const outs = await Promise.all(inputs.map((x) => engine.infer(x)));
      const s = engine.stats();
      expect(s.batches).toBe(batches);
      expect(s.meanBatchSize).toBe(6 / batches);
      for (const [i, x] of inputs.entries()) {
        const want = await reference.run({ x: new ort.Tensor('float32', x, [1, ...CLS_ITEM]) });
        expect(sameBits(outs[i]!['softmax_0.tmp_0']!.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
      }
    }
    // Preferred sizes fix the batch sizes: no split.
    const preferred = await build({ instances: 2, maxBatchSize: 16, preferredBatchSizes: [6] });
    await Promise.all(inputs.map((x) => preferred.infer(x)));
    expect(preferred.stats().batches).toBe(1);
    await reference.release();
  });

  it('opens a burst on an idle engine with the oldest request alone, then full batches', async () => {
    const reference = await engineGraphSession(CLS_MODEL);
    const engine = await build({ maxBatchSize: 4 });
    const inputs = Array.from({ length: 9 }, (_, i) => clsInput(60 + i));
    // 9 rows at once on 1 instance of 4: more than a full round waits.
    const outs = await Promise.all(inputs.map((x) => engine.infer(x)));
    // A request's result is a view of its batch's output: one buffer per batch.
    const batchOf = outs.map((o) => o['softmax_0.tmp_0']!.data.buffer);
    const groups = [...new Set(batchOf)].map((b) => batchOf.flatMap((x, i) => (x === b ? [i] : [])));
    expect(groups).toEqual([[0], [1, 2, 3, 4], [5, 6, 7, 8]]);
    for (const [i, x] of inputs.entries()) {
      const want = await reference.run({ x: new ort.Tensor('float32', x, [1, ...CLS_ITEM]) });
      expect(sameBits(outs[i]!['softmax_0.tmp_0']!.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
    // A full round or less is not a burst: 4 rows run as one batch.
    const four = await Promise.all(inputs.slice(0, 4).map((x) => engine.infer(x)));
    expect(new Set(four.map((o) => o['softmax_0.tmp_0']!.data.buffer)).size).toBe(1);
    await reference.release();
  });

  it('runs a request with more rows than maxBatchSize split by rows, over idle instances, equal to onnxruntime-node', async () => {
    const reference = await engineGraphSession(CLS_MODEL);
    const engine = await build({ instances: 2, maxBatchSize: 4 });
    const big = clsInput(70, 11);
    const small = clsInput(71, 2);
    const [a, b] = await Promise.all([engine.infer(big), engine.infer(small)]);
    expect(a['softmax_0.tmp_0']!.dims).toEqual([11, 2]);
    expect(b['softmax_0.tmp_0']!.dims).toEqual([2, 2]);
    for (const [x, out, n] of [[big, a, 11], [small, b, 2]] as const) {
      const want = await reference.run({ x: new ort.Tensor('float32', x, [n, ...CLS_ITEM]) });
      expect(sameBits(out['softmax_0.tmp_0']!.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
    expect(engine.stats().batches).toBeGreaterThanOrEqual(4); // 13 rows, at most 4 a batch
    // Into caller memory: the joined rows land in the destination.
    const dest = engine.allocateOutputs(11);
    const into = await engine.infer(big, { outputs: dest });
    expect(into['softmax_0.tmp_0']!.data.buffer).toBe(dest['softmax_0.tmp_0']!.data.buffer);
    expect(sameBits(into['softmax_0.tmp_0']!.data as Float32Array, a['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    // A lone request of a full batch on two idle instances runs as two halves.
    const before = engine.stats().batches;
    const eight = await engine.infer(clsInput(72, 4));
    expect(engine.stats().batches - before).toBe(2);
    const want = await reference.run({ x: new ort.Tensor('float32', clsInput(72, 4), [4, ...CLS_ITEM]) });
    expect(sameBits(eight['softmax_0.tmp_0']!.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    await reference.release();
  });

  it('splits only its own group: a group of another shape takes the next idle instance whole', async () => {
    const engine = await build({ instances: 2, maxBatchSize: 16, shapes: {} });
    const line = (w: number, seed: number) => ({ x: { data: clsInput(seed).subarray(0, 3 * 48 * w), dims: [1, 3, 48, w] } });
    // One 192-wide line, then three 96-wide ones, together: two groups, two idle workers.
    const outs = await Promise.all([line(192, 1), line(96, 2), line(96, 3), line(96, 4)].map((x) => engine.infer(x)));
    expect(outs).toHaveLength(4);
    expect(engine.stats().batches).toBe(2);
  });

  it('settles every request exactly once under many concurrent callers, with correct rows', async () => {
    const engine = await build({ instances: 2, maxBatchSize: 16, maxQueueSize: 40 });
    const reference = await engineGraphSession(CLS_MODEL);
    type Outcome = { ok: boolean; code?: string };
    const outcomes: Outcome[] = [];
    const results: { x: Float32Array; out: Float32Array }[] = [];
    // Eight async contexts, each firing 12 requests with jitter; every fifth aborts, every seventh
    // times out; two of each context's have more rows than a batch takes (one of them aborted).
    const callers = Array.from({ length: 8 }, async (_, c) => {
      const mine: Promise<void>[] = [];
      for (let k = 0; k < 12; k++) {
        const x = clsInput(c * 100 + k, k % 6 === 3 ? 21 : 1 + (k % 2));
        const ac = new AbortController();
        const opts = k % 5 === 4 ? { signal: ac.signal } : k % 7 === 6 ? { timeoutMs: 1 } : {};
        mine.push(engine.infer(x, opts).then(
          (r) => {
            outcomes.push({ ok: true });
            results.push({ x, out: r['softmax_0.tmp_0']!.data as Float32Array });
          },
          (e: { code?: string }) => {
            outcomes.push({ ok: false, code: e.code });
          },
        ));
        if (k % 5 === 4) queueMicrotask(() => ac.abort());
        if (k % 3 === 0) await new Promise((r) => setImmediate(r));
        if (k % 4 === 0) await mine[mine.length - 1];
      }
      await Promise.all(mine);
    });
    await Promise.all(callers);
    expect(outcomes.length).toBe(96);
    for (const o of outcomes) if (!o.ok) expect(['EQUEUEFULL', 'ETIMEOUT', 'EABORTED']).toContain(o.code);
    expect(outcomes.filter((o) => o.code === 'EABORTED').length).toBeGreaterThan(0);
    for (const { x, out } of results) {
      const n = x.length / (3 * 48 * 192);
      const want = await reference.run({ x: new ort.Tensor('float32', x, [n, ...CLS_ITEM]) });
      expect(sameBits(out, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
    await reference.release();
    const s = engine.stats();
    const failed = Object.values(s.failed).reduce((a, b) => a + (b ?? 0), 0);
    // Each request counted once: as a success or as one failure, never both, never twice.
    expect(s.succeeded).toBe(results.length);
    expect(s.succeeded + failed).toBe(96);
    expect(s.pending).toBe(0);
    expect(s.batches).toBeLessThan(s.succeeded);
  });
});
