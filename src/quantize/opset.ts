/**
 * Bring an opset 9-12 model to opset 13, where QuantizeLinear/DequantizeLinear take
 * a per-channel `axis`. Most ops kept their meaning from 9 to 13; the ones whose
 * attributes became inputs are rewritten (Clip and Pad at 11, Slice at 10, Squeeze,
 * Unsqueeze, ReduceSum and Split at 13), Softmax/LogSoftmax/Hardmax (whose axis
 * semantics changed at 13) are kept when the axis is the last one and otherwise
 * rewritten as Flatten → op → Reshape, Dropout becomes Identity (inference), and a
 * model using an op that cannot be carried over (Upsample, Resize before 11, TopK
 * before 10, Scatter) is refused with EMODEL.
 */
import { TensorrtNodeError } from '../errors.js';
import { GraphView, attribute, makeNode } from '../onnx/graph.js';
import { makeTensor, mainOpset } from '../onnx/model.js';
import { toNumber, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';

export const MIN_QDQ_OPSET = 13;
export const OLDEST_UPGRADABLE_OPSET = 9;

const REFUSED: Record<string, number> = { Upsample: Infinity, Scatter: Infinity, Resize: 11, TopK: 10 };

export function upgradeOpset(model: ModelProto): { from: number; to: number } {
  const from = mainOpset(model);
  if (from >= MIN_QDQ_OPSET) return { from, to: from };
  if (from < OLDEST_UPGRADABLE_OPSET) {
    throw new TensorrtNodeError('EMODEL', `opset ${from} is too old to quantize: convert the model to opset ${OLDEST_UPGRADABLE_OPSET} or newer (13+ preferred) with onnx.version_converter`, { opset: from });
  }
  const graph = model.graph!;
  const view = new GraphView(graph);
  const inits: TensorProto[] = [];
  const taken = new Set<string>([...view.initializers.keys(), ...view.nodes.flatMap((n) => [...(n.input ?? []), ...(n.output ?? []), n.name ?? ''])]);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const constInput = (node: NodeProto, what: string, values: Float32Array | BigInt64Array, dims: number[]): string => {
    const name = unique(`${node.name || node.opType}_${what}`);
    inits.push(makeTensor(name, values, dims));
    return name;
  };
  const ints = (node: NodeProto, name: string): number[] | undefined => {
    const a = attribute(node, name);
    return a && (a.ints ?? []).length > 0 ? a.ints!.map(toNumber) : undefined;
  };
  const floatAttr = (node: NodeProto, name: string): number | undefined => {
    const a = attribute(node, name);
    return a ? (a.f ?? 0) : undefined;
  };
  const drop = (node: NodeProto, ...names: string[]): void => {
    node.attribute = (node.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
  };
  const int64 = (v: number[]): BigInt64Array => BigInt64Array.from(v.map((x) => BigInt(x)));
  const refused = new Set<string>();
  const out: NodeProto[] = [];

  for (const node of view.nodes) {
    const op = node.opType ?? '';
    if (node.domain && node.domain !== 'ai.onnx') {
      out.push(node);
      continue;
    }
    if (REFUSED[op] !== undefined && from < REFUSED[op]!) {
      refused.add(op);
      continue;
    }
    const inputs = node.input ?? [];
    switch (op) {
      case 'Clip':
        if (from < 11) {
          const min = floatAttr(node, 'min');
          const max = floatAttr(node, 'max');
          node.input = [inputs[0]!, min === undefined ? '' : constInput(node, 'min', Float32Array.of(min), []), max === undefined ? '' : constInput(node, 'max', Float32Array.of(max), [])];
          while (node.input.length > 1 && node.input[node.input.length - 1] === '') node.input.pop();
          drop(node, 'min', 'max');
        }
        break;
      case 'Pad':
        if (from < 11) {
          const pads = ints(node, 'pads') ?? [];
          const value = floatAttr(node, 'value') ?? 0;
          node.input = [inputs[0]!, constInput(node, 'pads', int64(pads), [pads.length]), constInput(node, 'value', Float32Array.of(value), [])];
          drop(node, 'pads', 'value');
        }
        break;
      case 'Slice':
        if (from < 10) {
          const starts = ints(node, 'starts') ?? [];
          const ends = ints(node, 'ends') ?? [];
          const axes = ints(node, 'axes');
          node.input = [inputs[0]!, constInput(node, 'starts', int64(starts), [starts.length]), constInput(node, 'ends', int64(ends), [ends.length]), ...(axes ? [constInput(node, 'axes', int64(axes), [axes.length])] : [])];
          drop(node, 'starts', 'ends', 'axes');
        }
        break;
      case 'Squeeze':
      case 'Unsqueeze':
      case 'ReduceSum': {
        const axes = ints(node, 'axes');
        if (axes) node.input = [inputs[0]!, constInput(node, 'axes', int64(axes), [axes.length])];
        drop(node, 'axes');
        break;
      }
      case 'Split': {
        const split = ints(node, 'split');
        if (split) node.input = [inputs[0]!, constInput(node, 'split', int64(split), [split.length])];
        drop(node, 'split');
        break;
      }
      case 'Dropout': {
        if (node.output!.length > 1 && node.output![1] && view.consumers(node.output![1]!).length > 0) {
          refused.add('Dropout (mask used)');
          break;
        }
        node.opType = 'Identity';
        node.input = [inputs[0]!];
        node.output = [node.output![0]!];
        node.attribute = [];
        break;
      }
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax': {
        const axisAttr = attribute(node, 'axis');
        const axis = axisAttr ? toNumber(axisAttr.i) : 1;
        const rank = (view.shape(inputs[0]!) ?? view.shape(node.output![0]!))?.length;
        if (axis === -1 || (rank !== undefined && (axis === rank - 1 || axis + rank === rank - 1))) break; // same meaning in 13
        // Old meaning: coerce to 2-D at `axis`, normalize each row, restore the shape.
        const flat = unique(`${node.name || op}_flat`);
        const normed = unique(`${node.name || op}_2d`);
        const shape = unique(`${node.name || op}_shape`);
        out.push(
          makeNode('Flatten', [inputs[0]!], [flat], unique(`${node.name || op}_Flatten`), { axis }),
          makeNode(op, [flat], [normed], node.name || unique(op), { axis: 1 }),
          makeNode('Shape', [inputs[0]!], [shape], unique(`${node.name || op}_Shape`)),
        );
        node.opType = 'Reshape';
        node.input = [normed, shape];
        node.attribute = [];
        node.name = unique(`${node.name || op}_Reshape`);
        break;
      }
      default:
        break;
    }
    out.push(node);
  }
  if (refused.size > 0) {
    throw new TensorrtNodeError('EMODEL', `opset ${from} model uses ${[...refused].join(', ')}, which cannot be carried to opset 13 (per-channel Q/DQ needs 13): convert it with onnx.version_converter first`, { opset: from });
  }
  graph.node = out;
  graph.initializer = [...(graph.initializer ?? []), ...inits];
  for (const o of model.opsetImport ?? []) if (!o.domain || o.domain === 'ai.onnx') o.version = MIN_QDQ_OPSET;
  if (toNumber(model.irVersion) < 7) model.irVersion = 7;
  return { from, to: MIN_QDQ_OPSET };
}
