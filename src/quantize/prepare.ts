/** Normalize a model before quantization: node names, folded constant reshapes. */
export { upgradeOpset, MIN_QDQ_OPSET } from './opset.js';
import { GraphView } from '../onnx/graph.js';
import { makeTensor, tensorValues } from '../onnx/model.js';
import { removeUnused } from '../onnx/prune.js';
import { onnx, toNumber, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';

/** Give every node a unique name (the report and `exclude` refer to nodes by name). */
export function nameNodes(model: ModelProto): void {
  const nodes = model.graph?.node ?? [];
  const taken = new Set(nodes.map((n) => n.name ?? '').filter((n) => n));
  const seen = new Set<string>();
  nodes.forEach((n, i) => {
    if (n.name && !seen.has(n.name)) {
      seen.add(n.name);
      return;
    }
    let name = `${n.opType}_${i}`;
    while (taken.has(name) || seen.has(name)) name += '_';
    seen.add(name);
    n.name = name;
  });
}

/**
 * Turn Constant nodes into initializers (paddle2onnx and others emit weights as
 * Constant nodes), so that weights are recognized as weights.
 */
export function constantsToInitializers(model: ModelProto): void {
  const graph = model.graph!;
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const keep: NodeProto[] = [];
  const added: TensorProto[] = [];
  for (const n of graph.node ?? []) {
    const value = n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx') ? (n.attribute ?? []).find((a) => a.name === 'value')?.t : undefined;
    const out = n.output?.[0];
    if (!value || !out || outputs.has(out) || (n.attribute ?? []).length !== 1) {
      keep.push(n);
      continue;
    }
    added.push(onnx.TensorProto.create({ ...value, name: out }));
  }
  graph.node = keep;
  graph.initializer = [...(graph.initializer ?? []), ...added];
}

/**
 * Replace Reshape/Identity of an initializer by the reshaped initializer, so that a
 * weight reshaped in the graph (the CNTK MNIST model does this) is seen as a weight.
 */
export function foldConstantReshapes(model: ModelProto): void {
  const graph = model.graph!;
  const view = new GraphView(graph);
  const keep: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    const data = view.initializers.get(n.input?.[0] ?? '');
    const shapeInit = n.opType === 'Reshape' ? view.initializers.get(n.input?.[1] ?? '') : undefined;
    const output = n.output?.[0];
    const isOutput = (graph.output ?? []).some((o) => o.name === output);
    if (!data || !output || isOutput || (n.opType !== 'Identity' && !(n.opType === 'Reshape' && shapeInit))) {
      keep.push(n);
      continue;
    }
    const dims = (data.dims ?? []).map(toNumber);
    let newDims = dims;
    if (shapeInit) {
      const target = [...tensorValues(shapeInit)].map((v) => Number(v));
      const total = dims.reduce((a, d) => a * d, 1);
      newDims = target.map((d, k) => (d === 0 ? dims[k]! : d));
      const known = newDims.reduce((a, d) => (d === -1 ? a : a * d), 1);
      newDims = newDims.map((d) => (d === -1 ? total / known : d));
      if (newDims.reduce((a, d) => a * d, 1) !== total) {
        keep.push(n);
        continue;
      }
    }
    const folded = makeTensor(output, tensorValues(data), newDims);
    graph.initializer = [...(graph.initializer ?? []), folded];
  }
  graph.node = keep;
  removeUnused(model);
}

/** Deep copy of a model. */
export function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
}
