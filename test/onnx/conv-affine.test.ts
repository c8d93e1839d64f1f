/**
 * Folding Conv → Mul(a) → Add(b) into the convolution: small graphs built here, run on
 * onnxruntime-node before and after against each other, and graphs that must stay.
 */
import { describe, expect, it } from 'vitest';
import { decodeModel, writeModel } from '../../src/onnx/model.js';
import { foldConvAffine } from '../../src/onnx/conv-affine.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { buildModel, node, random, randomArray, tensor, withAttrs } from '../quantize/graphs.js';
import { ort } from '../engine/helpers.js';

const rand = random(11);
const W = randomArray(4 * 2 * 3 * 3, rand, 0.5);
const B = randomArray(4, rand, 0.1);
const X = randomArray(2 * 2 * 6 * 6, rand, 2);
const conv = (inputs: string[], out = 'c'): NodeProto => withAttrs(node('Conv', inputs, [out], 'conv'), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
const scalar = (name: string, v: number, dims: number[] = []): TensorProto => tensor(name, Float32Array.of(v), dims);

interface Spec { nodes: NodeProto[]; initializers: TensorProto[]; outputs?: string[] }

function model(spec: Spec): Uint8Array {
  return buildModel({
    nodes: spec.nodes,
    initializers: [tensor('w', W, [4, 2, 3, 3]), ...(spec.nodes.some((n) => n.input?.includes('b')) ? [tensor('b', B, [4])] : []), ...spec.initializers],
    inputs: [{ name: 'x', dims: [-1, 2, 6, 6] }],
    outputs: (spec.outputs ?? ['y']).map((name) => ({ name })),
  });
}

async function outputs(bytes: Uint8Array): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const r = await s.run({ x: new ort.Tensor('float32', X, [2, 2, 6, 6]) });
    return s.outputNames.map((n) => r[n]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('foldConvAffine', () => {
  const folds: [string, Spec][] = [
    ['Conv with bias → Mul → Add', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['m'], 'mul'), node('Add', ['m', 'd'], ['y'], 'add')], initializers: [scalar('a', 1.7, [1]), scalar('d', -0.3, [1])] }],
    ['Conv without bias → Mul (scalar first) → Add', { nodes: [conv(['x', 'w']), node('Mul', ['a', 'c'], ['m'], 'mul'), node('Add', ['d', 'm'], ['y'], 'add')], initializers: [scalar('a', 0.6), scalar('d', 0.25)] }],
    ['Conv → Add → Mul', { nodes: [conv(['x', 'w', 'b']), node('Add', ['c', 'd'], ['m'], 'add'), node('Mul', ['m', 'a'], ['y'], 'mul')], initializers: [scalar('a', -1.3), scalar('d', 0.5)] }],
    ['Conv → Mul alone', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul')], initializers: [scalar('a', 2.5)] }],
  ];
  for (const [what, spec] of folds) {
    it(`folds ${what} into the convolution, with the same values`, async () => {
      const bytes = model(spec);
      const m = decodeModel(bytes);
      expect(foldConvAffine(m)).toBe(1);
      expect(m.graph!.node!.map((n) => n.opType)).toEqual(['Conv']);
      expect(m.graph!.node![0]!.output).toEqual(['y']);
      // The scalars and the original weights are gone; the folded weights and bias remain.
      const bias = spec.nodes[0]!.input!.length === 3 ? 'b/folded' : 'conv/bias/folded';
      expect((m.graph!.initializer ?? []).map((t) => t.name).sort()).toEqual([bias, 'w/folded'].sort());
      const [want] = await outputs(bytes);
      const [got] = await outputs(writeModel(m));
      expect(maxAbsDiff(got!, want!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got!, want!)).toBeLessThan(1e-6 * Math.max(...want!.map(Math.abs)) + 1e-6);
    });
  }

  // Before a convolution: a·h + b → Conv. X feeds a Relu first, so that h is computed.
  const W1 = randomArray(4 * 2, rand, 0.5);
  const Wg = randomArray(4 * 1, rand, 0.5);
  const before: [string, Spec, number][] = [
    ['Mul → Add → a 1 × 1 convolution', {
      nodes: [node('Relu', ['x'], ['h'], 'relu'), node('Mul', ['h', 'a'], ['m'], 'mul'), node('Add', ['m', 'd'], ['s'], 'add'), node('Conv', ['s', 'w1', 'b'], ['y'], 'conv1')],
      initializers: [tensor('w1', W1, [4, 2, 1, 1]), scalar('a', 1.4, [1]), scalar('d', -0.6, [1])],
    }, 1],
    ['Add → a grouped 1 × 1 convolution', {
      nodes: [node('Relu', ['x'], ['h'], 'relu'), node('Add', ['d', 'h'], ['s'], 'add'), withAttrs(node('Conv', ['s', 'wg'], ['y'], 'convg'), { group: 2 })],
      initializers: [tensor('wg', Wg, [4, 1, 1, 1]), scalar('d', 0.75)],
    }, 1],
    ['Mul alone → a padded 3 × 3 convolution', {
      nodes: [node('Relu', ['x'], ['h'], 'relu'), node('Mul', ['h', 'a'], ['s'], 'mul'), conv(['s', 'w', 'b'], 'y')],
      initializers: [scalar('a', -0.8)],
    }, 1],
    ['Mul → Add → a padded 3 × 3 convolution (the offset would meet the padding)', {
      nodes: [node('Relu', ['x'], ['h'], 'relu'), node('Mul', ['h', 'a'], ['m'], 'mul'), node('Add', ['m', 'd'], ['s'], 'add'), conv(['s', 'w', 'b'], 'y')],
      initializers: [scalar('a', 1.4), scalar('d', 0.2)],
    }, 0],
  ];
  for (const [what, spec, folded] of before) {
    it(`${folded ? 'folds' : 'leaves'} ${what}${folded ? ', with the same values' : ''}`, async () => {
      const bytes = model(spec);
      const m = decodeModel(bytes);
      expect(foldConvAffine(m)).toBe(folded);
      if (!folded) {
        expect(Buffer.from(writeModel(m)).equals(Buffer.from(bytes))).toBe(true);
        return;
      }
      expect(m.graph!.node!.map((n) => n.opType)).toEqual(['Relu', 'Conv']);
      expect(m.graph!.node![1]!.input![0]).toBe('h');
      const [want] = await outputs(bytes);
      const [got] = await outputs(writeModel(m));
      expect(maxAbsDiff(got!, want!)).toBeLessThan(1e-5);
    });
  }

  it('leaves alone what must stay: a per-channel operand, shared weights, a tensor read twice or output, a one-element constant of higher rank', () => {
    const variants: [string, Spec][] = [
      ['per-channel scale', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul')], initializers: [tensor('a', Float32Array.of(1, 2, 3, 4), [4, 1, 1])] }],
      ['weights shared by two convolutions', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul'), conv(['x', 'w'], 'z')], initializers: [scalar('a', 2)], outputs: ['y', 'z'] }],
      ['convolution output read twice', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul'), node('Relu', ['c'], ['z'], 'relu')], initializers: [scalar('a', 2)], outputs: ['y', 'z'] }],
      ['convolution output is a graph output', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul')], initializers: [scalar('a', 2)], outputs: ['y', 'c'] }],
      ['a [1,1,1,1,1] scalar (rank 5 over a rank-4 output)', { nodes: [conv(['x', 'w', 'b']), node('Mul', ['c', 'a'], ['y'], 'mul')], initializers: [scalar('a', 2, [1, 1, 1, 1, 1])] }],
    ];
    for (const [what, spec] of variants) {
      const bytes = model(spec);
      const m = decodeModel(bytes);
      expect(foldConvAffine(m), what).toBe(0);
      expect(Buffer.from(writeModel(m)).equals(Buffer.from(bytes)), what).toBe(true);
    }
  });
});
