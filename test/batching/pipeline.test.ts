/**
 * `pipelineShortRuns`: short runs that cannot merge are pipelined, each instance getting
 * its next batch before its run ends (up to two batches in flight per instance), so that
 * it does not wait on the JS thread between runs. By default, and for a model that can
 * merge, one batch per instance. Real engines on onnxruntime in a worker; results are
 * checked against the product computed here.
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { withWarnings } from '../engine/helpers.js';
import { buildModel, node, random, randomArray, tensor } from '../quantize/graphs.js';

const W = randomArray(12, random(7));
/** y = x · W, x of shape [batch, 4] with `batch` fixed at 1 or open. */
const matmul = (batch: number): Uint8Array =>
  buildModel({
    nodes: [node('MatMul', ['x', 'w'], ['y'], 'matmul')],
    initializers: [tensor('w', W, [4, 3])],
    inputs: [{ name: 'x', dims: [batch, 4] }],
    outputs: [{ name: 'y', dims: [batch, 3] }],
  });

function expected(x: Float32Array): number[] {
  return [0, 1, 2].map((j) => x.reduce((sum, v, i) => sum + v * W[i * 3 + j]!, 0));
}

const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

/** The backend's worker threads (private: reached into, to end one for real, as test/engine/worker-exit.test.ts does). */
function workers(e: Engine): { worker: Worker; pending: Map<number, unknown> }[] {
  return (e as unknown as { impl: { workers: { worker: Worker; pending: Map<number, unknown> }[] } }).impl.workers;
}

/** Sends `n` one-row requests at once; returns the most batches seen executing, checking every result. */
async function drive(engine: Engine, n: number, onSettled?: (settled: number) => void): Promise<number> {
  const rand = random(11);
  let most = 0;
  let settled = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const x = randomArray(4, rand);
      const out = await engine.infer({ x: { data: x, dims: [1, 4] } });
      settled++;
      most = Math.max(most, engine.stats().executing);
      onSettled?.(settled);
      const y = Array.from(out.y!.data as Float32Array);
      expected(x).forEach((v, j) => expect(y[j]).toBeCloseTo(v, 5));
    }),
  );
  expect(settled).toBe(n);
  return most;
}

describe('pipelined short runs', () => {
  it('a model without a batch axis gets two batches in flight on its one instance, every result its own', async () => {
    const engine = await Engine.build(matmul(1), { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, pipelineShortRuns: true });
    engines.push(engine);
    expect(engine.batching.batchAxis).toBe(false);
    expect(await drive(engine, 500)).toBe(2);
    const s = engine.stats();
    expect(s.succeeded).toBe(500);
    expect(s.batches).toBe(500);
    expect(s.executing).toBe(0);
  });

  it('by default one batch per instance; a value not boolean is refused', async () => {
    const engine = await Engine.build(matmul(1), { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    engines.push(engine);
    expect(await drive(engine, 300)).toBe(1);
    await expect(Engine.build(matmul(1), { backend: 'onnxruntime', pipelineShortRuns: 'yes' as unknown as boolean })).rejects.toMatchObject({
      code: 'EINPUT',
      details: { tensor: 'pipelineShortRuns', expected: 'a boolean', received: 'string' },
    });
  });

  it('a model that merges keeps one batch in flight per instance', async () => {
    const engine = await Engine.build(matmul(-1), { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 8, pipelineShortRuns: true });
    engines.push(engine);
    expect(engine.batching.batchAxis).toBe(true);
    expect(await drive(engine, 300)).toBe(1);
    expect(engine.stats().meanBatchSize).toBeGreaterThan(1);
  });

  it('a worker that exits while pipelined (two batches sent to it): every request still gets its own result, and the worker is replaced', async () => {
    const engine = await Engine.build(matmul(1), { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1, pipelineShortRuns: true });
    engines.push(engine);
    let held = 0;
    const { value: most, warnings } = await withWarnings('EBACKEND', async () => {
      const most = await drive(engine, 300, (settled) => {
        const first = workers(engine)[0]!;
        // Once pipelining holds two batches on the first worker, end its thread (an uncaught error between runs).
        if (held === 0 && settled > 50 && first.pending.size === 2) {
          held = first.pending.size;
          first.worker.postMessage(null);
        }
      });
      // The replacement starts on its own time: the other worker may have served the rest first.
      await vi.waitFor(() => expect(engine.stats().instanceRestarts).toBe(1), { timeout: 20_000, interval: 20 });
      return most;
    });
    expect(held).toBe(2);
    expect(most).toBeGreaterThanOrEqual(3);
    expect(warnings.some((w) => w.includes('its batches run again'))).toBe(true);
    expect(engine.stats().succeeded).toBe(300);
  });
});
