/** Small ONNX graphs built in the tests with the package's own writer. */
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { makeTensor, writeModel } from '../../src/onnx/model.js';
import { DataType, onnx, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';

/** Deterministic pseudo-random numbers in [-1, 1). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

export function randomArray(n: number, rand: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * scale);
}

export interface GraphSpec {
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: { name: string; dims: number[] }[];
  outputs: { name: string; dims?: number[] }[];
  opset?: number;
}

export function buildModel(spec: GraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'tensorrt-node-test',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: {
      name: 'test',
      node: spec.nodes,
      initializer: spec.initializers,
      input: spec.inputs.map((i) => makeValueInfo(i.name, DataType.FLOAT, i.dims)),
      output: spec.outputs.map((o) => makeValueInfo(o.name, DataType.FLOAT, o.dims)),
    },
  });
  return writeModel(model);
}

export const node = makeNode;
export const tensor = makeTensor;

export function withAttrs(n: NodeProto, attrs: Record<string, number[] | number>): NodeProto {
  for (const [name, v] of Object.entries(attrs)) {
    n.attribute = [
      ...(n.attribute ?? []),
      Array.isArray(v)
        ? onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS })
        : onnx.AttributeProto.create({ name, i: v, type: onnx.AttributeProto.AttributeType.INT }),
    ];
  }
  return n;
}

/** Conv → Relu → Reshape → MatMul, with random weights. */
export function convReluMatMul(seed = 1): { bytes: Uint8Array; w1: Float32Array; b1: Float32Array; w2: Float32Array } {
  const rand = random(seed);
  const w1 = randomArray(3 * 2 * 3 * 3, rand, 0.5);
  const b1 = randomArray(3, rand, 0.1);
  const w2 = randomArray(75 * 4, rand, 0.3);
  const bytes = buildModel({
    nodes: [
      withAttrs(node('Conv', ['x', 'w1', 'b1'], ['c'], 'conv'), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
      node('Relu', ['c'], ['r'], 'relu'),
      node('Reshape', ['r', 'shape'], ['f'], 'flatten'),
      node('MatMul', ['f', 'w2'], ['y'], 'matmul'),
    ],
    initializers: [
      tensor('w1', w1, [3, 2, 3, 3]),
      tensor('b1', b1, [3]),
      tensor('w2', w2, [75, 4]),
      tensor('shape', BigInt64Array.of(1n, 75n), [2]),
    ],
    inputs: [{ name: 'x', dims: [1, 2, 5, 5] }],
    outputs: [{ name: 'y', dims: [1, 4] }],
  });
  return { bytes, w1, b1, w2 };
}
