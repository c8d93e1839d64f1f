/**
 * Where Q/DQ goes, by TensorRT's explicit-quantization rules (DESIGN.md decision 2):
 * Q/DQ on the inputs of Conv, ConvTranspose, Gemm and MatMul (never their outputs);
 * weights per output channel, activations per tensor; nothing between Conv,
 * BatchNormalization and the activation that follows; the skip input of a residual Add
 * quantized so that TensorRT can fuse the Add into the Conv; one scale for all the
 * tensors joined by a Concat; everything else (shape and data movement ops) untouched.
 */
import { GraphView, intAttribute } from '../onnx/graph.js';
import { DataType, type NodeProto } from '../onnx/proto.js';

export const QUANTIZABLE_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

export interface WeightInput {
  /** Input slot of the node. */
  index: number;
  tensor: string;
  /** Per-channel axis, or undefined for one scale for the whole tensor. */
  axis: number | undefined;
}

export interface QuantizedNodePlan {
  node: string;
  opType: string;
  /** Activation tensors read by this node that get Q/DQ. */
  activations: { index: number; tensor: string }[];
  weights: WeightInput[];
}

export interface ResidualPlan {
  /** The Add node. */
  node: string;
  /** Input slot of the skip branch, which gets Q/DQ. */
  index: number;
  tensor: string;
  /** The quantized Conv whose output the Add can be fused into. */
  fusedInto: string;
}

export interface PlacementPlan {
  nodes: QuantizedNodePlan[];
  residuals: ResidualPlan[];
  /** Nodes of quantizable type left in float, with the reason. */
  skipped: { node: string; opType: string; reason: string }[];
  /** Every activation tensor that needs a calibrated range. */
  activationTensors: string[];
  /** Tensor -> representative of its Concat group (tensors that must share one scale). */
  concatGroup: Map<string, string>;
}

function isFloat(view: GraphView, tensor: string): boolean {
  const t = view.elemType(tensor);
  return t === undefined || t === DataType.FLOAT;
}

/** Per-channel axis of a weight: the output-channel axis TensorRT expects. */
function weightAxis(view: GraphView, node: NodeProto, index: number, tensor: string): number | undefined {
  const rank = (view.initializers.get(tensor)?.dims ?? []).length;
  switch (node.opType) {
    case 'Conv':
      return index === 1 ? 0 : undefined;
    case 'ConvTranspose':
      // Weight is [C_in, C_out/group, ...]: axis 1 is the output channel only without groups.
      return index === 1 && intAttribute(node, 'group', 1) === 1 ? 1 : undefined;
    case 'Gemm':
      if (index === 1) return intAttribute(node, 'transB', 0) ? 0 : 1;
      return undefined; // a constant A: one scale
    case 'MatMul':
      return index === 1 && rank >= 2 ? rank - 1 : undefined;
    default:
      return undefined;
  }
}

/** Data inputs (not bias) of each quantizable op. */
function dataInputs(node: NodeProto): number[] {
  const n = (node.input ?? []).length;
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
      return [0, 1];
    case 'Gemm':
    case 'MatMul':
      return n >= 2 ? [0, 1] : [0];
    default:
      return [];
  }
}

/**
 * Plan Q/DQ for `allowed` nodes (by name; every quantizable node when undefined).
 * `excluded` holds node names and op types that stay in float.
 */
export function planPlacement(view: GraphView, excluded: ReadonlySet<string>, allowed?: ReadonlySet<string>): PlacementPlan {
  const nodes: QuantizedNodePlan[] = [];
  const skipped: PlacementPlan['skipped'] = [];
  const quantized = new Set<string>();
  for (const node of view.topologicalOrder()) {
    const op = node.opType ?? '';
    if (!QUANTIZABLE_OPS.has(op)) continue;
    const name = node.name ?? '';
    if (excluded.has(name) || excluded.has(op)) {
      skipped.push({ node: name, opType: op, reason: 'excluded by option' });
      continue;
    }
    if (allowed && !allowed.has(name)) {
      skipped.push({ node: name, opType: op, reason: 'kept in float by the accuracy fallback' });
      continue;
    }
    const plan: QuantizedNodePlan = { node: name, opType: op, activations: [], weights: [] };
    let ok = true;
    for (const index of dataInputs(node)) {
      const tensor = node.input![index]!;
      if (!isFloat(view, tensor)) {
        ok = false;
        break;
      }
      if (view.isInitializer(tensor)) plan.weights.push({ index, tensor, axis: weightAxis(view, node, index, tensor) });
      else plan.activations.push({ index, tensor });
    }
    if (!ok) {
      skipped.push({ node: name, opType: op, reason: 'inputs are not float32' });
      continue;
    }
    nodes.push(plan);
    quantized.add(name);
  }

  const residuals = planResiduals(view, quantized, excluded);

  const activationTensors = new Set<string>();
  for (const p of nodes) for (const a of p.activations) activationTensors.add(a.tensor);
  for (const r of residuals) activationTensors.add(r.tensor);

  const concatGroup = concatGroups(view);
  // Every member of a group holding a quantized tensor needs a range: the group's scale is their max.
  const groupMembers = new Map<string, string[]>();
  for (const [t, root] of concatGroup) groupMembers.set(root, [...(groupMembers.get(root) ?? []), t]);
  for (const t of [...activationTensors]) {
    const root = concatGroup.get(t);
    if (root) for (const m of groupMembers.get(root) ?? []) if (!view.isConstant(m)) activationTensors.add(m);
  }
  return { nodes, residuals, skipped, activationTensors: [...activationTensors], concatGroup };
}

/**
 * Residual Add: one input comes from a quantized Conv (directly or through a
 * BatchNormalization) and feeds only that Add; the other input (the skip branch)
 * gets Q/DQ so TensorRT fuses the Add into the Conv with an INT8 residual.
 */
function planResiduals(view: GraphView, quantized: ReadonlySet<string>, excluded: ReadonlySet<string>): ResidualPlan[] {
  const out: ResidualPlan[] = [];
  for (const node of view.nodes) {
    if (node.opType !== 'Add' || excluded.has(node.name ?? '') || excluded.has('Add')) continue;
    const inputs = node.input ?? [];
    if (inputs.length !== 2 || inputs.some((i) => view.isConstant(i) || !isFloat(view, i))) continue;
    const convOf = (tensor: string): NodeProto | undefined => {
      if (view.consumers(tensor).length !== 1) return undefined;
      let p = view.producer(tensor);
      if (p?.opType === 'BatchNormalization') {
        const x = p.input?.[0] ?? '';
        if (view.consumers(x).length !== 1) return undefined;
        p = view.producer(x);
      }
      return p && (p.opType === 'Conv' || p.opType === 'ConvTranspose') && quantized.has(p.name ?? '') ? p : undefined;
    };
    const sa = view.shape(inputs[0]!);
    const sb = view.shape(inputs[1]!);
    if (sa && sb && (sa.length !== sb.length || sa.some((d, k) => d > 0 && sb[k]! > 0 && d !== sb[k]))) continue; // a broadcast, not a residual
    for (const k of [0, 1]) {
      const conv = convOf(inputs[k]!);
      if (!conv) continue;
      out.push({ node: node.name ?? '', index: 1 - k, tensor: inputs[1 - k]!, fusedInto: conv.name ?? '' });
      break;
    }
  }
  return out;
}

/** Union of each Concat's inputs and output (transitively): tensors that share one scale. */
function concatGroups(view: GraphView): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (t: string): string => {
    let r = t;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(t, r);
    return r;
  };
  const add = (t: string): void => {
    if (!parent.has(t)) parent.set(t, t);
  };
  for (const node of view.nodes) {
    if (node.opType !== 'Concat') continue;
    const members = [...(node.input ?? []), ...(node.output ?? [])].filter((t) => t);
    members.forEach(add);
    for (const m of members.slice(1)) parent.set(find(m), find(members[0]!));
  }
  const out = new Map<string, string>();
  for (const t of parent.keys()) out.set(t, find(t));
  return out;
}

/** Node count by op type, for reports. */
export function countOps(nodes: readonly NodeProto[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) out[n.opType ?? ''] = (out[n.opType ?? ''] ?? 0) + 1;
  return out;
}

