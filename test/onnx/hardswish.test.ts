/**
 * The hard-swish rewrite: small graphs built here in each form exporters write, run on
 * onnxruntime-node before and after against each other; graphs that only look alike are
 * left alone (test/engine/rewrite.test.ts runs it on the PaddleOCR models).
 */
import { describe, expect, it } from 'vitest';
import { decodeModel, writeModel } from '../../src/onnx/model.js';
import { fuseHardSwish } from '../../src/onnx/hardswish.js';
import { onnx, type NodeProto } from '../../src/onnx/proto.js';
import { buildModel, node, tensor } from '../quantize/graphs.js';
import { ort } from '../engine/helpers.js';

const scalar = (name: string, v: number): ReturnType<typeof tensor> => tensor(name, Float32Array.of(v), []);
const constant = (name: string, v: number): NodeProto =>
  onnx.NodeProto.create({ opType: 'Constant', output: [name], name: `c_${name}`, attribute: [onnx.AttributeProto.create({ name: 'value', t: scalar(name, v), type: onnx.AttributeProto.AttributeType.TENSOR })] });
const clipAttrs = (n: NodeProto, min: number, max: number): NodeProto => {
  n.attribute = [
    onnx.AttributeProto.create({ name: 'min', f: min, type: onnx.AttributeProto.AttributeType.FLOAT }),
    onnx.AttributeProto.create({ name: 'max', f: max, type: onnx.AttributeProto.AttributeType.FLOAT }),
  ];
  return n;
};

/** X [N, 16] -> Relu (so X is computed) -> hard-swish written out -> Y; `form` picks the writing. */
function hardSwishGraph(form: 'opset9-div' | 'opset13-sixth-first' | 'opset13-mul-sixth'): Uint8Array {
  const head = node('Relu', ['X0'], ['X'], 'relu');
  if (form === 'opset9-div') {
    // paddle2onnx at opset 9: Constant nodes, Clip attributes, x · clip / 6.
    return buildModel({
      opset: 9,
      nodes: [constant('three', 3), constant('six', 6), head,
        node('Add', ['X', 'three'], ['a'], 'add'), clipAttrs(node('Clip', ['a'], ['c'], 'clip'), 0, 6),
        node('Mul', ['X', 'c'], ['m'], 'mul'), node('Div', ['m', 'six'], ['Y'], 'div')],
      initializers: [], inputs: [{ name: 'X0', dims: [-1, 16] }], outputs: [{ name: 'Y' }],
    });
  }
  // Opset 13: Clip's bounds as inputs, initializers, operands swapped, x · (clip / 6) or · (1/6).
  const divide = form === 'opset13-sixth-first' ? node('Div', ['c', 'six'], ['d'], 'div') : node('Mul', ['sixth', 'c'], ['d'], 'mul6');
  return buildModel({
    opset: 13,
    nodes: [head, node('Add', ['three', 'X'], ['a'], 'add'), node('Clip', ['a', 'zero', 'six'], ['c'], 'clip'), divide, node('Mul', ['d', 'X'], ['Y'], 'mul')],
    initializers: [scalar('three', 3), scalar('zero', 0), scalar('six', 6), ...(form === 'opset13-mul-sixth' ? [scalar('sixth', Math.fround(1 / 6))] : [])],
    inputs: [{ name: 'X0', dims: [-1, 16] }], outputs: [{ name: 'Y' }],
  });
}

async function run(bytes: Uint8Array, x: Float32Array, dims: number[], input = 'X0'): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const out = await s.run({ [input]: new ort.Tensor('float32', x, dims) });
    return s.outputNames.map((n) => out[n]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('fuseHardSwish', () => {
  // -8 .. 8 in steps of 1/16: both sides of -3 and 3, and the bounds themselves.
  const x = Float32Array.from({ length: 256 }, (_, i) => (i - 128) / 16);

  for (const form of ['opset9-div', 'opset13-sixth-first', 'opset13-mul-sixth'] as const) {
    it(`rewrites ${form} as x · HardSigmoid(x) with the same values, its constants gone`, async () => {
      const bytes = hardSwishGraph(form);
      const model = decodeModel(bytes);
      expect(fuseHardSwish(model)).toBe(1);
      const nodes = model.graph!.node!;
      expect(nodes.map((n) => n.opType)).toEqual(['Relu', 'HardSigmoid', 'Mul']);
      expect(model.graph!.initializer ?? []).toEqual([]);
      const [want] = await run(bytes, x, [16, 16]);
      const [got] = await run(writeModel(model), x, [16, 16]);
      // Against the function itself too, in float64: x · min(max(x + 3, 0), 6) / 6 for x ≥ 0 (after the Relu).
      const exact = Float64Array.from(x, (v) => Math.max(v, 0) * Math.min(Math.max(Math.max(v, 0) + 3, 0), 6) / 6);
      expect(maxAbsDiff(got!, want!)).toBeLessThan(1e-6);
      expect(got!.every((v, i) => Math.abs(v - exact[i]!) < 1e-6)).toBe(true);
    });
  }

  it('leaves alone what only looks alike: other constants, a tensor read elsewhere, a graph output, another multiplicand', () => {
    const variants: { what: string; edit(nodes: NodeProto[], outputs: { name: string }[]): void }[] = [
      { what: 'adds 2', edit: (n) => { n[0] = constant('three', 2); } },
      { what: 'clips at 5', edit: (n) => { n[4] = clipAttrs(node('Clip', ['a'], ['c'], 'clip'), 0, 5); } },
      { what: 'divides by 5', edit: (n) => { n[1] = constant('six', 5); } },
      { what: 'multiplies another tensor', edit: (n) => { n[5] = node('Mul', ['a', 'c'], ['m'], 'mul'); } },
      { what: 'reads the clip twice', edit: (n) => { n.push(node('Relu', ['c'], ['Z'], 'extra')); } },
      { what: 'outputs the clip', edit: (_, o) => { o.push({ name: 'c' }); } },
    ];
    for (const v of variants) {
      const nodes = [constant('three', 3), constant('six', 6), node('Relu', ['X0'], ['X'], 'relu'),
        node('Add', ['X', 'three'], ['a'], 'add'), clipAttrs(node('Clip', ['a'], ['c'], 'clip'), 0, 6),
        node('Mul', ['X', 'c'], ['m'], 'mul'), node('Div', ['m', 'six'], ['Y'], 'div')];
      const outputs = [{ name: 'Y' }];
      v.edit(nodes, outputs);
      const bytes = buildModel({ opset: 9, nodes, initializers: [], inputs: [{ name: 'X0', dims: [-1, 16] }], outputs });
      const model = decodeModel(bytes);
      expect(fuseHardSwish(model), v.what).toBe(0);
      expect(Buffer.from(writeModel(model)).equals(Buffer.from(bytes)), v.what).toBe(true);
    }
  });
});
