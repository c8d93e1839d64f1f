import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel, writeModel } from '../../src/onnx/model.js';
import { onnx, toNumber } from '../../src/onnx/proto.js';
import { upgradeOpset } from '../../src/quantize/opset.js';
import { buildModel, node, random, randomArray, withAttrs } from './graphs.js';

function floatAttrs(n: ReturnType<typeof node>, attrs: Record<string, number>) {
  for (const [name, f] of Object.entries(attrs)) n.attribute = [...(n.attribute ?? []), onnx.AttributeProto.create({ name, f, type: onnx.AttributeProto.AttributeType.FLOAT })];
  return n;
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run(feeds);
  await s.release();
  return s.outputNames.map((n) => out[n]!.data as Float32Array);
}

describe('opset upgrade to 13', () => {
  it('rewrites ops whose attributes became inputs, keeps results identical', async () => {
    const rand = random(3);
    const bytes = buildModel({
      opset: 9,
      nodes: [
        floatAttrs(node('Clip', ['x'], ['c'], 'clip'), { min: -0.5, max: 0.7 }),
        withAttrs(node('Slice', ['c'], ['s'], 'slice'), { starts: [0, 1], ends: [2, 4], axes: [0, 2] }),
        withAttrs(node('Unsqueeze', ['s'], ['u'], 'unsq'), { axes: [0] }),
        withAttrs(node('Squeeze', ['u'], ['q'], 'sq'), { axes: [0] }),
        withAttrs(node('Softmax', ['q'], ['y1'], 'softmax_axis1'), { axis: 1 }), // rank 3: old meaning differs from 13's
        withAttrs(node('Softmax', ['q'], ['y2'], 'softmax_last'), { axis: 2 }),
        withAttrs(node('Pad', ['q'], ['p'], 'pad'), { pads: [0, 1, 0, 0, 1, 0] }),
        node('Dropout', ['p'], ['y3'], 'dropout'),
      ],
      initializers: [],
      inputs: [{ name: 'x', dims: [2, 3, 5] }],
      outputs: [{ name: 'y1', dims: [2, 3, 3] }, { name: 'y2', dims: [2, 3, 3] }, { name: 'y3' }],
    });
    const model = decodeModel(bytes);
    expect(upgradeOpset(model)).toEqual({ from: 9, to: 13 });
    expect(toNumber(model.opsetImport![0]!.version)).toBe(13);
    const x = new ort.Tensor('float32', randomArray(30, rand, 2), [2, 3, 5]);
    const before = await run(bytes, { x });
    const after = await run(writeModel(model), { x });
    expect(after).toEqual(before);
    expect(model.graph!.node!.some((n) => n.opType === 'Dropout')).toBe(false);
    expect(model.graph!.node!.find((n) => n.name === 'softmax_last')!.opType).toBe('Softmax');
  });

  it('leaves opset 13+ models alone and refuses older than 9', () => {
    const m13 = decodeModel(buildModel({ opset: 13, nodes: [node('Relu', ['x'], ['y'], 'r')], initializers: [], inputs: [{ name: 'x', dims: [1] }], outputs: [{ name: 'y' }] }));
    expect(upgradeOpset(m13)).toEqual({ from: 13, to: 13 });
    const m8 = decodeModel(buildModel({ opset: 8, nodes: [node('Relu', ['x'], ['y'], 'r')], initializers: [], inputs: [{ name: 'x', dims: [1] }], outputs: [{ name: 'y' }] }));
    expect(() => upgradeOpset(m8)).toThrow(expect.objectContaining({ code: 'EMODEL' }));
  });
});
