/**
 * Lone batches on every core: the wide session gives the single-threaded sessions' bits,
 * takes a batch only where every worker is idle, and is kept or released as measured.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import { Engine } from '../../src/engine/engine.js';
import { WIDE_GAIN, WIDE_MIN_ROW_MS, chooseLoneRuns } from '../../src/engine/lone-runs.js';
import { BACKGROUND_NICE, CLS_ITEM, CLS_MODEL, DET_MODEL, clsInput, ort, quietBuild, referenceSession, sameBits, threadNices, threadsNamed, withWarnings } from './helpers.js';

const backends: OnnxruntimeBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.dispose()));
});

const feeds = (seed: number) => ({ x: { data: clsInput(seed), dims: [1, ...CLS_ITEM], type: 'float32' as const } });

describe('lone runs on every core', () => {
  it('runs on the wide session where told or where every worker is idle, with the same bits as onnxruntime-node', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 1 });
    backends.push(backend);
    const reference = await referenceSession(CLS_MODEL);
    try {
      expect((await backend.runTimed(feeds(1), { wide: true })).wide).toBe(false); // none made yet
      await backend.addWide(2);
      expect(backend.wideThreads).toBe(2);
      for (const seed of [1, 2, 3]) {
        const want = Object.values(await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[0]!.data as Float32Array;
        for (const wide of [true, false] as const) {
          const r = await backend.runTimed(feeds(seed), { wide });
          expect(r.wide).toBe(wide);
          expect(sameBits(Object.values(r.outputs)[0]!.data as Float32Array, want)).toBe(true);
        }
      }
      // 'auto': the first of two batches finds every worker idle, the second does not.
      const [a, b] = await Promise.all([backend.runTimed(feeds(4), { wide: 'auto' }), backend.runTimed(feeds(5), { wide: 'auto' })]);
      expect([a.wide, b.wide]).toEqual([true, false]);
      expect((await backend.runTimed(feeds(6))).wide).toBe(false); // the default: never
      await backend.dropWide();
      expect(backend.wideThreads).toBeUndefined();
      expect((await backend.runTimed(feeds(7), { wide: true })).wide).toBe(false);
    } finally {
      await reference.release();
    }
  });

  it('keeps the wide session only where a lone row ran faster on it by the margin, and releases it otherwise', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 1 });
    backends.push(backend);
    // A probe that timed a slow lone row, so the choice is measured (the classifier's own row is short).
    const lone = await chooseLoneRuns(backend, WIDE_MIN_ROW_MS * 2, { x: [...CLS_ITEM] });
    expect(lone.oneThreadMs).toBeGreaterThan(0);
    expect(lone.wideMs).toBeGreaterThan(0);
    if (lone.threads === 2) {
      expect(lone.wideMs!).toBeLessThanOrEqual(lone.oneThreadMs! * WIDE_GAIN);
      expect(backend.wideThreads).toBe(2);
      expect(lone.reason).toMatch(/runs on 2 threads: a lone row ran .* the same bits$/);
    } else {
      expect(lone.wideMs!).toBeGreaterThan(lone.oneThreadMs! * WIDE_GAIN);
      expect(backend.wideThreads).toBeUndefined();
      expect(lone.reason).toMatch(/not worth a second session$/);
    }
  });

  it.runIf(process.platform === 'linux')('makes the wide session on a new worker at the normal policy, then puts both sessions\' threads at background priority; a change of policy carries it to the new workers', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 1 });
    backends.push(backend);
    const tidsOf = (): number[] => (backend as unknown as { workers: { tid: number }[] }).workers.map((w) => w.tid);
    const [first, second] = tidsOf();
    await backend.addWide(2);
    // The first worker was replaced by one with both sessions; the second serves on.
    const [withWide, other] = tidsOf();
    expect(withWide).not.toBe(first);
    expect(other).toBe(second);
    // Its thread and the wide session's intra-op thread, named after it, both at background priority.
    const named = threadsNamed(`trtn-${withWide}`);
    expect(named).toHaveLength(2);
    const policies = threadNices();
    expect(named.map((t) => policies.get(t))).toEqual([BACKGROUND_NICE, BACKGROUND_NICE]);
    // Starved (as the starvation check would say): the new workers of normal priority keep the wide session.
    (backend as unknown as { leaveIdle(c: object): void }).leaveIdle({ windows: 2, windowMs: 1000, ranPercent: 1 });
    await vi.waitFor(() => expect(tidsOf().every((t) => t !== withWide && t !== other)).toBe(true), { timeout: 20_000, interval: 20 });
    expect(backend.wideThreads).toBe(2);
    const r = await backend.runTimed(feeds(7), { wide: true });
    expect(r.wide).toBe(true);
    const reference = await referenceSession(CLS_MODEL);
    try {
      const want = Object.values(await reference.run({ x: new ort.Tensor('float32', clsInput(7), [1, ...CLS_ITEM]) }))[0]!.data as Float32Array;
      expect(sameBits(Object.values(r.outputs)[0]!.data as Float32Array, want)).toBe(true);
    } finally {
      await reference.release();
    }
    const normal = threadsNamed(`trtn-${tidsOf()[0]}`);
    expect(normal).toHaveLength(2);
    const after = threadNices();
    expect(normal.every((t) => after.get(t) !== BACKGROUND_NICE)).toBe(true);
  });

  it('an engine says why a lone batch runs on one thread: a short row, or wideLoneRuns: false', async () => {
    const shapes = { x: [-1, ...CLS_ITEM] };
    const cls = await Engine.build(CLS_MODEL, { shapes, instances: 2, threadsPerInstance: 1 });
    const off = await Engine.build(DET_MODEL, { shapes: { x: [-1, 3, 64, 64] }, instances: 2, threadsPerInstance: 1, wideLoneRuns: false });
    try {
      expect(cls.backend.loneRuns).toMatchObject({ threads: 1, reason: expect.stringMatching(/^a lone row takes [\d.]+ ms, too short to share between threads$/) });
      expect(off.backend.loneRuns).toEqual({ threads: 1, reason: 'wideLoneRuns: false' });
      const single = await Engine.build(CLS_MODEL, { shapes, instances: 1, threadsPerInstance: 2 });
      expect(single.backend.loneRuns).toEqual({ threads: 2, reason: 'each instance runs on its own threads' });
      await single.dispose();
    } finally {
      await cls.dispose();
      await off.dispose();
    }
  });

  it('keeps its measured choice in the engine cache: a later build reads it, a corrupt entry is measured again', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-lone-'));
    const options = { shapes: { x: [-1, 3, 320, 320] }, instances: 2, threadsPerInstance: 1, cacheDir };
    try {
      const first = await quietBuild(() => Engine.build(DET_MODEL, options));
      const a = first.backend.loneRuns!;
      await first.dispose();
      // The detector's lone row is long enough to be timed on both sessions.
      expect(a.oneThreadMs).toBeGreaterThan(WIDE_MIN_ROW_MS * 0.5);
      expect(a.wideMs).toBeGreaterThan(0);
      const second = await Engine.build(DET_MODEL, options);
      expect(second.batching.probe?.source).toBe('cache');
      expect(second.backend.loneRuns).toEqual({ ...a, reason: `${a.reason} (measured by an earlier build)` });
      expect(Object.keys(await second.infer({ x: { data: new Float32Array(3 * 320 * 320), dims: [1, 3, 320, 320] } }))).toHaveLength(1);
      await second.dispose();
      for (const f of readdirSync(cacheDir).filter((f) => f.endsWith('.lone.bin'))) writeFileSync(join(cacheDir, f), 'not an entry');
      const { value: third, warnings } = await withWarnings('ECACHE', () => Engine.build(DET_MODEL, options));
      expect(warnings.join('\n')).toMatch(/corrupt lone-run choice cache entry .*; measuring again/);
      expect(third.backend.loneRuns!.reason).not.toMatch(/earlier build/);
      expect(third.backend.loneRuns!.oneThreadMs).toBeGreaterThan(0);
      await third.dispose();
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
