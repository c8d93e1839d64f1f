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
import { GraphView, attribute, otherInput } from './graph.js';
import { makeTensor, tensorValues } from './model.js';
import { DataType, toNumber, type ModelProto, type NodeProto, type TensorProto } from './proto.js';
import { removeUnused } from './prune.js';

/** Folds every match in place; returns how many scalar chains went into a convolution. */
export function foldConvAffine(model: ModelProto): number {
  if (!model.graph) return 0;
  // Two passes, each over a fresh view of the graph the previous one left.
  return foldPass(model, chainAfter) + foldPass(model, chainBefore);
}

/** A chain of scalar Mul / Add nodes next to a convolution, composed: y = scale · x + offset. */
interface Chain {
  /** Which side of the convolution it stands on. */
  side: 'after' | 'before';
  nodes: NodeProto[];
  scale: number;
  offset: number;
  /** The convolution's input and output once the chain is folded into it. */
  input: string;
  output: string;
}

/** A convolution whose weights (and bias, if any) are float constants it alone reads. */
interface FoldableConv {
  node: NodeProto;
  weights: TensorProto;
  bias: TensorProto | undefined;
  dims: number[];
}

/**
 * A Mul or Add with one input a one-element constant of at most `rank` dims (the
 * convolution's rank: no broadcast beyond it): its other input and the constant.
 */
function scalarStep(view: GraphView, node: NodeProto, rank: number): { input: string; v: number } | undefined {
  if (node.opType !== 'Mul' && node.opType !== 'Add') return undefined;
  const [a, b] = node.input ?? [];
  if (a === undefined || b === undefined) return undefined;
  const input = view.isConstant(a) ? b : a;
  const other = otherInput(node, input);
  const v = other === undefined || view.isConstant(input) ? undefined : view.constantScalar(other, rank);
  return v !== undefined && Number.isFinite(v) ? { input, v } : undefined;
}

/** Chain steps in the order data flows through them. */
function compose(side: Chain['side'], steps: { node: NodeProto; v: number }[], input: string, output: string): Chain {
  const chain: Chain = { side, nodes: [], scale: 1, offset: 0, input, output };
  for (const { node, v } of steps) {
    if (node.opType === 'Mul') {
      chain.scale *= v;
      chain.offset *= v;
    } else {
      chain.offset += v;
    }
    chain.nodes.push(node);
  }
  return chain;
}

function foldable(view: GraphView, conv: NodeProto): FoldableConv | undefined {
  if (conv.opType !== 'Conv' || (conv.domain && conv.domain !== 'ai.onnx')) return undefined;
  const [x, w, b] = conv.input ?? [];
  const weights = w ? view.constantTensor(w) : undefined;
  const bias = b ? view.constantTensor(b) : undefined;
  if (!x || !weights || weights.dataType !== DataType.FLOAT || view.consumers(w!).length !== 1) return undefined;
  if (b && (!bias || bias.dataType !== DataType.FLOAT || view.consumers(b).length !== 1)) return undefined;
  return { node: conv, weights, bias, dims: (weights.dims ?? []).map(toNumber) };
}

/** Conv → scalar Mul / Add chain: weights a·W, bias a·B + b. */
function chainAfter(view: GraphView, conv: FoldableConv): Chain | undefined {
  const steps: { node: NodeProto; v: number }[] = [];
  let out = conv.node.output![0]!;
  for (let next = view.soleConsumer(out); next; next = view.soleConsumer(out)) {
    const step = scalarStep(view, next, conv.dims.length);
    if (!step || step.input !== out) break;
    steps.push({ node: next, v: step.v });
    out = next.output![0]!;
  }
  return steps.length > 0 ? compose('after', steps, conv.node.input![0]!, out) : undefined;
}

/** Scalar Mul / Add chain → Conv: weights a·W, bias B + b·ΣW, where no padding meets b. */
function chainBefore(view: GraphView, conv: FoldableConv): Chain | undefined {
  // Walk back from the input while each step is a scalar Mul / Add read by the next alone.
  const steps: { node: NodeProto; v: number }[] = [];
  let input = conv.node.input![0]!;
  for (let prev = view.producer(input); prev && view.soleConsumer(input) === (steps[0]?.node ?? conv.node); prev = view.producer(input)) {
    const step = scalarStep(view, prev, conv.dims.length);
    if (!step) break;
    steps.unshift({ node: prev, v: step.v });
    input = step.input;
  }
  if (steps.length === 0) return undefined;
  const chain = compose('before', steps, input, conv.node.output![0]!);
  // An offset enters padded positions as 0 instead of itself: only where nothing is padded.
  return chain.offset === 0 || unpadded1x1(conv.node, conv.dims) ? chain : undefined;
}

/** Applies `plan` to every foldable convolution; returns how many chains it folded. */
function foldPass(model: ModelProto, plan: (view: GraphView, conv: FoldableConv) => Chain | undefined): number {
  const view = new GraphView(model.graph!);
  const removed = new Set<NodeProto>();
  const added: TensorProto[] = [];
  let count = 0;
  for (const node of view.nodes) {
    const conv = foldable(view, node);
    const chain = conv && plan(view, conv);
    if (!conv || !chain) continue;
    // The weights are read only for a convolution that takes a chain.
    const w = tensorValues(conv.weights) as Float32Array;
    const outChannels = conv.dims[0]!;
    const b = conv.bias ? (tensorValues(conv.bias) as Float32Array) : new Float32Array(outChannels);
    if (b.length !== outChannels) continue;
    const perOutput = w.length / outChannels;
    const newB = b.map((v, o) => {
      if (chain.side === 'after') return v * chain.scale + chain.offset;
      let sum = 0;
      for (let i = o * perOutput; i < (o + 1) * perOutput; i++) sum += w[i]!;
      return v + chain.offset * sum;
    });
    const [, wName, bName] = node.input!;
    const wFolded = `${wName}/folded`;
    const bFolded = `${bName || `${node.name || node.output![0]}/bias`}/folded`;
    added.push(makeTensor(wFolded, w.map((v) => v * chain.scale), conv.dims), makeTensor(bFolded, newB, [outChannels]));
    node.input = [chain.input, wFolded, bFolded];
    node.output = [chain.output];
    for (const n of chain.nodes) removed.add(n);
    count++;
  }
  if (count === 0) return 0;
  const graph = model.graph!;
  graph.node = view.nodes.filter((n) => !removed.has(n));
  graph.initializer = [...(graph.initializer ?? []), ...added];
  removeUnused(model);
  return count;
}

/** A 1 × 1 kernel with no padding, explicit or automatic. */
function unpadded1x1(conv: NodeProto, dims: number[]): boolean {
  const autoPad = attribute(conv, 'auto_pad')?.s;
  const autoPadText = autoPad ? new TextDecoder().decode(autoPad as Uint8Array) : 'NOTSET';
  const pads = attribute(conv, 'pads')?.ints?.map(toNumber) ?? [];
  return dims.slice(2).every((k) => k === 1) && pads.every((p) => p === 0) && (autoPadText === 'NOTSET' || autoPadText === 'VALID');
}
