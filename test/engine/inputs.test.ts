import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { CLS_ITEM, CLS_MODEL, REC_MODEL, clsInput, failure, ort } from './helpers.js';
import { buildModel, node, withAttrs } from '../quantize/graphs.js';

describe('input mistakes give EINPUT with the tensor, expected and received', () => {
  let engine: Engine;
  let dynamic: Engine;
  beforeAll(async () => {
    engine = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 8, shapes: { x: [-1, ...CLS_ITEM] } });
    // Without `shapes` the classifier's H and W are dynamic.
    dynamic = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
  });
  afterAll(async () => {
    await engine?.dispose();
    await dynamic?.dispose();
  });

  it('unknown input name', async () => {
    const e = await failure(engine.infer({ y: { data: clsInput(1), dims: [1, 3, 48, 192] } }));
    expect(e.code).toBe('EINPUT');
    expect(e.details).toMatchObject({ tensor: 'y', expected: expect.stringContaining('x'), received: expect.stringContaining("unknown input 'y'") });
  });

  it('missing input', async () => {
    const e = await failure(engine.infer({}));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: expect.stringContaining('missing') } });
  });

  it('wrong dtype: bare typed array, record, onnxruntime Tensor', async () => {
    const bare = await failure(engine.infer(new Int32Array(3 * 48 * 192)));
    expect(bare).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: expect.stringContaining('float32'), received: 'Int32Array' } });
    const rec = await failure(engine.infer({ x: { data: new Float64Array(3 * 48 * 192) as never, dims: [1, 3, 48, 192] } }));
    expect(rec).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: expect.stringContaining('Float64Array') } });
    const t = await failure(engine.infer({ x: new ort.Tensor('int32', new Int32Array(3 * 48 * 192), [1, 3, 48, 192]) }));
    expect(t).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'dtype float32', received: 'dtype int32' } });
  });

  it('wrong shape', async () => {
    const e = await failure(engine.infer({ x: { data: new Float32Array(3 * 48 * 100), dims: [1, 3, 48, 100] } }));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'shape [?,3,48,192]', received: 'shape [1,3,48,100]' } });
    const rank = await failure(engine.infer({ x: { data: new Float32Array(3 * 48 * 192), dims: [3, 48, 192] } }));
    expect(rank.details.received).toBe('shape [3,48,192]');
  });

  it('dims that are not non-negative integers are shown as given (NaN, not null)', async () => {
    const e = await failure(engine.infer({ x: { data: new Float32Array(3 * 48 * 192), dims: [NaN, 3, 48, 192] } }));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: 'dims [NaN,3,48,192]' } });
    expect(e.details.expected).toContain('non-negative integers');
    // BigInts and strings as written, not as the numbers they print as.
    const big = await failure(engine.infer({ x: { data: new Float32Array(3 * 48 * 192), dims: [1n, 3n, 48n, 192n] as unknown as number[] } }));
    expect(big.details.received).toBe('dims [1n,3n,48n,192n]');
    const text = await failure(engine.infer({ x: { data: new Float32Array(3 * 48 * 192), dims: ['1', 3, 48, 192] as unknown as number[] } }));
    expect(text.details.received).toBe('dims ["1",3,48,192]');
  });

  it('wrong byte length', async () => {
    const bare = await failure(engine.infer(new Float32Array(100)));
    expect(bare).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: expect.stringContaining(`${3 * 48 * 192 * 4} bytes`), received: '400 bytes' } });
    const odd = await failure(engine.infer(Buffer.alloc(7)));
    expect(odd).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: '7 bytes' } });
    const rec = await failure(engine.infer({ x: { data: new Float32Array(10), dims: [1, 3, 48, 192] } }));
    expect(rec).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: '40 bytes' } });
  });

  it('detached buffer', async () => {
    const x = clsInput(1);
    const buf = x.buffer as ArrayBuffer;
    structuredClone(buf, { transfer: [buf] });
    const e = await failure(engine.infer(x));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: expect.stringContaining('detached') } });
    const rec = await failure(engine.infer({ x: { data: x, dims: [1, 3, 48, 192] } }));
    expect(rec.details.received).toContain('detached');
  });

  it('not a tensor at all', async () => {
    expect((await failure(engine.infer(42 as never))).code).toBe('EINPUT');
    expect((await failure(engine.infer(null as never))).code).toBe('EINPUT');
    expect((await failure(engine.infer({ x: 'pixels' } as never))).code).toBe('EINPUT');
    // A plain array is not a record whose keys are indices.
    const array = await failure(engine.infer([0.5, 0.5] as never));
    expect(array).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'a Buffer, a typed array or a record of tensors', received: 'Array' } });
    const view = await failure(engine.infer(new DataView(new ArrayBuffer(8)) as never));
    expect(view.details).toMatchObject({ tensor: 'x', received: 'DataView' });
  });

  it('a bare array where the shape is dynamic and no `shapes` fixes it', async () => {
    const e = await failure(dynamic.infer(clsInput(1)));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: expect.stringContaining('shapes') } });
    // With explicit dims the same data runs.
    const r = await dynamic.infer({ x: { data: clsInput(1), dims: [1, 3, 48, 192] } });
    expect(r['softmax_0.tmp_0']!.dims).toEqual([1, 2]);
  });

  it('a bare array for a model that runs unbatched takes its open axis 0 from its length', async () => {
    // x [N, 4] summed over axis 0 into y [4]: y has no batch axis, so requests run alone.
    const model = buildModel({
      nodes: [withAttrs(node('ReduceSum', ['x'], ['y'], 'sum'), { axes: [0], keepdims: 0 })],
      initializers: [],
      inputs: [{ name: 'x', dims: [-1, 4] }],
      outputs: [{ name: 'y', dims: [4] }],
      opset: 11,
    });
    const unbatched = await Engine.build(model, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    const reference = await ort.InferenceSession.create(model);
    try {
      expect(unbatched.batching.batchAxis).toBe(false);
      const x = Float32Array.from({ length: 12 }, (_, i) => i * 0.25 - 1);
      const got = await unbatched.infer(x);
      const want = await reference.run({ x: new ort.Tensor('float32', x, [3, 4]) });
      expect(got.y!.dims).toEqual([4]);
      expect(Array.from(got.y!.data as Float32Array)).toEqual(Array.from(want.y!.data as Float32Array));
      expect(await failure(unbatched.infer(new Float32Array(6)))).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'a multiple of 16 bytes ([?,4] float32)', received: '24 bytes' } });
    } finally {
      await unbatched.dispose();
      await reference.release();
    }
  });

  it('a run ONNX Runtime refuses rejects that request with EMODEL, and the engine goes on', async () => {
    // Height 0 passes the engine's checks (H is dynamic) but not ORT's Conv.
    const e = await failure(dynamic.infer({ x: { data: new Float32Array(0), dims: [1, 3, 0, 192] } }));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toMatch(/onnxruntime run failed: .*Conv/);
    expect(await dynamic.metrics()).toMatch(/nv_inference_request_failure\{[^}]*reason="BACKEND"\} 1/);
    const r = await dynamic.infer({ x: { data: clsInput(3), dims: [1, 3, 48, 192] } });
    expect(r['softmax_0.tmp_0']!.dims).toEqual([1, 2]);
  });

  it('counts refused requests as failures in stats and metrics', async () => {
    const s = engine.stats();
    expect(s.failed.EINPUT).toBeGreaterThanOrEqual(10);
    expect(await engine.metrics()).toMatch(/nv_inference_request_failure\{[^}]*reason="OTHER"\} [1-9]/);
  });

  it('a shape range caps each run on the batch axis (a longer request runs split) and bounds the other dims', async () => {
    const ranged = await Engine.build(CLS_MODEL, {
      backend: 'onnxruntime', instances: 1, threadsPerInstance: 1,
      shapes: { x: { min: [1, 3, 48, 192], opt: [1, 3, 48, 192], max: [4, 3, 48, 192] } },
    });
    try {
      // The probe measures sizes up to the range's max only.
      const probed = Object.keys(ranged.batching.probe!.perRowMs).map(Number);
      expect(Math.max(...probed)).toBeLessThanOrEqual(4);
      const mb = ranged.batching.maxBatchSize;
      expect(mb).toBeLessThanOrEqual(4);
      const five = await ranged.infer(clsInput(1, 5));
      expect(five['softmax_0.tmp_0']!.dims).toEqual([5, 2]);
      expect(ranged.stats().batches).toBe(Math.ceil(5 / mb));
      const r = await ranged.infer(clsInput(1, 4));
      expect(r['softmax_0.tmp_0']!.dims).toEqual([4, 2]);
    } finally {
      await ranged.dispose();
    }
    await expect(Engine.build(CLS_MODEL, {
      backend: 'onnxruntime', maxBatchSize: 8, shapes: { x: { min: [1, 3, 48, 192], opt: [1, 3, 48, 192], max: [4, 3, 48, 192] } },
    })).rejects.toMatchObject({ code: 'EINPUT', details: { tensor: 'maxBatchSize' } });
  });

  it('output destinations: unknown name, wrong dtype, too small, misaligned, detached', async () => {
    const out = 'softmax_0.tmp_0';
    const refusedBefore = engine.stats().failed.EINPUT ?? 0;
    let e = await failure(engine.infer(clsInput(1), { outputs: { logits: new Float32Array(2) } }));
    expect(e.details).toMatchObject({ tensor: 'logits', expected: expect.stringContaining(out), received: 'an unknown name' });
    e = await failure(engine.infer(clsInput(1), { outputs: { [out]: new Int32Array(2) } }));
    expect(e.details).toMatchObject({ tensor: out, expected: 'a float32 typed array or a Buffer', received: 'Int32Array' });
    e = await failure(engine.infer(clsInput(1, 2), { outputs: { [out]: new Float32Array(2) } }));
    expect(e.details).toMatchObject({ tensor: out, expected: 'at least 16 bytes for [2,2] float32', received: '8 bytes' });
    e = await failure(engine.infer(clsInput(1), { outputs: { [out]: Buffer.alloc(12).subarray(1, 9) } }));
    expect(e.details).toMatchObject({ tensor: out, expected: 'memory aligned to 4 bytes for float32', received: 'a view at byte offset 1' });
    const detached = new Float32Array(2);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    e = await failure(engine.infer(clsInput(1), { outputs: { [out]: detached } }));
    expect(e.details).toMatchObject({ tensor: out, received: 'a detached buffer' });
    // Refused before they were queued: nothing ran for them.
    expect((engine.stats().failed.EINPUT ?? 0) - refusedBefore).toBe(5);
  });

  it('an output of data-dependent shape that does not fit rejects that request once computed', async () => {
    const rec = await Engine.build(REC_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    try {
      const out = rec.outputs[0]!.name;
      expect(Object.keys(rec.allocateOutputs())).toEqual([]); // its time axis depends on the width
      const x = { x: { data: new Float32Array(3 * 48 * 160).fill(0.1), dims: [1, 3, 48, 160] } };
      const e = await failure(rec.infer(x, { outputs: { [out]: new Float32Array(10) } }));
      expect(e.code).toBe('EINPUT');
      expect(e.details).toMatchObject({ tensor: out, expected: expect.stringMatching(/^at least \d+ bytes for the result \[1,\d+,\d+\] float32$/), received: '40 bytes' });
      expect(rec.stats()).toMatchObject({ succeeded: 0, failed: { EINPUT: 1 }, batches: 1 });
      // Memory that fits takes the same result the engine gives without it.
      const plain = await rec.infer(x);
      const big = new Float32Array(plain[out]!.data.length + 5);
      const r = await rec.infer(x, { outputs: { [out]: big } });
      expect(r[out]!.data.length).toBe(plain[out]!.data.length);
      expect(Buffer.compare(Buffer.from(big.buffer, 0, plain[out]!.data.byteLength), Buffer.from(plain[out]!.data.buffer, plain[out]!.data.byteOffset, plain[out]!.data.byteLength))).toBe(0);
    } finally {
      await rec.dispose();
    }
  });

  it('an unknown infer option (a typo would silently drop a timeout) or options that are not an object', async () => {
    const typo = await failure(engine.infer(clsInput(1), { timeout: 100 } as never));
    expect(typo).toMatchObject({ code: 'EINPUT', details: { tensor: 'timeout', expected: "an option of infer (did you mean 'timeoutMs'?)", received: 'an unknown option' } });
    expect((await failure(engine.infer(clsInput(1), { Priority: 1 } as never))).details.expected).toContain("'priority'");
    expect((await failure(engine.infer(clsInput(1), 100 as never))).details).toMatchObject({ tensor: 'options', received: 'number' });
    expect(Object.keys(await engine.infer(clsInput(1), { timeoutMs: 10_000, priority: 1 }))).toEqual(['softmax_0.tmp_0']);
  });

  it('use after dispose gives EDISPOSED', async () => {
    const e = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } });
    await e.dispose();
    await e.dispose();
    expect((await failure(e.infer(clsInput(1)))).code).toBe('EDISPOSED');
  });

  it('`await using` disposes the engine at the end of its scope', async () => {
    let outside: Engine;
    {
      await using e = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } });
      outside = e;
      expect(Object.keys(await e.infer(clsInput(1)))).toEqual(['softmax_0.tmp_0']);
    }
    expect((await failure(outside.infer(clsInput(1)))).code).toBe('EDISPOSED');
  });
});
