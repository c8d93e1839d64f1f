/**
 * A model whose weights are external data, in a file beside it (as large exports keep them,
 * model.onnx with model.onnx_data). The engine hands models on as bytes, where the relative
 * path no longer resolved: Engine.build(path) failed with onnxruntime's "External data path
 * does not exist", at FP32 and INT8 alike.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { writeModel } from '../../src/onnx/model.js';
import { DataType, onnx } from '../../src/onnx/proto.js';
import { failure, ort } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'trtn-external-'));
const MODEL = join(dir, 'model.onnx');
const WEIGHTS = join(dir, 'model.onnx_data');

/** y = x · W + b, W [4, 3] and b [3] stored one after the other in model.onnx_data. */
function writeExternalModel(scale: number): void {
  const w = Float32Array.from({ length: 12 }, (_, i) => (i * 0.1 - 0.5) * scale);
  const b = Float32Array.of(0.25, -0.5, 1);
  writeFileSync(WEIGHTS, Buffer.concat([Buffer.from(w.buffer), Buffer.from(b.buffer)]));
  const external = (name: string, dims: number[], offset: number, length: number) => onnx.TensorProto.create({
    name, dims, dataType: DataType.FLOAT, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [{ key: 'location', value: 'model.onnx_data' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  });
  writeFileSync(MODEL, writeModel(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'external',
      node: [makeNode('MatMul', ['x', 'w'], ['xw'], 'matmul'), makeNode('Add', ['xw', 'b'], ['y'], 'bias')],
      initializer: [external('w', [4, 3], 0, 48), external('b', [3], 48, 12)],
      input: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
      output: [makeValueInfo('y', DataType.FLOAT, ['N', 3])],
    },
  })));
}

const x = Float32Array.of(1, 2, 3, 4, -1, 0.5, 0, 2);

/** onnxruntime-node's y for x, the model loaded from its path (it reads the external file itself). */
async function reference(): Promise<number[]> {
  const session = await ort.InferenceSession.create(MODEL);
  try {
    return Array.from((await session.run({ x: new ort.Tensor('float32', x, [2, 4]) })).y!.data as Float32Array);
  } finally {
    await session.release();
  }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a model with external data', () => {
  it('builds from its path at FP32 (onnxruntime-node\'s result) and INT8; the cache key covers the weights', async () => {
    writeExternalModel(1);
    const want = await reference();
    const cacheDir = join(dir, 'cache');
    const options = { backend: 'onnxruntime' as const, instances: 1, threadsPerInstance: 1, cacheDir };
    const fp32 = await Engine.build(MODEL, options);
    expect(fp32.cache.status).toBe('miss');
    expect(Array.from((await fp32.infer(x)).y!.data as Float32Array)).toEqual(want);
    await fp32.dispose();
    const again = await Engine.build(MODEL, options);
    expect(again.cache.status).toBe('hit');
    await again.dispose();

    const int8 = await Engine.build(MODEL, { ...options, precision: 'int8', calibration: [x.subarray(0, 4), x.subarray(4)] });
    const got = Array.from((await int8.infer(x)).y!.data as Float32Array);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(0.05 * Math.max(1, Math.abs(want[i]!))));
    await int8.dispose();

    // New weights, the same model.onnx: a new cache entry and the new weights' result.
    writeExternalModel(3);
    const changed = await reference();
    expect(changed).not.toEqual(want);
    const rebuilt = await Engine.build(MODEL, options);
    expect(rebuilt.cache.status).toBe('miss');
    expect(Array.from((await rebuilt.infer(x)).y!.data as Float32Array)).toEqual(changed);
    await rebuilt.dispose();
  });

  it('from bytes, which cannot point to the file: EMODEL naming the tensor and the file', async () => {
    writeExternalModel(1);
    const e = await failure(Engine.build(readFileSync(MODEL), { backend: 'onnxruntime' }));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toMatch(/tensor 'w' is stored in external file 'model.onnx_data', which model bytes cannot point to: pass the model as a path/);
  });
});
