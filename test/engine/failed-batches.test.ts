/**
 * Runs that fail inside a merged batch. One request the model refuses (an id past the
 * vocabulary) used to fail every request merged with it; a model whose axis 0 is open but
 * that only runs one row (an LSTM whose initial state was traced at batch 1, as PyTorch
 * exports a batch_first LSTM with a constant h0) used to fail every merged batch, the batch
 * probe's failure at 2 rows only noted in `batching.reason`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { buildModel, node, random, randomArray, tensor, withAttrs } from '../quantize/graphs.js';
import { onnx } from '../../src/onnx/proto.js';
import { failure, ort, withWarnings } from './helpers.js';
import { embeddingModel, embeddingRequest, VOCAB } from './multi-input.js';

type Session = Awaited<ReturnType<typeof ort.InferenceSession.create>>;
const SINGLE_THREAD = { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 } as const;

/** Each settled promise as 'ok' or its error's code. */
const outcomes = (settled: PromiseSettledResult<unknown>[]): string[] =>
  settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as { code: string }).code));

describe('a request the model refuses, merged with others', () => {
  const model = embeddingModel();
  let session: Session;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await session?.release();
  });

  it('fails alone: the batch runs again a request at a time, and every other request gets its own result', async () => {
    // The queue delay never runs out: the 8 requests run as one batch of 8.
    const engine = await Engine.build(model, { ...SINGLE_THREAD, maxBatchSize: 8, maxQueueDelayMs: 60_000 });
    try {
      const requests = Array.from({ length: 8 }, (_, i) => embeddingRequest(i, 1, 5));
      (requests[3]!.input_ids.data as BigInt64Array)[2] = BigInt(VOCAB + 7);
      const { value: settled, warnings } = await withWarnings('EMODEL', () => Promise.allSettled(requests.map((r) => engine.infer(r))));
      expect(outcomes(settled)).toEqual(['ok', 'ok', 'ok', 'EMODEL', 'ok', 'ok', 'ok', 'ok']);
      const refused = (settled[3] as PromiseRejectedResult).reason as Error;
      expect(refused.message).toMatch(/Gather.*out of (data )?bounds/);
      for (const i of [0, 1, 2, 4, 5, 6, 7]) {
        const r = requests[i]!;
        const want = await session.run({
          input_ids: new ort.Tensor('int64', r.input_ids.data as BigInt64Array, r.input_ids.dims),
          attention_mask: new ort.Tensor('int64', r.attention_mask.data as BigInt64Array, r.attention_mask.dims),
          scale: new ort.Tensor('float32', r.scale.data as Float32Array, r.scale.dims),
        });
        const got = (settled[i] as PromiseFulfilledResult<Awaited<ReturnType<Engine['infer']>>>).value;
        expect(Array.from(got.embedding!.data as Float32Array)).toEqual(Array.from(want.embedding!.data as Float32Array));
        expect(Array.from(got.top!.data as BigInt64Array)).toEqual(Array.from(want.top!.data as BigInt64Array));
      }
      const stats = engine.stats();
      expect(stats).toMatchObject({ batchesRunApart: 1, succeeded: 7, failed: { EMODEL: 1 } });
      // One request failed alone: the model does run batches, so nothing to warn of.
      expect(warnings).toEqual([]);
      expect(await engine.metrics()).toMatch(/nv_inference_request_failure\{[^}]*reason="BACKEND"\} 1/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('bad requests among many, with aborts and timeouts', () => {
  it('each request settles once: a bad one with EMODEL, an aborted or timed-out one with its code, every other with its own result', async () => {
    const model = embeddingModel();
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    let seed = 7;
    const rand = (): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    try {
      for (const [instances, maxBatchSize, maxQueueDelayMs] of [[1, 8, 2], [2, 3, 0], [2, 5, 2]] as const) {
        const engine = await Engine.build(model, { backend: 'onnxruntime', instances, threadsPerInstance: 1, maxBatchSize, maxQueueDelayMs });
        try {
          const requests = Array.from({ length: 200 }, (_, i) => {
            const rows = 1 + Math.floor(rand() * 3);
            const feeds = embeddingRequest(i, rows, 5);
            const bad = rand() < 0.1;
            if (bad) (feeds.input_ids.data as BigInt64Array)[Math.floor(rand() * rows * 5)] = BigInt(VOCAB + 3);
            return { feeds, bad, abortAfterMs: rand() < 0.1 ? rand() * 5 : undefined, timeoutMs: rand() < 0.1 ? rand() * 5 : undefined };
          });
          const settled = await Promise.allSettled(requests.map((q) => {
            const ac = new AbortController();
            if (q.abortAfterMs !== undefined) setTimeout(() => ac.abort(), q.abortAfterMs);
            return engine.infer(q.feeds, { signal: ac.signal, ...(q.timeoutMs !== undefined && { timeoutMs: q.timeoutMs }) });
          }));
          let apartExpected = false;
          for (const [i, s] of settled.entries()) {
            const q = requests[i]!;
            if (s.status === 'rejected') {
              const code = (s.reason as { code: string }).code;
              const allowed = [...(q.bad ? ['EMODEL'] : []), ...(q.abortAfterMs !== undefined ? ['EABORTED'] : []), ...(q.timeoutMs !== undefined ? ['ETIMEOUT'] : [])];
              expect(allowed, `request ${i}: ${(s.reason as Error).message}`).toContain(code);
              apartExpected ||= code === 'EMODEL';
              continue;
            }
            expect(q.bad, `request ${i} holds an id past the vocabulary`).toBe(false);
            const want = await session.run({
              input_ids: new ort.Tensor('int64', q.feeds.input_ids.data as BigInt64Array, q.feeds.input_ids.dims),
              attention_mask: new ort.Tensor('int64', q.feeds.attention_mask.data as BigInt64Array, q.feeds.attention_mask.dims),
              scale: new ort.Tensor('float32', q.feeds.scale.data as Float32Array, q.feeds.scale.dims),
            });
            const w = want.embedding!.data as Float32Array;
            (s.value.embedding!.data as Float32Array).forEach((v, k) => expect(Math.abs(v - w[k]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w[k]!))));
          }
          const stats = engine.stats();
          const failed = Object.values(stats.failed).reduce((a, b) => a + (b ?? 0), 0);
          expect(stats.succeeded + failed).toBe(requests.length);
          if (apartExpected) expect(stats.batchesRunApart).toBeGreaterThan(0);
        } finally {
          await engine.dispose();
        }
      }
    } finally {
      await session.release();
    }
  });
});

/** x [N, 5, 4] → a batch_first LSTM (hidden 3) whose initial state is a constant of batch 1 → y [N, 1, 3]. */
function tracedLstm(): Uint8Array {
  const rand = random(5);
  const H = 3;
  const I = 4;
  return buildModel({
    nodes: [
      withAttrs(node('Transpose', ['x'], ['time_major'], 'to_time_major'), { perm: [1, 0, 2] }),
      withAttrs(node('LSTM', ['time_major', 'W', 'R', '', '', 'h0'], ['', 'last_h'], 'lstm'), { hidden_size: H }),
      withAttrs(node('Transpose', ['last_h'], ['y'], 'to_batch_major'), { perm: [1, 0, 2] }),
    ],
    initializers: [
      tensor('W', randomArray(4 * H * I, rand), [1, 4 * H, I]),
      tensor('R', randomArray(4 * H * H, rand), [1, 4 * H, H]),
      tensor('h0', new Float32Array(H), [1, 1, H]),
    ],
    inputs: [{ name: 'x', dims: [-1, 5, I] }],
    outputs: [{ name: 'y', dims: [-1, 1, H] }],
  });
}

describe('a model whose axis 0 is open but that runs one row only', () => {
  const model = tracedLstm();
  const row = (i: number): Float32Array => Float32Array.from({ length: 20 }, (_, k) => Math.sin(i * 3 + k));
  let session: Session;
  /** ONNX Runtime's result for each row of `x` run alone. */
  const alone = async (x: Float32Array): Promise<number[]> => {
    const out: number[] = [];
    for (let r = 0; r < x.length / 20; r++) {
      const y = await session.run({ x: new ort.Tensor('float32', x.subarray(r * 20, (r + 1) * 20), [1, 5, 4]) });
      out.push(...(y.y!.data as Float32Array));
    }
    return out;
  };
  beforeAll(async () => {
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await session?.release();
  });

  it('onnxruntime reports its axis 0 as dynamic, and refuses 2 rows', async () => {
    expect(session.outputMetadata[0]).toMatchObject({ name: 'y', shape: ['N', 1, 3] });
    await expect(session.run({ x: new ort.Tensor('float32', new Float32Array(40), [2, 5, 4]) })).rejects.toThrow(/initial_h must have shape/);
  });

  it('by default: the batch probe stops at the size that failed, and requests run a row at a time; the cache keeps the failure', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-failed-probe-'));
    const engine = await Engine.build(model, { ...SINGLE_THREAD, cacheDir });
    try {
      expect(engine.batching).toMatchObject({ batchAxis: true, enabled: false, maxBatchSize: 1, probe: { chosen: 1, failed: { rows: 2 } } });
      expect(engine.batching.probe!.failed!.message).toMatch(/initial_h/);
      expect(engine.batching.reason).toMatch(/a batch of 2 rows failed \(.*initial_h.*\)/);
      const inputs = [row(0), row(1), row(2), new Float32Array([...row(3), ...row(4), ...row(5)])];
      const results = await Promise.all(inputs.map((x) => engine.infer(x)));
      for (let i = 0; i < inputs.length; i++) {
        expect(results[i]!.y!.dims).toEqual([inputs[i]!.length / 20, 1, 3]);
        expect(Array.from(results[i]!.y!.data as Float32Array)).toEqual(await alone(inputs[i]!));
      }
      expect(engine.stats().batchesRunApart).toBe(0);
      // Kept only where measured on a quiet machine (a busy one is measured again).
      if (!/not kept/.test(engine.batching.reason)) {
        const again = await Engine.build(model, { ...SINGLE_THREAD, cacheDir });
        expect(again.batching).toMatchObject({ maxBatchSize: 1, probe: { source: 'cache', failed: engine.batching.probe!.failed } });
        expect(again.batching.reason).toMatch(/a batch of 2 rows failed/);
        await again.dispose();
      }
    } finally {
      await engine.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it('with maxBatchSize given: a merged batch that fails runs apart, every request succeeds, and one warning says why', async () => {
    // The queue delay never runs out: each round's 8 requests run as one batch of 8.
    const engine = await Engine.build(model, { ...SINGLE_THREAD, maxBatchSize: 8, maxQueueDelayMs: 60_000 });
    try {
      const { warnings } = await withWarnings('EMODEL', async () => {
        for (const round of [0, 1]) {
          const inputs = Array.from({ length: 8 }, (_, i) => row(round * 8 + i));
          const results = await Promise.all(inputs.map((x) => engine.infer(x)));
          for (let i = 0; i < inputs.length; i++) expect(Array.from(results[i]!.y!.data as Float32Array)).toEqual(await alone(inputs[i]!));
        }
      });
      // Each failed batch of 8 ran as 8 of one.
      expect(engine.stats()).toMatchObject({ batchesRunApart: 2, succeeded: 16, batches: 16 });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/a batch of 8 rows merged from 8 requests failed \(.*initial_h.*\), and each request then succeeded alone: .*maxBatchSize/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('a model that fails the batch probe at one row', () => {
  it('still builds (real requests may differ from the probe inputs), and says so in an EMODEL warning', async () => {
    // 3 input channels, a kernel for 2: ONNX Runtime loads it and fails every run.
    const model = buildModel({
      nodes: [node('Conv', ['x', 'w'], ['y'], 'conv')],
      initializers: [tensor('w', new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3])],
      inputs: [{ name: 'x', dims: [-1, 3, 8, 8] }],
      outputs: [{ name: 'y', dims: [-1, 4, 6, 6] }],
    });
    const { value: engine, warnings } = await withWarnings('EMODEL', () => Engine.build(model, SINGLE_THREAD));
    try {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/the model failed a run of one row at build, on synthetic inputs \(.*Conv.*\); requests may fail the same way/);
      expect(engine.batching.reason).toMatch(/not measured: the probe's run failed/);
      expect((await failure(engine.infer(new Float32Array(3 * 8 * 8)))).code).toBe('EMODEL');
    } finally {
      await engine.dispose();
    }
  });
});

/** x [N, 4] → y [2N, 2]: the rows reshaped into pairs, so y's axis 0 is not N (the model names it M). */
function pairsModel(width = 4): Uint8Array {
  const model = onnx.ModelProto.decode(buildModel({
    nodes: [node('Reshape', ['x', 'pairs'], ['y'], 'reshape')],
    initializers: [tensor('pairs', BigInt64Array.of(-1n, 2n), [2])],
    inputs: [{ name: 'x', dims: [-1, width] }],
    outputs: [{ name: 'y', dims: [-1, 2] }],
  }));
  model.graph!.output![0]!.type!.tensorType!.shape!.dim![0]!.dimParam = 'M';
  return onnx.ModelProto.encode(model).finish();
}

/** x [N, 4] → y [N, 4], the running sum down axis 0: a sequence, each row depending on those before it. */
function runningSumModel(): Uint8Array {
  return buildModel({
    nodes: [node('CumSum', ['x', 'axis0'], ['y'], 'cumsum')],
    initializers: [tensor('axis0', BigInt64Array.of(0n), [])],
    inputs: [{ name: 'x', dims: [-1, 4] }],
    outputs: [{ name: 'y', dims: [-1, 4] }],
  });
}

describe('an open axis 0 that is no batch axis', () => {
  const requests = [Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6, 7, 8, 9, 10, 11, 12), Float32Array.of(-1, 0.5, 2, 8), Float32Array.of(3, 3, 3, 3)];
  /** onnxruntime-node's y for each request run alone. */
  async function alone(model: Uint8Array): Promise<{ dims: number[]; data: number[] }[]> {
    const session = await ort.InferenceSession.create(model);
    try {
      return await Promise.all(requests.map(async (x) => {
        const y = (await session.run({ x: new ort.Tensor('float32', x, [x.length / 4, 4]) })).y!;
        return { dims: [...y.dims], data: Array.from(y.data as Float32Array) };
      }));
    } finally {
      await session.release();
    }
  }
  const got = (results: Awaited<ReturnType<Engine['infer']>>[]): { dims: number[]; data: number[] }[] =>
    results.map((r) => ({ dims: [...r.y!.dims], data: Array.from(r.y!.data as Float32Array) }));

  it('outputs without a row per input row: found at build, requests run unbatched, each result onnxruntime-node\'s alone', async () => {
    const model = pairsModel();
    const engine = await Engine.build(model, SINGLE_THREAD);
    try {
      expect(engine.batching).toMatchObject({ batchAxis: false, enabled: false, maxBatchSize: 1 });
      expect(engine.batching.reason).toMatch(/axis 0 is open but is no batch axis: output 'y' has 2 rows on axis 0 for 1 input row .*unbatched/);
      expect(got(await Promise.all(requests.map((x) => engine.infer(x))))).toEqual(await alone(model));
    } finally {
      await engine.dispose();
    }
  });

  it('rows that depend on each other: found at build, and merged requests no longer mix', async () => {
    const model = runningSumModel();
    const engine = await Engine.build(model, SINGLE_THREAD);
    try {
      expect(engine.batching).toMatchObject({ batchAxis: false, enabled: false });
      expect(engine.batching.reason).toMatch(/row 1 of output 'y' changes when another row runs beside it/);
      expect(got(await Promise.all(requests.map((x) => engine.infer(x))))).toEqual(await alone(model));
    } finally {
      await engine.dispose();
    }
  });

  it('with maxBatchSize given: still checked at build, unbatched, and a warning says the size was not applied', async () => {
    for (const [model, why] of [[pairsModel(), /output 'y' has 2 rows on axis 0 for 1 input row/], [runningSumModel(), /row 1 of output 'y' changes when another row runs beside it/]] as const) {
      const { value: engine, warnings } = await withWarnings('EMODEL', () => Engine.build(model, { ...SINGLE_THREAD, maxBatchSize: 5, maxQueueDelayMs: 60_000 }));
      try {
        expect(engine.batching).toMatchObject({ batchAxis: false, enabled: false, maxBatchSize: 1 });
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/maxBatchSize 5 was given, but axis 0 is no batch axis: /);
        expect(warnings[0]).toMatch(why);
        // Unbatched, the delay that would have waited for 5 rows does not apply.
        expect(got(await Promise.all(requests.map((x) => engine.infer(x))))).toEqual(await alone(model));
      } finally {
        await engine.dispose();
      }
    }
  });

  it('where nothing can be checked at build (an open width, maxBatchSize given): a lone request gets its outputs as they are, merged ones run apart, one warning', async () => {
    // x [N, W]: without `shapes` no row can be made at build, so no check runs.
    const model = pairsModel(-1);
    const as = (x: Float32Array) => ({ x: { data: x, dims: [x.length / 4, 4] } });
    const want = await alone(model);
    // The queue delay never runs out: the four requests (5 rows) run as one batch of 5.
    const engine = await Engine.build(model, { ...SINGLE_THREAD, maxBatchSize: 5, maxQueueDelayMs: 60_000 });
    const lone = await Engine.build(model, { ...SINGLE_THREAD, maxBatchSize: 5 });
    try {
      expect(engine.batching.batchAxis).toBe(true);
      const { value: results, warnings } = await withWarnings('EMODEL', () => Promise.all(requests.map((x) => engine.infer(as(x)))));
      expect(got(results)).toEqual(want);
      expect(engine.stats()).toMatchObject({ batchesRunApart: 1, succeeded: 4 });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/a batch of 5 rows merged from 4 requests failed \(output 'y' has 10 rows on axis 0 for a batch of 5\)/);
      // Before, a lone request failed too: "output 'y' has 4 rows on axis 0 for a batch of 2".
      expect(got([await lone.infer(as(requests[1]!))])).toEqual([want[1]]);
    } finally {
      await engine.dispose();
      await lone.dispose();
    }
  });
});
