import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { checkBatchAxis, chooseBatchSize, parseAxisCheck, parseProbe, probeBatchSize, probeItemDims, probeSizes } from '../../src/engine/batch-probe.js';
import type { Feeds } from '../../src/tensor.js';
import { CLS_ITEM, CLS_MODEL, REC_MODEL, clsInput, ort, engineGraphSession, quietBuild, sameBits, withWarnings } from './helpers.js';

describe('batch probe: the choice', () => {
  it('probes 1, 2, 4, ... up to the cap, the cap last', () => {
    expect(probeSizes(8)).toEqual([1, 2, 4, 8]);
    expect(probeSizes(6)).toEqual([1, 2, 4, 6]);
    expect(probeSizes(1)).toEqual([1]);
  });

  it('takes the largest size within 5 % of the best time per row', () => {
    // Shapes of curves measured here (docs/engine.md): the classifier gains to 8 rows...
    expect(chooseBatchSize({ 1: 2.24, 2: 1.94, 4: 1.65, 8: 1.57 })).toBe(8);
    // ... the recognizer at 48 × 320 is flat to 2 rows, then slower ...
    expect(chooseBatchSize({ 1: 36.58, 2: 36.4, 4: 39.12 })).toBe(2);
    // ... the detector at 320 × 320 is slower from 2 rows.
    expect(chooseBatchSize({ 1: 33.19, 2: 38.3 })).toBe(1);
    // A flat curve keeps the larger batch (fewer runs, fewer thread hops).
    expect(chooseBatchSize({ 1: 1.0, 2: 1.04, 4: 1.03 })).toBe(4);
    expect(() => chooseBatchSize({})).toThrow(RangeError);
  });

  it('stops at a costly size slower per row on a warm run, judging a cold first run again', async () => {
    // A cost model of a large input, ms a run by rows: the first run of a size pays
    // for its memory (+50 %); 4 rows fall out of the caches.
    const warm: Record<number, number> = { 1: 30, 2: 60, 4: 160, 8: 480 };
    const runs: number[] = [];
    const seen = new Set<number>();
    const run = async (feeds: Feeds): Promise<{ computeMs: number }> => {
      const rows = feeds.x!.dims[0]!;
      runs.push(rows);
      const cold = !seen.has(rows);
      seen.add(rows);
      return { computeMs: warm[rows]! * (cold ? 1.5 : 1) };
    };
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 3, 8, 8] }];
    const probe = await probeBatchSize(run, inputs, { x: [3, 8, 8] }, 8);
    expect(Object.keys(probe.perRowMs).map(Number)).toEqual([1, 2, 4]);
    expect(runs).not.toContain(8);
    expect(probe.perRowMs).toEqual({ 1: 30, 2: 30, 4: 40 });
    expect(probe.chosen).toBe(2);
    // 2 rows ran cold and looked slower, so they ran again before the probe went on.
    expect(runs.slice(0, 5)).toEqual([1, 1, 2, 2, 4]);
  });

  it('measures a larger size again where it came close to the one chosen, and no other', async () => {
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 4] }];
    // ms a row: 8 rows is the fastest, but a slow spell lasts through its first 11 runs
    // (all it gets before the check) and reads it 10 % slower than 4 rows.
    const probeWith = async (slowRunsOf8: number) => {
      const runs: number[] = [];
      let runsOf8 = 0;
      const perRow: Record<number, number> = { 1: 1.6, 2: 1.2, 4: 1.0, 8: 0.95 };
      const probe = await probeBatchSize(async (f) => {
        const rows = f.x!.dims[0]!;
        runs.push(rows);
        const slow = rows === 8 && ++runsOf8 <= slowRunsOf8;
        return { computeMs: rows * (slow ? 1.1 : perRow[rows]!) };
      }, inputs, { x: [4] }, 8);
      return { probe, runs };
    };
    const spell = await probeWith(11);
    expect(spell.probe.chosen).toBe(8);
    expect(spell.probe.perRowMs[8]).toBeCloseTo(0.95, 12);
    // After the last pass over every size (its 4 and 8 first here), the check ran the chosen
    // size and the close one once, nothing else, and stopped once 8 won.
    expect(spell.runs.slice(spell.runs.lastIndexOf(2) + 1)).toEqual([4, 8, 4, 8]);
    // Always slower: the choice stands, and the check gives up after its passes.
    const slower = await probeWith(Number.POSITIVE_INFINITY);
    expect(slower.probe.chosen).toBe(4);
    const tail = slower.runs.slice(slower.runs.lastIndexOf(2) + 1);
    expect(tail.length).toBeGreaterThan(2);
    expect(tail.length).toBeLessThanOrEqual(2 * 12 + 4);
    expect(new Set(tail)).toEqual(new Set([4, 8]));
  });

  it('runs each size on every instance at once, each run with buffers of its own, and keeps the mean', async () => {
    const calls: { rows: number; data: unknown }[] = [];
    let k = 0;
    const run = async (feeds: Feeds): Promise<{ computeMs: number }> => {
      calls.push({ rows: feeds.x!.dims[0]!, data: feeds.x!.data });
      // Two instances: one always 20 % slower than the other.
      return { computeMs: feeds.x!.dims[0]! * (k++ % 2 ? 1.2 : 1) };
    };
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 4] }];
    const probe = await probeBatchSize(run, inputs, { x: [4] }, 2, 2);
    expect(probe.perRowMs).toEqual({ 1: 1.1, 2: 1.1 });
    expect(calls.length % 2).toBe(0);
    for (let i = 0; i < calls.length; i += 2) {
      expect(calls[i]!.rows).toBe(calls[i + 1]!.rows);
      expect(calls[i]!.data).not.toBe(calls[i + 1]!.data);
    }
  });

  it("times by the run's CPU time where it has one, which busy processes beside it do not lengthen", async () => {
    // Wall time as measured beside two busy processes (normal policy): the 8-row run
    // preempted, 1.17 ms a row against 0.75 at 4, so 4 was chosen; the CPU time says 8.
    const wall: Record<number, number> = { 1: 0.96, 2: 1.54, 4: 3.0, 8: 9.36 };
    const cpu: Record<number, number> = { 1: 0.94, 2: 1.4, 4: 2.6, 8: 5.0 };
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 4] }];
    const byWall = await probeBatchSize(async (f) => ({ computeMs: wall[f.x!.dims[0]!]! }), inputs, { x: [4] }, 8);
    const byCpu = await probeBatchSize(async (f) => ({ computeMs: wall[f.x!.dims[0]!]!, cpuMs: cpu[f.x!.dims[0]!]! }), inputs, { x: [4] }, 8);
    expect(byWall.chosen).toBe(4);
    expect(byCpu.chosen).toBe(8);
    expect(byCpu.perRowMs[8]).toBeCloseTo(0.625, 12);
  });

  it('stops at the first size whose run fails and chooses among those that ran; a failure at one row is the probe\'s', async () => {
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 4] }];
    const refusing = (from: number) => async (f: Feeds): Promise<{ computeMs: number }> => {
      const rows = f.x!.dims[0]!;
      if (rows >= from) throw new Error(`cannot take ${rows} rows`);
      return { computeMs: rows };
    };
    const probe = await probeBatchSize(refusing(4), inputs, { x: [4] }, 8);
    expect(probe).toEqual({ perRowMs: { 1: 1, 2: 1 }, chosen: 2, failed: { rows: 4, message: 'cannot take 4 rows' } });
    await expect(probeBatchSize(refusing(1), inputs, { x: [4] }, 8)).rejects.toThrow('cannot take 1 rows');
  });

  it('checks the batch axis with two distinct rows alone and merged; NaN, infinities and float rounding pass', async () => {
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 3] }];
    // Per row: NaN, Infinity, and the row's first value (last bits off when merged, as other kernels round).
    const perRow = (merged: boolean) => async (f: Feeds) => {
      const x = f.x!.data as Float32Array;
      const rows = f.x!.dims[0]!;
      const y = new Float32Array(rows * 3);
      for (let r = 0; r < rows; r++) y.set([Number.NaN, Number.POSITIVE_INFINITY, x[r * 3]! * (merged && rows > 1 ? 1 + 1e-7 : 1)], r * 3);
      return { outputs: { y: { data: y, dims: [rows, 3] } } };
    };
    expect(await checkBatchAxis(perRow(true), inputs, { x: [3] })).toBeUndefined();
    // A running sum down axis 0: the second row changes beside the first.
    const runningSum = async (f: Feeds) => {
      const x = f.x!.data as Float32Array;
      return { outputs: { y: { data: x.map((v, i) => (i >= 3 ? v + x[i - 3]! : v)), dims: [...f.x!.dims] } } };
    };
    expect(await checkBatchAxis(runningSum, inputs, { x: [3] })).toMatch(/^row 1 of output 'y' changes when another row runs beside it/);
    // Two output rows per input row.
    const pairs = async (f: Feeds) => ({ outputs: { y: { data: f.x!.data, dims: [f.x!.dims[0]! * 3, 1] } } });
    expect(await checkBatchAxis(pairs, inputs, { x: [3] })).toBe("output 'y' has 3 rows on axis 0 for 1 input row");
  });

  it('needs every axis beyond the batch fixed, from the model or from shapes', () => {
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 3, -1, -1] }];
    expect(probeItemDims(inputs, { x: [-1, ...CLS_ITEM] })).toEqual({ x: [...CLS_ITEM] });
    expect(probeItemDims(inputs, { x: { min: [1, 3, 48, 100], opt: [1, 3, 48, 192], max: [4, 3, 48, 320] } })).toEqual({ x: [...CLS_ITEM] });
    expect(probeItemDims(inputs, {})).toMatch(/input 'x' has a dynamic axis beyond the batch \(shape \[-1,3,-1,-1\]\)/);
  });

  it('reads back only a well-formed stored probe', () => {
    const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
    expect(parseProbe(json({ perRowMs: { 1: 2.5, 2: 2 }, chosen: 2 }))).toEqual({ perRowMs: { 1: 2.5, 2: 2 }, chosen: 2 });
    expect(parseProbe(Buffer.from('{not json'))).toBeUndefined();
    expect(parseProbe(json({ perRowMs: { 1: -1 }, chosen: 1 }))).toBeUndefined();
    expect(parseProbe(json({ perRowMs: { 1: 2 }, chosen: 0 }))).toBeUndefined();
    expect(parseProbe(json({ chosen: 2 }))).toBeUndefined();
    expect(parseProbe(json({ perRowMs: { 1: 2.5, 2: 2 }, chosen: 4 }))).toBeUndefined(); // a size it did not probe
    const failed = { perRowMs: { 1: 2.5 }, chosen: 1, failed: { rows: 2, message: 'initial_h' } };
    expect(parseProbe(json(failed))).toEqual(failed);
    expect(parseProbe(json({ ...failed, failed: { rows: 1, message: 'x' } }))).toBeUndefined(); // one row failing is no probe
    expect(parseProbe(json({ ...failed, failed: { rows: 2 } }))).toBeUndefined();
    // The batch axis check's finding, stored beside the probe.
    expect(parseAxisCheck(json({ notBatch: "output 'y' has 2 rows on axis 0 for 1 input row" }))).toEqual({ notBatch: "output 'y' has 2 rows on axis 0 for 1 input row" });
    expect(parseAxisCheck(json({ notBatch: 3 }))).toBeUndefined();
    expect(parseAxisCheck(json({ notBatch: null }))).toEqual({ notBatch: null });
    expect(parseAxisCheck(json({ perRowMs: { 1: 2.5 }, chosen: 1 }))).toBeUndefined();
  });
});

/** Three rows through the engine: dims [3, 2] and the reference session's bits. */
async function expectReferenceBits(engine: Engine, reference: Awaited<ReturnType<typeof engineGraphSession>>, x: Float32Array): Promise<void> {
  const got = (await engine.infer(x))['softmax_0.tmp_0']!;
  expect(got.dims).toEqual([3, 2]);
  const want = await reference.run({ x: new ort.Tensor('float32', x, [3, ...CLS_ITEM]) });
  expect(sameBits(got.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
}

describe('batch probe in Engine.build (onnxruntime)', () => {
  it('measures maxBatchSize where none is given, and serves the same bits as onnxruntime-node', async () => {
    const engine = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } });
    const reference = await engineGraphSession(CLS_MODEL);
    try {
      const probe = engine.batching.probe!;
      expect(probe.source).toBe('measured');
      const sizes = Object.keys(probe.perRowMs).map(Number);
      // A prefix of 1, 2, 4, 8 (the default cap, 8 rows a thread), each timed.
      expect([1, 2, 4, 8].slice(0, sizes.length)).toEqual(sizes);
      for (const ms of Object.values(probe.perRowMs)) expect(ms).toBeGreaterThan(0);
      expect(engine.batching.maxBatchSize).toBe(chooseBatchSize(probe.perRowMs));
      expect(engine.batching.maxBatchSize).toBe(probe.chosen);
      expect(engine.batching.reason).toContain('measured at this build');
      // The probe's runs are not requests.
      expect(engine.stats().requests).toBe(0);
      expect(engine.stats().batches).toBe(0);
      await expectReferenceBits(engine, reference, clsInput(5, 3));
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });

  it('does not probe where maxBatchSize or preferred sizes are given, or an axis is left open', async () => {
    const given = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 4, shapes: { x: [-1, ...CLS_ITEM] } });
    expect(given.batching.probe).toBeUndefined();
    expect(given.batching.maxBatchSize).toBe(4);
    await given.dispose();
    const preferred = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, preferredBatchSizes: [4], shapes: { x: [-1, ...CLS_ITEM] } });
    expect(preferred.batching.probe).toBeUndefined();
    await preferred.dispose();
    // The recognizer's width is dynamic: nothing to probe with unless shapes fixes it.
    const open = await Engine.build(REC_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    expect(open.batching.probe).toBeUndefined();
    expect(open.batching.maxBatchSize).toBe(8);
    expect(open.batching.reason).toMatch(/maxBatchSize 8 by default, not measured: input 'x' has a dynamic axis beyond the batch/);
    await open.dispose();
  });

  it('with maxBatchSize 1, a request of several rows runs a row at a time', async () => {
    const engine = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1, maxBatchSize: 1, shapes: { x: [-1, ...CLS_ITEM] } });
    const reference = await engineGraphSession(CLS_MODEL);
    try {
      expect(engine.batching.enabled).toBe(false);
      await expectReferenceBits(engine, reference, clsInput(9, 3));
      expect(engine.stats().batches).toBe(3);
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });

  it('is cached with the engine: a later build reads it, a corrupt entry is measured again', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-probe-'));
    const options = { backend: 'onnxruntime' as const, cacheDir, instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } };
    try {
      const first = await quietBuild(() => Engine.build(CLS_MODEL, options));
      const measured = first.batching.probe!;
      expect(measured.source).toBe('measured');
      await first.dispose();
      const second = await Engine.build(CLS_MODEL, options);
      expect(second.batching.probe).toEqual({ ...measured, source: 'cache' });
      expect(second.batching.maxBatchSize).toBe(first.batching.maxBatchSize);
      expect(second.batching.reason).toContain('measured on this machine by an earlier build');
      await second.dispose();

      const entry = readdirSync(cacheDir).find((f) => f.endsWith('.batch.bin'))!;
      const bytes = readFileSync(join(cacheDir, entry));
      bytes[bytes.length - 2] ^= 0xff;
      writeFileSync(join(cacheDir, entry), bytes);
      const corrupt = await withWarnings('ECACHE', () => Engine.build(CLS_MODEL, options));
      expect(corrupt.warnings.join('\n')).toMatch(/corrupt batch probe cache entry .* \(checksum mismatch\); measuring again/);
      expect(corrupt.value.batching.probe!.source).toBe('measured');
      expect(corrupt.value.cache.status).toBe('hit'); // the model's own entry was sound
      const third = await quietBuild(() => Engine.build(CLS_MODEL, options), corrupt.value);
      await third.dispose();
      const fourth = await Engine.build(CLS_MODEL, options);
      expect(fourth.batching.probe).toEqual({ ...third.batching.probe, source: 'cache' });
      await fourth.dispose();
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('serves the build but is not kept where busy processes ran beside it; a quiet build keeps it', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-probe-busy-'));
    // The normal policy: the workers share the cores with the busy processes rather than starve.
    const options = { backend: 'onnxruntime' as const, cacheDir, instances: 1, threadsPerInstance: 1, backgroundThreads: false, shapes: { x: [-1, ...CLS_ITEM] } };
    const probes = (): string[] => readdirSync(cacheDir).filter((f) => f.endsWith('.batch.bin'));
    const hogs = Array.from({ length: availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    try {
      const busy = await Engine.build(CLS_MODEL, options);
      expect(busy.batching.probe!.source).toBe('measured');
      expect(busy.batching.reason).toContain('measured at this build, beside busy processes (not kept in the cache)');
      await busy.dispose();
      expect(probes()).toEqual([]);
      for (const h of hogs) h.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      const quiet = await quietBuild(() => Engine.build(CLS_MODEL, options));
      expect(quiet.batching.probe!.source).toBe('measured');
      expect(quiet.batching.reason).not.toContain('busy');
      await quiet.dispose();
      expect(probes()).toHaveLength(1);
      const again = await Engine.build(CLS_MODEL, options);
      expect(again.batching.probe).toEqual({ ...quiet.batching.probe, source: 'cache' });
      await again.dispose();
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
