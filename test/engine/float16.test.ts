/**
 * float16 inputs and outputs, carried as their bits in a Uint16Array. Where the runtime has
 * Float16Array (Node 24 and 26 in CI), onnxruntime-node 1.30 refuses every float16 input it
 * is given ("not enough space: expected 8, got 0", microsoft/onnxruntime#32323): the engine
 * hands it the bits, and takes a Float16Array, or an onnxruntime Tensor whose data is one,
 * from the caller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { writeModel } from '../../src/onnx/model.js';
import { DataType, onnx } from '../../src/onnx/proto.js';
import { failure, ort } from './helpers.js';

/** x float16 [N, 4] → Relu → y float16 [N, 4]. */
function reluHalf(): Uint8Array {
  return writeModel(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'relu-half',
      node: [makeNode('Relu', ['x'], ['y'], 'relu')],
      input: [makeValueInfo('x', DataType.FLOAT16, ['N', 4])],
      output: [makeValueInfo('y', DataType.FLOAT16, ['N', 4])],
    },
  }));
}

// 1, -1, 2.5, 0, -0.5, 65504 (the largest half), 0.00006103515625 (the smallest normal), -2.
const HALF_BITS = Uint16Array.of(0x3c00, 0xbc00, 0x4100, 0x0000, 0xb800, 0x7bff, 0x0400, 0xc000);
/** Relu on half bits, by the sign bit: the independent reference. */
const reluBits = (bits: Uint16Array): number[] => Array.from(bits, (b) => (b & 0x8000 ? 0 : b));

const Float16ArrayCtor = (globalThis as { Float16Array?: new (values: number | ArrayLike<number> | ArrayBufferLike, offset?: number, length?: number) => ArrayBufferView & ArrayLike<number> }).Float16Array;

describe('float16 inputs and outputs', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.build(reluHalf(), { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
  });
  afterAll(async () => {
    await engine?.dispose();
  });

  it('runs on the bits in a Uint16Array, alone and merged, and answers in bits', async () => {
    expect(engine.inputs).toEqual([{ name: 'x', dtype: 'float16', shape: [-1, 4] }]);
    expect(engine.batching.batchAxis).toBe(true);
    const [a, b, both] = await Promise.all([
      engine.infer(HALF_BITS.slice(0, 4)),
      engine.infer({ x: { data: HALF_BITS.slice(4), dims: [1, 4] } }),
      engine.infer(HALF_BITS.slice()),
    ]);
    expect(a.y!.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(a.y!.data as Uint16Array)).toEqual(reluBits(HALF_BITS.subarray(0, 4)));
    expect(Array.from(b.y!.data as Uint16Array)).toEqual(reluBits(HALF_BITS.subarray(4)));
    expect(both.y!.dims).toEqual([2, 4]);
    expect(Array.from(both.y!.data as Uint16Array)).toEqual(reluBits(HALF_BITS));
  });

  it.runIf(Float16ArrayCtor !== undefined)('takes a Float16Array, an onnxruntime Tensor over one, and writes into one (where the runtime has it)', async () => {
    const F16 = Float16ArrayCtor!;
    const values = new F16(HALF_BITS.buffer.slice(0), 0, 8);
    expect(Array.from(values).slice(0, 3)).toEqual([1, -1, 2.5]);
    const want = reluBits(HALF_BITS);
    const bare = await engine.infer(values as never);
    expect(Array.from(bare.y!.data as Uint16Array)).toEqual(want);
    // onnxruntime-common makes a float16 Tensor's data a Float16Array here.
    const tensor = new ort.Tensor('float16', HALF_BITS.slice(), [2, 4]);
    expect(tensor.data.constructor.name).toBe('Float16Array');
    expect(Array.from((await engine.infer({ x: tensor })).y!.data as Uint16Array)).toEqual(want);
    const into = new F16(8);
    const written = await engine.infer(values as never, { outputs: { y: into as never } });
    expect(Array.from(new Uint16Array(into.buffer))).toEqual(want);
    expect((written.y!.data as Uint16Array).buffer).toBe(into.buffer);
    expect(Array.from(into)).toEqual([1, 0, 2.5, 0, 0, 65504, 0.00006103515625, 0]);
  });

  it('refuses a Float32Array for a float16 input, naming what it takes', async () => {
    const e = await failure(engine.infer(new Float32Array(4)));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: expect.stringMatching(/^float16 \(Uint16Array.* or a Buffer of its bytes\)$/), received: 'Float32Array' } });
  });
});
