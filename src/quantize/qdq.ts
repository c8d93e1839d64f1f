/** Write QuantizeLinear/DequantizeLinear pairs into a model following a placement plan. */
import { GraphView, makeNode } from '../onnx/graph.js';
import { makeTensor, tensorValues } from '../onnx/model.js';
import { toNumber, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';
import type { PlacementPlan } from './placement.js';
import { cloneModel } from './prepare.js';
import { removeUnused } from '../onnx/prune.js';

export interface QuantizedTensor {
  name: string;
  kind: 'activation' | 'weight';
  /** Per-tensor amax, or per-channel amaxes for a weight with an axis. */
  amax: number | number[];
  scale: number | number[];
  axis?: number;
  /** Nodes whose input reads the dequantized tensor. */
  consumers: string[];
}

/** Round half to even, as ONNX QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Symmetric INT8 scale for a threshold: amax / 127 in float32 (1 for an all-zero tensor). */
export function scaleFor(amax: number): number {
  return amax > 0 && Number.isFinite(amax) ? Math.fround(amax / 127) : 1;
}

/** Per-channel amax of a float tensor along `axis` (the whole tensor when axis is undefined). */
export function channelAmax(values: ArrayLike<number>, dims: readonly number[], axis: number | undefined): number[] {
  if (axis === undefined) {
    let m = 0;
    for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
    return [m];
  }
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const out = new Array<number>(channels).fill(0);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(values[i]!);
    if (a > out[c]!) out[c] = a;
  }
  return out;
}

/** Quantize a weight symmetrically per channel: int8 values with scales as DequantizeLinear reads them. */
export function quantizeWeight(values: Float32Array, dims: readonly number[], axis: number | undefined): { q: Int8Array; scales: Float32Array; amax: number[] } {
  const amax = channelAmax(values, dims, axis);
  const scales = Float32Array.from(amax.map(scaleFor));
  const q = new Int8Array(values.length);
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? values.length : dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  for (let i = 0; i < values.length; i++) {
    const c = axis === undefined ? 0 : Math.floor(i / inner) % channels;
    q[i] = Math.max(-128, Math.min(127, roundHalfEven(values[i]! / scales[c]!)));
  }
  return { q, scales, amax };
}

/**
 * A copy of `model` with Q/DQ inserted: activations as float → QuantizeLinear →
 * DequantizeLinear (per tensor), weights as an int8 initializer → DequantizeLinear
 * (per channel, `axis` set). Zero points are int8 0. `amax` holds each planned
 * activation's threshold; Concat groups use the largest threshold of their members.
 */
export function insertQdq(source: ModelProto, plan: PlacementPlan, amax: ReadonlyMap<string, number>): { model: ModelProto; tensors: QuantizedTensor[] } {
  const model = cloneModel(source);
  const graph = model.graph!;
  const view = new GraphView(graph);
  const order = view.topologicalOrder();
  const byName = new Map(view.nodes.map((n) => [n.name ?? '', n]));
  const taken = new Set<string>();
  for (const n of view.nodes) {
    taken.add(n.name ?? '');
    for (const t of [...(n.input ?? []), ...(n.output ?? [])]) taken.add(t);
  }
  for (const t of view.initializers.keys()) taken.add(t);
  for (const v of view.valueInfo.keys()) taken.add(v);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };

  const groupAmax = new Map<string, number>();
  for (const [t, root] of plan.concatGroup) {
    const a = amax.get(t);
    if (a !== undefined) groupAmax.set(root, Math.max(groupAmax.get(root) ?? 0, a));
  }
  const thresholdOf = (t: string): number => {
    const root = plan.concatGroup.get(t);
    const own = amax.get(t);
    if (own === undefined) throw new Error(`internal: no range for '${t}'`);
    return root !== undefined ? groupAmax.get(root)! : own;
  };

  const newInits: TensorProto[] = [];
  const afterTensor = new Map<string, NodeProto[]>(); // nodes to emit once a tensor exists
  const atStart: NodeProto[] = [];
  const activationDq = new Map<string, string>();
  const tensors = new Map<string, QuantizedTensor>();

  const activation = (tensor: string, consumer: string): string => {
    let dq = activationDq.get(tensor);
    if (!dq) {
      const a = thresholdOf(tensor);
      const scaleName = unique(`${tensor}_scale`);
      const zpName = unique(`${tensor}_zero_point`);
      newInits.push(makeTensor(scaleName, Float32Array.of(scaleFor(a)), []), makeTensor(zpName, Int8Array.of(0), []));
      const q = unique(`${tensor}_quantized`);
      dq = unique(`${tensor}_dequantized`);
      const nodes = [
        makeNode('QuantizeLinear', [tensor, scaleName, zpName], [q], unique(`${tensor}_QuantizeLinear`)),
        makeNode('DequantizeLinear', [q, scaleName, zpName], [dq], unique(`${tensor}_DequantizeLinear`)),
      ];
      if (view.producer(tensor)) afterTensor.set(tensor, [...(afterTensor.get(tensor) ?? []), ...nodes]);
      else atStart.push(...nodes);
      activationDq.set(tensor, dq);
      tensors.set(tensor, { name: tensor, kind: 'activation', amax: a, scale: scaleFor(a), consumers: [] });
    }
    tensors.get(tensor)!.consumers.push(consumer);
    return dq;
  };

  const weightDq = new Map<string, string>();
  const weight = (tensor: string, axis: number | undefined, consumer: string): string => {
    const key = `${tensor}\u0000${axis ?? ''}`;
    let dq = weightDq.get(key);
    if (!dq) {
      const init = view.initializers.get(tensor)!;
      const dims = (init.dims ?? []).map(toNumber);
      const { q, scales, amax: a } = quantizeWeight(tensorValues(init) as Float32Array, dims, axis);
      const qName = unique(`${tensor}_quantized`);
      const scaleName = unique(`${tensor}_scale`);
      const zpName = unique(`${tensor}_zero_point`);
      const perChannel = axis !== undefined;
      newInits.push(
        makeTensor(qName, q, dims),
        makeTensor(scaleName, scales, perChannel ? [scales.length] : []),
        makeTensor(zpName, new Int8Array(scales.length), perChannel ? [scales.length] : []),
      );
      dq = unique(`${tensor}_dequantized`);
      atStart.push(makeNode('DequantizeLinear', [qName, scaleName, zpName], [dq], unique(`${tensor}_DequantizeLinear`), perChannel ? { axis } : {}));
      weightDq.set(key, dq);
      const t: QuantizedTensor = perChannel
        ? { name: tensor, kind: 'weight', amax: a, scale: [...scales], axis, consumers: [] }
        : { name: tensor, kind: 'weight', amax: a[0]!, scale: scales[0]!, consumers: [] };
      tensors.set(key, t);
    }
    tensors.get(key)!.consumers.push(consumer);
    return dq;
  };

  for (const p of plan.nodes) {
    const node = byName.get(p.node)!;
    for (const a of p.activations) node.input![a.index] = activation(a.tensor, p.node);
    for (const w of p.weights) node.input![w.index] = weight(w.tensor, w.axis, p.node);
  }
  for (const r of plan.residuals) {
    const node = byName.get(r.node)!;
    node.input![r.index] = activation(r.tensor, r.node);
  }

  // Emit Q/DQ right after the producer of the tensor they read.
  const ordered: NodeProto[] = [...atStart];
  for (const n of order) {
    ordered.push(n);
    for (const o of n.output ?? []) ordered.push(...(afterTensor.get(o) ?? []));
  }
  graph.node = ordered ;
  graph.initializer = [...(graph.initializer ?? []), ...newInits];
  removeUnused(model);
  return { model, tensors: [...tensors.values()] };
}
