import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { failure, ort } from './helpers.js';
import { DIM, embeddingModel, embeddingRequest } from './multi-input.js';

type Request = ReturnType<typeof embeddingRequest>;

function ortFeeds(req: Request): Record<string, InstanceType<typeof ort.Tensor>> {
  return Object.fromEntries(
    Object.entries(req).map(([name, t]) => [name, t.data instanceof BigInt64Array ? new ort.Tensor('int64', t.data, t.dims) : new ort.Tensor('float32', t.data, t.dims)]),
  );
}

describe('a model with several inputs, int64 inputs and an int64 output', () => {
  const model = embeddingModel();
  let engine: Engine;
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  beforeAll(async () => {
    engine = await Engine.build(model, { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1, maxBatchSize: 8 });
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await engine?.dispose();
    await session?.release();
  });

  it('reports every input and output with its dtype and dynamic axes', () => {
    expect(engine.inputs).toEqual([
      { name: 'input_ids', dtype: 'int64', shape: [-1, -1] },
      { name: 'attention_mask', dtype: 'int64', shape: [-1, -1] },
      { name: 'scale', dtype: 'float32', shape: [-1, 1] },
    ]);
    expect(engine.outputs).toEqual([
      { name: 'embedding', dtype: 'float32', shape: [-1, DIM] },
      { name: 'top', dtype: 'int64', shape: [-1] },
    ]);
    expect(engine.batching.enabled).toBe(true);
  });

  // Not bit for bit: ONNX Runtime's ReduceSum over 7 tokens gives a row other last bits
  // once the batch has more rows (onnxruntime-node alone, no engine: up to 3e-8 here), so
  // rows are compared within 1e-6 relative; a row misplaced in the merge or the split
  // would be off by far more. The arg-max is compared exactly.
  it('merges concurrent requests of the same sequence length; each result equals onnxruntime-node run on that request alone (within float rounding)', async () => {
    // Lengths 5 and 7 interleaved (merged only with their own length), 1-3 rows each, some padded.
    const requests = Array.from({ length: 24 }, (_, i) => embeddingRequest(i, 1 + (i % 3), i % 2 ? 7 : 5, i % 4 === 0 ? 2 : 0));
    const before = engine.stats();
    const results = await Promise.all(requests.map((r) => engine.infer(r)));
    const after = engine.stats();
    expect(after.batches - before.batches).toBeLessThan(requests.length); // some merged
    for (let i = 0; i < requests.length; i++) {
      const want = await session.run(ortFeeds(requests[i]!));
      const got = results[i]!;
      expect(got.embedding!.dims).toEqual(want.embedding!.dims);
      expect(got.embedding!.data).toBeInstanceOf(Float32Array);
      const wantEmbedding = want.embedding!.data as Float32Array;
      (got.embedding!.data as Float32Array).forEach((v, k) => expect(Math.abs(v - wantEmbedding[k]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(wantEmbedding[k]!))));
      expect(got.top!.data).toBeInstanceOf(BigInt64Array);
      expect(got.top!.dims).toEqual([requests[i]!.scale.dims[0]]);
      expect(Array.from(got.top!.data as BigInt64Array)).toEqual(Array.from(want.top!.data as BigInt64Array));
    }
  });

  it('refuses a bare typed array, a missing input, an int32 id tensor, and inputs whose batches differ, naming the tensor', async () => {
    const req = embeddingRequest(1, 2, 5);
    const bare = await failure(engine.infer(new BigInt64Array(10)));
    expect(bare).toMatchObject({ code: 'EINPUT', details: { tensor: 'inputs', expected: expect.stringContaining('input_ids, attention_mask, scale') } });
    const { scale: _dropped, ...missing } = req;
    expect((await failure(engine.infer(missing))).details).toMatchObject({ tensor: 'scale', received: 'nothing (missing input)' });
    const int32 = await failure(engine.infer({ ...req, input_ids: { data: new Int32Array(10), dims: [2, 5] } }));
    expect(int32.details).toMatchObject({ tensor: 'input_ids', expected: expect.stringContaining('int64') });
    const rows = await failure(engine.infer({ ...req, scale: { data: new Float32Array(3), dims: [3, 1] } }));
    expect(rows.details).toMatchObject({ tensor: 'scale', expected: "batch 2 on axis 0 (as input 'input_ids')", received: 'batch 3' });
  });

  it('refuses inputs whose axes the model names alike but whose sizes differ, before queueing; accepted requests are unaffected', async () => {
    const accepted = [engine.infer(embeddingRequest(4, 2, 5)), engine.infer(embeddingRequest(5, 1, 5))];
    const req = embeddingRequest(1, 2, 5);
    const e = await failure(engine.infer({ ...req, attention_mask: { data: new BigInt64Array(12), dims: [2, 6] } }));
    expect(e.details).toMatchObject({ tensor: 'attention_mask', expected: "5 on axis 1 (the model's axis 'L', as input 'input_ids' has it)", received: 'shape [2,6]' });
    for (const r of await Promise.all(accepted)) expect(r.embedding!.data.length).toBeGreaterThan(0);
  });

  it("refuses a 'shapes' option that gives axes the model names alike different sizes", async () => {
    const e = await failure(Engine.build(model, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, shapes: { input_ids: [-1, 16], attention_mask: [-1, 8] } }));
    expect(e.details).toMatchObject({ tensor: 'shapes.attention_mask', expected: "16 on axis 1 (the model's axis 'L', as shapes.input_ids has it)", received: '8' });
    const range = { min: [1, 4], opt: [4, 16], max: [8, 32] };
    const ok = await Engine.build(model, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 4, shapes: { input_ids: range, attention_mask: range } });
    await ok.dispose();
  });
});
