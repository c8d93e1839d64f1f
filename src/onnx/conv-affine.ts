/**
 * Scalar affine steps (Mul / Add by a one-element constant) next to a convolution, folded
 * into its weights and bias. PP-LCNetV3 (the PP-OCRv4 detector's and recognizer's
 * backbone) puts such a "learnable affine block" after its convolutions and after their
 * activations, and ONNX Runtime leaves each as two elementwise passes over the activations.
 *
 * - After: Conv → a·y + b becomes Conv with weights a·W and bias a·B + b, so that the
 *   activation that follows sits right after the convolution, where ONNX Runtime fuses it.
 * - Before: a·h + b → Conv becomes Conv(h) with weights a·W and bias B + b·ΣW, exact only
 *   where no padding enters the sum (a 1 × 1 kernel without pads); a scale alone folds
 *   into any convolution (a padded zero stays zero).
 *
 * Results differ from the original graph's by float rounding only.
 */
import { GraphView, attribute } from './graph.js';
import { makeTensor, tensorValues } from './model.js';
import { DataType, toNumber, type ModelProto, type NodeProto, type TensorProto } from './proto.js';
import { removeUnreadConstants } from './prune.js';

/** Folds every match in place; returns how many scalar chains went into a convolution. */
export function foldConvAffine(model: ModelProto): number {
  if (!model.graph) return 0;
  // Two passes, each over a fresh view of the graph the previous one left.
  return foldAfter(model) + foldBefore(model);
}

/** A chain of scalar Mul / Add nodes, composed: y = scale · x + offset. */
interface Affine {
  nodes: NodeProto[];
  scale: number;
  offset: number;
}

/** The scalar `node` applies to `tensor` (its other input a one-element constant of at most `rank` dims). */
function scalarOperand(view: GraphView, node: NodeProto, tensor: string, rank: number): number | undefined {
  if (node.opType !== 'Mul' && node.opType !== 'Add') return undefined;
  const [x, y] = node.input ?? [];
  const other = x === tensor ? y : y === tensor ? x : undefined;
  const v = other === undefined ? undefined : view.constantScalar(other, rank);
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function compose(chain: Affine, node: NodeProto, v: number): void {
  if (node.opType === 'Mul') {
    chain.scale *= v;
    chain.offset *= v;
  } else {
    chain.offset += v;
  }
  chain.nodes.push(node);
}

/** A convolution's weights (with their dims) and bias. */
interface ConvParameters {
  w: Float32Array;
  dims: number[];
  b: Float32Array;
}

/** A convolution's float weights and bias (zeros where it has none), if they are constants it alone reads. */
function convParameters(view: GraphView, conv: NodeProto): ConvParameters | undefined {
  if (conv.opType !== 'Conv' || (conv.domain && conv.domain !== 'ai.onnx')) return undefined;
  const [x, w, b] = conv.input ?? [];
  const weights = w ? view.constantTensor(w) : undefined;
  const bias = b ? view.constantTensor(b) : undefined;
  if (!x || !weights || weights.dataType !== DataType.FLOAT || view.consumers(w!).length !== 1) return undefined;
  if (b && (!bias || bias.dataType !== DataType.FLOAT || view.consumers(b).length !== 1)) return undefined;
  const dims = (weights.dims ?? []).map(toNumber);
  const values = tensorValues(weights) as Float32Array;
  const biasValues = bias ? (tensorValues(bias) as Float32Array) : new Float32Array(dims[0] ?? 0);
  return biasValues.length === dims[0] ? { w: values, dims, b: biasValues } : undefined;
}

/** Points `conv` at new weights and bias; returns the tensors to add and the names it no longer reads. */
function replaceParameters(conv: NodeProto, input: string, w: Float32Array, dims: number[], b: Float32Array): { added: TensorProto[]; dropped: string[] } {
  const [, wName, bName] = conv.input ?? [];
  const newW = `${wName}/folded`;
  const newB = `${bName || `${conv.name || conv.output![0]}/bias`}/folded`;
  conv.input = [input, newW, newB];
  return { added: [makeTensor(newW, w, dims), makeTensor(newB, b, [dims[0]!])], dropped: [wName!, ...(bName ? [bName] : [])] };
}

function apply(model: ModelProto, view: GraphView, removed: Set<NodeProto>, added: TensorProto[], dropped: Set<string>): void {
  const graph = model.graph!;
  graph.node = view.nodes.filter((n) => !removed.has(n));
  graph.initializer = [...(graph.initializer ?? []), ...added];
  for (const n of removed) for (const i of n.input ?? []) dropped.add(i);
  removeUnreadConstants(model, dropped);
}

/** What a pass does to one convolution: its new input, output, weights and bias, and the nodes it absorbs. */
interface Fold {
  input: string;
  output: string;
  w: Float32Array;
  b: Float32Array;
  nodes: NodeProto[];
}

/** Applies `plan` to every convolution with constant parameters; returns how many it folded. */
function foldPass(model: ModelProto, plan: (view: GraphView, conv: NodeProto, p: ConvParameters, taken: Set<NodeProto>) => Fold | undefined): number {
  const view = new GraphView(model.graph!);
  const removed = new Set<NodeProto>();
  const added: TensorProto[] = [];
  const dropped = new Set<string>();
  let count = 0;
  for (const conv of view.nodes) {
    const p = convParameters(view, conv);
    const f = p && plan(view, conv, p, removed);
    if (!p || !f) continue;
    const r = replaceParameters(conv, f.input, f.w, p.dims, f.b);
    conv.output = [f.output];
    added.push(...r.added);
    for (const d of r.dropped) dropped.add(d);
    for (const n of f.nodes) removed.add(n);
    count++;
  }
  if (count > 0) apply(model, view, removed, added, dropped);
  return count;
}

/** Conv → scalar Mul / Add chain: weights a·W, bias a·B + b. */
function foldAfter(model: ModelProto): number {
  return foldPass(model, (view, conv, p) => {
    const chain: Affine = { nodes: [], scale: 1, offset: 0 };
    let out = conv.output![0]!;
    for (let next = view.soleConsumer(out); next; next = view.soleConsumer(out)) {
      const v = scalarOperand(view, next, out, p.dims.length);
      if (v === undefined) break;
      compose(chain, next, v);
      out = next.output![0]!;
    }
    if (chain.nodes.length === 0) return undefined;
    return {
      input: conv.input![0]!,
      output: out,
      w: p.w.map((v) => v * chain.scale),
      b: p.b.map((v) => v * chain.scale + chain.offset),
      nodes: chain.nodes,
    };
  });
}

/** Scalar Mul / Add chain → Conv: weights a·W, bias B + b·ΣW, where no padding meets b. */
function foldBefore(model: ModelProto): number {
  return foldPass(model, (view, conv, p, taken) => {
    // Walk back from the input while each step is a scalar Mul / Add read by the next alone.
    const steps: { node: NodeProto; v: number }[] = [];
    let input = conv.input![0]!;
    for (let prev = view.producer(input); prev && view.soleConsumer(input) === (steps[0]?.node ?? conv); prev = view.producer(input)) {
      const [a, b] = prev.input ?? [];
      const x = view.constantScalar(a ?? '') !== undefined ? b : a;
      const v = x === undefined ? undefined : scalarOperand(view, prev, x, p.dims.length);
      if (v === undefined || taken.has(prev) || view.isConstant(x!)) break;
      steps.unshift({ node: prev, v });
      input = x!;
    }
    if (steps.length === 0) return undefined;
    const chain: Affine = { nodes: [], scale: 1, offset: 0 };
    for (const s of steps) compose(chain, s.node, s.v);
    // An offset enters padded positions as 0 instead of itself: only where nothing is padded.
    if (chain.offset !== 0 && !unpadded1x1(conv, p.dims)) return undefined;
    const perOutput = p.w.length / p.dims[0]!;
    const b = p.b.map((v, o) => {
      let sum = 0;
      for (let i = o * perOutput; i < (o + 1) * perOutput; i++) sum += p.w[i]!;
      return v + chain.offset * sum;
    });
    return { input, output: conv.output![0]!, w: p.w.map((v) => v * chain.scale), b, nodes: chain.nodes };
  });
}

/** A 1 × 1 kernel with no padding, explicit or automatic. */
function unpadded1x1(conv: NodeProto, dims: number[]): boolean {
  const autoPad = attribute(conv, 'auto_pad')?.s;
  const autoPadText = autoPad ? new TextDecoder().decode(autoPad as Uint8Array) : 'NOTSET';
  const pads = attribute(conv, 'pads')?.ints?.map(toNumber) ?? [];
  return dims.slice(2).every((k) => k === 1) && pads.every((p) => p === 0) && (autoPadText === 'NOTSET' || autoPadText === 'VALID');
}
