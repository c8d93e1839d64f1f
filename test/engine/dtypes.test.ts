/**
 * Tensors of float64, int16, uint16, uint32 and uint64, which onnxruntime-node carries and
 * models have (scikit-learn exports compute in float64): before, Engine.build refused such a
 * model ("input 'x': tensor type 'float64' is not supported by the engine"). A linear model
 * in float64 beside integer tensors at their types' limits, each result checked against
 * arithmetic done here, alone and merged into one batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { CTORS } from '../../src/backends/onnxruntime/mailbox.mjs';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { makeTensor, writeModel } from '../../src/onnx/model.js';
import { DataType, onnx } from '../../src/onnx/proto.js';
import { ARRAY_OF } from '../../src/tensor.js';
import { failure } from './helpers.js';

const W = Float64Array.of(0.1, -2, 1e-9, 3, 7.25, 0.5, -1e10, 1 / 3); // [4, 2]
const B = Float64Array.of(1e-17, -0.75);

/**
 * y = x·W + b (float64); neg16 = -i16; sum = u16 + u32 + u64 in float64; and u16, u32, u64
 * through Identity.
 */
function wideTypes(): Uint8Array {
  return writeModel(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'wide-types',
      node: [
        makeNode('MatMul', ['x', 'w'], ['xw'], 'mm'),
        makeNode('Add', ['xw', 'b'], ['y'], 'add'),
        makeNode('Neg', ['i16'], ['neg16'], 'neg'),
        makeNode('Cast', ['u16'], ['c16'], 'c16', { to: DataType.DOUBLE }),
        makeNode('Cast', ['u32'], ['c32'], 'c32', { to: DataType.DOUBLE }),
        makeNode('Cast', ['u64'], ['c64'], 'c64', { to: DataType.DOUBLE }),
        makeNode('Add', ['c16', 'c32'], ['s1'], 's1'),
        makeNode('Add', ['s1', 'c64'], ['sum'], 's2'),
        makeNode('Identity', ['u16'], ['u16_out'], 'i16'),
        makeNode('Identity', ['u32'], ['u32_out'], 'i32'),
        makeNode('Identity', ['u64'], ['u64_out'], 'i64'),
      ],
      initializer: [makeTensor('w', W, [4, 2]), makeTensor('b', B, [2])],
      input: [
        makeValueInfo('x', DataType.DOUBLE, ['N', 4]),
        makeValueInfo('i16', DataType.INT16, ['N', 3]),
        makeValueInfo('u16', DataType.UINT16, ['N', 3]),
        makeValueInfo('u32', DataType.UINT32, ['N', 3]),
        makeValueInfo('u64', DataType.UINT64, ['N', 3]),
      ],
      output: [
        makeValueInfo('y', DataType.DOUBLE, ['N', 2]),
        makeValueInfo('neg16', DataType.INT16, ['N', 3]),
        makeValueInfo('sum', DataType.DOUBLE, ['N', 3]),
        makeValueInfo('u16_out', DataType.UINT16, ['N', 3]),
        makeValueInfo('u32_out', DataType.UINT32, ['N', 3]),
        makeValueInfo('u64_out', DataType.UINT64, ['N', 3]),
      ],
    },
  }));
}

interface Request {
  x: Float64Array;
  i16: Int16Array;
  u16: Uint16Array;
  u32: Uint32Array;
  u64: BigUint64Array;
}

/** `rows` rows from `seed`, with each type's extremes in every row. */
function request(seed: number, rows: number): Request {
  const r: Request = { x: new Float64Array(rows * 4), i16: new Int16Array(rows * 3), u16: new Uint16Array(rows * 3), u32: new Uint32Array(rows * 3), u64: new BigUint64Array(rows * 3) };
  for (let k = 0; k < rows; k++) {
    const s = seed * 10 + k;
    r.x.set([s * 0.37 - 2, Math.sqrt(s + 2), -1 / (s + 3), 1e-3 * s], k * 4);
    r.i16.set([-32768, 32767, s - 7], k * 3);
    r.u16.set([65535, 0, s], k * 3);
    r.u32.set([4294967295, 1, s * 1000], k * 3);
    r.u64.set([2n ** 64n - 1n, 2n ** 53n + 1n, BigInt(s)], k * 3);
  }
  return r;
}

const feeds = (r: Request) => {
  const rows = r.x.length / 4;
  return { x: { data: r.x, dims: [rows, 4] }, i16: { data: r.i16, dims: [rows, 3] }, u16: { data: r.u16, dims: [rows, 3] }, u32: { data: r.u32, dims: [rows, 3] }, u64: { data: r.u64, dims: [rows, 3] } };
};

/** The outputs computed here, in float64 as the model does (the sum's order: u16 + u32, then + u64). */
function expected(r: Request) {
  const rows = r.x.length / 4;
  const y = new Float64Array(rows * 2);
  for (let k = 0; k < rows; k++) {
    for (let j = 0; j < 2; j++) {
      let acc = 0;
      for (let i = 0; i < 4; i++) acc += r.x[k * 4 + i]! * W[i * 2 + j]!;
      y[k * 2 + j] = acc + B[j]!;
    }
  }
  return {
    y,
    neg16: Int16Array.from(r.i16, (v) => -v), // -(-32768) wraps to -32768 in int16
    sum: Float64Array.from(r.u16, (v, i) => v + r.u32[i]! + Number(r.u64[i]!)),
    u16_out: r.u16,
    u32_out: r.u32,
    u64_out: r.u64,
  };
}

describe('float64, int16, uint16, uint32 and uint64 tensors', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.build(wideTypes(), { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxQueueDelayMs: 5 });
  });
  afterAll(async () => {
    await engine?.dispose();
  });

  it('reports them, and gives results equal to the arithmetic, alone and merged into one batch', async () => {
    expect(engine.inputs.map((i) => [i.name, i.dtype])).toEqual([['x', 'float64'], ['i16', 'int16'], ['u16', 'uint16'], ['u32', 'uint32'], ['u64', 'uint64']]);
    expect(engine.outputs.map((o) => o.dtype)).toEqual(['float64', 'int16', 'float64', 'uint16', 'uint32', 'uint64']);
    expect(engine.batching.enabled, engine.batching.reason).toBe(true);
    const requests = [request(1, 1), request(2, 2), request(3, 1), request(4, 3)];
    const alone = [];
    for (const r of requests) alone.push(await engine.infer(feeds(r)));
    const before = engine.stats().batches;
    const merged = await Promise.all(requests.map((r) => engine.infer(feeds(r))));
    expect(engine.stats().batches - before, 'the four requests ran in fewer batches than four').toBeLessThan(4);
    for (const [k, r] of requests.entries()) {
      const want = expected(r);
      for (const got of [alone[k]!, merged[k]!]) {
        expect(got.y!.data).toBeInstanceOf(Float64Array);
        expect(got.y!.dims).toEqual([r.x.length / 4, 2]);
        const y = got.y!.data as Float64Array;
        // MatMul may sum in another order than here: within float64 rounding of the largest term (1e10 × x).
        want.y.forEach((v, i) => expect(Math.abs(y[i]! - v), `y[${i}] of request ${k}: ${y[i]} for ${v}`).toBeLessThanOrEqual(1e10 * 10 * 2 ** -50));
        expect(got.neg16!.data).toEqual(want.neg16);
        expect(got.sum!.data).toEqual(want.sum);
        expect(got.u16_out!.data).toEqual(want.u16_out);
        expect(got.u32_out!.data).toEqual(want.u32_out);
        expect(got.u64_out!.data).toEqual(want.u64_out);
      }
      // Merged, bit for bit what the request gave alone.
      expect(new Uint8Array((merged[k]!.y!.data as Float64Array).buffer, merged[k]!.y!.data.byteOffset, merged[k]!.y!.data.byteLength))
        .toEqual(new Uint8Array((alone[k]!.y!.data as Float64Array).buffer, alone[k]!.y!.data.byteOffset, alone[k]!.y!.data.byteLength));
    }
  });

  it('reads a Buffer of the bytes, writes into caller memory and into allocate()d tensors', async () => {
    const r = request(5, 2);
    const want = expected(r);
    const bytes = Buffer.from(r.x.buffer, r.x.byteOffset, r.x.byteLength);
    const into = new BigUint64Array(6);
    const got = await engine.infer({ ...feeds(r), x: { data: bytes, dims: [2, 4] } }, { outputs: { u64_out: into } });
    expect(Array.from(into)).toEqual(Array.from(want.u64_out));
    expect((got.u64_out!.data as BigUint64Array).buffer).toBe(into.buffer);
    expect(got.sum!.data).toEqual(want.sum);
    const io = engine.allocate(1);
    expect(io.x!.data).toBeInstanceOf(Float64Array);
    expect(io.u16!.data).toBeInstanceOf(Uint16Array);
    expect(io.u64!.data).toBeInstanceOf(BigUint64Array);
    const one = request(6, 1);
    for (const name of ['x', 'i16', 'u16', 'u32', 'u64'] as const) (io[name]!.data as Uint8Array).set(one[name] as unknown as Uint8Array);
    const fromIo = await engine.infer(Object.fromEntries(Object.entries(io).map(([n, t]) => [n, { data: t.data, dims: t.dims }])));
    expect(fromIo.neg16!.data).toEqual(expected(one).neg16);
    expect(fromIo.u32_out!.data).toEqual(one.u32);
  });

  it('refuses another array type with EINPUT naming the tensor and the array it takes', async () => {
    const r = feeds(request(7, 1));
    const cases: [string, unknown, string][] = [
      ['x', new Float32Array(4), 'float64 (Float64Array or a Buffer of its bytes)'],
      ['i16', new Uint16Array(3), 'int16 (Int16Array or a Buffer of its bytes)'],
      ['u32', new Int32Array(3), 'uint32 (Uint32Array or a Buffer of its bytes)'],
      ['u64', new BigInt64Array(3), 'uint64 (BigUint64Array or a Buffer of its bytes)'],
    ];
    for (const [name, data, expectedText] of cases) {
      const e = await failure(engine.infer({ ...r, [name]: { data, dims: r[name as keyof typeof r].dims } }));
      expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: name, expected: expectedText, received: (data as object).constructor.name } });
    }
    // A dtype named on the tensor that is not the input's.
    const named = await failure(engine.infer({ ...r, u16: { data: r.u16.data, dims: [1, 3], type: 'float16' } }));
    expect(named).toMatchObject({ code: 'EINPUT', details: { tensor: 'u16', expected: 'dtype uint16', received: 'dtype float16' } });
  });

  it('INT8 keeps the float64 MatMul in float, calibrating on these tensors (a Uint16Array taken as uint16), and gives the FP32 results', async () => {
    const calibration = [1, 2, 3, 4].map((seed) => feeds(request(seed, 1)));
    const int8 = await Engine.build(wideTypes(), { backend: 'onnxruntime', precision: 'int8', calibration, instances: 1, threadsPerInstance: 1 });
    try {
      expect(int8.quantization?.keptInFloat).toContainEqual({ node: 'mm', opType: 'MatMul', reason: 'inputs are not float32' });
      expect(int8.quantization?.quantizedNodes).toEqual([]);
      const r = request(8, 2);
      const [a, b] = await Promise.all([int8.infer(feeds(r)), engine.infer(feeds(r))]);
      for (const name of Object.keys(b)) expect(a[name]!.data, name).toEqual(b[name]!.data);
    } finally {
      await int8.dispose();
    }
  });

  it('the workers carry the same typed array per dtype as the engine (mailbox.mjs beside tensor.ts)', () => {
    expect(CTORS).toEqual(ARRAY_OF);
  });
});
