/**
 * A scalar affine step right after a convolution, Conv → Mul(a) → Add(b), folded into the
 * convolution: weights a·W, bias a·B + b. PP-LCNetV3 (the PP-OCRv4 detector's and
 * recognizer's backbone) puts such a "learnable affine block" after its convolutions, and
 * ONNX Runtime leaves it as two elementwise passes over the activations; folded, it also
 * no longer stands between the convolution and its activation, which ONNX Runtime then
 * fuses. Results differ from the original graph's by float rounding only.
 */
import { GraphView } from './graph.js';
import { makeTensor, tensorValues } from './model.js';
import { DataType, toNumber, type ModelProto, type NodeProto, type TensorProto } from './proto.js';
import { removeUnreadConstants } from './prune.js';

/** Folds every match in place; returns how many convolutions took a scale or offset. */
export function foldConvAffine(model: ModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const view = new GraphView(graph);
  /**
   * The scalar a binary node applies to `tensor`, where its other input is a one-element
   * constant of at most `rank` dims (the convolution's output rank: no broadcast beyond it).
   */
  const scalarOperand = (node: NodeProto, tensor: string, rank: number): number | undefined => {
    const [x, y] = node.input ?? [];
    const other = x === tensor ? y : y === tensor ? x : undefined;
    return other === undefined ? undefined : view.constantScalar(other, rank);
  };
  const readers = (tensor: string): number => view.consumers(tensor).length;

  const removed = new Set<NodeProto>();
  const added: TensorProto[] = [];
  const dropped = new Set<string>();
  let count = 0;
  for (const conv of view.nodes) {
    if (conv.opType !== 'Conv' || (conv.domain && conv.domain !== 'ai.onnx')) continue;
    const [x, w, b] = conv.input ?? [];
    const weights = w ? view.constantTensor(w) : undefined;
    const bias = b ? view.constantTensor(b) : undefined;
    // Only weights and bias of this convolution alone, in float32.
    if (!x || !weights || weights.dataType !== DataType.FLOAT || readers(w!) !== 1) continue;
    if (b && (!bias || bias.dataType !== DataType.FLOAT || readers(b) !== 1)) continue;
    let scale = 1;
    let offset = 0;
    let out = conv.output![0]!;
    const steps: NodeProto[] = [];
    for (let next = view.soleConsumer(out); next; next = view.soleConsumer(out)) {
      const v = scalarOperand(next, out, (weights.dims ?? []).length);
      if (v === undefined || !Number.isFinite(v)) break;
      if (next.opType === 'Mul') {
        scale *= v;
        offset *= v;
      } else if (next.opType === 'Add') offset += v;
      else break;
      steps.push(next);
      out = next.output![0]!;
    }
    if (steps.length === 0) continue;
    const outChannels = toNumber(weights.dims?.[0] ?? 0);
    const w2 = tensorValues(weights) as Float32Array;
    const b2 = bias ? (tensorValues(bias) as Float32Array) : new Float32Array(outChannels);
    if (b2.length !== outChannels) continue;
    for (let i = 0; i < w2.length; i++) w2[i] = w2[i]! * scale;
    for (let i = 0; i < b2.length; i++) b2[i] = b2[i]! * scale + offset;
    const wName = `${w}/folded`;
    const bName = `${b || `${conv.name || out}/bias`}/folded`;
    added.push(makeTensor(wName, w2, (weights.dims ?? []).map(toNumber)), makeTensor(bName, b2, [outChannels]));
    conv.input = [x, wName, bName];
    conv.output = [out];
    for (const s of steps) removed.add(s);
    for (const s of [w!, ...(b ? [b] : []), ...steps.flatMap((s) => s.input ?? [])]) dropped.add(s);
    count++;
  }
  if (count === 0) return 0;
  graph.node = view.nodes.filter((n) => !removed.has(n));
  graph.initializer = [...(graph.initializer ?? []), ...added];
  removeUnreadConstants(model, dropped);
  return count;
}
