import { describe, expect, it } from 'vitest';
import { joinParts, mergeBatch, recycle, rowViews, splitBatch, type BatchTensor } from '../../src/batching/merge.js';
import { BufferPool } from '../../src/batching/pool.js';
import { percentiles } from '../../src/engine/stats.js';

const t = (values: number[], rows: number): Record<string, BatchTensor> => ({
  a: { data: Float32Array.from(values), dims: [rows, values.length / rows], type: 'float32' },
});

describe('merge and split', () => {
  it('concatenates along axis 0 and splits back into views per request', () => {
    const merged = mergeBatch([t([1, 2], 1), t([3, 4, 5, 6], 2)], 3);
    expect(merged.a!.dims).toEqual([3, 2]);
    expect(Array.from(merged.a!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const parts = splitBatch({ y: { data: merged.a!.data, dims: [3, 2] } }, [1, 2]);
    expect(Array.from(parts[0]!.y!.data as Float32Array)).toEqual([1, 2]);
    expect(parts[1]!.y!.dims).toEqual([2, 2]);
    expect(Array.from(parts[1]!.y!.data as Float32Array)).toEqual([3, 4, 5, 6]);
    expect(() => splitBatch({ y: { data: new Float32Array(4), dims: [2, 2] } }, [1, 2])).toThrow(/2 rows on axis 0 for a batch of 3/);
  });

  it('views rows of a request, and joins the results of its parts in row order, refusing unequal inner dims', () => {
    const whole = t([1, 2, 3, 4, 5, 6], 3);
    const tail = rowViews(whole, 1, 2);
    expect(tail.a!.dims).toEqual([2, 2]);
    expect(Array.from(tail.a!.data as Float32Array)).toEqual([3, 4, 5, 6]);
    expect(tail.a!.data.buffer).toBe(whole.a!.data.buffer);
    const y = (values: number[], rows: number) => ({ y: { data: Float32Array.from(values), dims: [rows, values.length / rows], type: 'float32' as const } });
    // Parts come back in any order.
    const joined = joinParts([{ start: 2, outputs: y([5, 6], 1) }, { start: 0, outputs: y([1, 2, 3, 4], 2) }], 3);
    expect(joined.y!.dims).toEqual([3, 2]);
    expect(joined.y!.type).toBe('float32');
    expect(Array.from(joined.y!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => joinParts([{ start: 0, outputs: y([1, 2], 1) }, { start: 1, outputs: y([3, 4, 5], 1) }], 2)).toThrow(/output 'y' of a request split over batches has shape \[1,3\]/);
  });

  it('reuses pooled buffers of a power-of-two size class', () => {
    const pool = new BufferPool();
    const first = mergeBatch([t(new Array(3000).fill(1), 1)], 1, pool);
    const buffer = first.a!.data.buffer;
    expect(buffer.byteLength).toBe(16384);
    recycle(first, pool);
    const second = mergeBatch([t(new Array(2500).fill(2), 1)], 1, pool);
    expect(second.a!.data.buffer).toBe(buffer);
    expect(second.a!.data.length).toBe(2500);
    // Detached buffers are not pooled.
    structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
    recycle(second, pool);
    expect(pool.take(10000).byteLength).toBe(16384);
  });
});

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    const p = percentiles(xs);
    expect([p.p50, p.p90, p.p95, p.p99, p.max, p.samples]).toEqual([50, 90, 95, 99, 100, 100]);
    expect(p.mean).toBeCloseTo(50.5);
    expect(percentiles([]).samples).toBe(0);
  });

  it('agrees with a full sort on random samples with ties, of every length up to 300', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 1; n <= 300; n++) {
      const xs = Array.from({ length: n }, () => Math.floor(rand() * 50) / 4);
      const sorted = [...xs].sort((a, b) => a - b);
      const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
      const p = percentiles(xs);
      expect([p.p50, p.p90, p.p95, p.p99, p.max]).toEqual([at(0.5), at(0.9), at(0.95), at(0.99), sorted[n - 1]]);
    }
  });
});
