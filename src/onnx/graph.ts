/** Read-only queries over an ONNX graph: producers, consumers, initializers, value info, order. */
import { TensorrtNodeError } from '../errors.js';
import { tensorValues } from './model.js';
import { onnx, toNumber, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

export interface Consumer {
  node: NodeProto;
  /** Which input slot of the node reads the tensor. */
  index: number;
}

export class GraphView {
  readonly graph: GraphProto;
  readonly nodes: NodeProto[];
  readonly initializers = new Map<string, TensorProto>();
  readonly valueInfo = new Map<string, ValueInfoProto>();
  private readonly producerOf = new Map<string, NodeProto>();
  private readonly consumersOf = new Map<string, Consumer[]>();

  constructor(graph: GraphProto) {
    this.graph = graph;
    this.nodes = graph.node ?? [];
    for (const t of graph.initializer ?? []) this.initializers.set(t.name ?? '', t);
    for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
      this.valueInfo.set(v.name ?? '', v);
    }
    for (const n of this.nodes) {
      for (const o of n.output ?? []) if (o) this.producerOf.set(o, n);
      (n.input ?? []).forEach((name, index) => {
        if (!name) return;
        const list = this.consumersOf.get(name) ?? [];
        list.push({ node: n, index });
        this.consumersOf.set(name, list);
      });
    }
  }

  static of(model: ModelProto): GraphView {
    if (!model.graph) throw new TensorrtNodeError('EMODEL', 'ONNX model has no graph');
    return new GraphView(model.graph);
  }

  producer(tensor: string): NodeProto | undefined {
    return this.producerOf.get(tensor);
  }

  consumers(tensor: string): Consumer[] {
    return this.consumersOf.get(tensor) ?? [];
  }

  /** The one node reading `tensor`, where it is read once and is not a graph output. */
  soleConsumer(tensor: string): NodeProto | undefined {
    const consumers = this.consumers(tensor);
    const isOutput = (this.graph.output ?? []).some((o) => o.name === tensor);
    return consumers.length === 1 && !isOutput ? consumers[0]!.node : undefined;
  }

  isInitializer(tensor: string): boolean {
    return this.initializers.has(tensor);
  }

  /** A value fixed at build time: an initializer or the output of a Constant node. */
  isConstant(tensor: string): boolean {
    return this.initializers.has(tensor) || this.producerOf.get(tensor)?.opType === 'Constant';
  }

  /** The tensor of a constant: an initializer, or a Constant node's `value`. */
  constantTensor(tensor: string): TensorProto | undefined {
    const producer = this.producerOf.get(tensor);
    return this.initializers.get(tensor) ?? (producer?.opType === 'Constant' ? attribute(producer, 'value')?.t ?? undefined : undefined);
  }

  /**
   * The value of a one-element numeric constant (initializer or Constant node) of at most
   * `maxRank` dims, else undefined (a one-element tensor of higher rank broadcasts a
   * tensor up to its rank, so it is not a plain scalar there).
   */
  constantScalar(tensor: string, maxRank = Number.POSITIVE_INFINITY): number | undefined {
    const t = this.constantTensor(tensor);
    if (!t || (t.dims ?? []).length > maxRank) return undefined;
    let values;
    try {
      values = tensorValues(t);
    } catch {
      return undefined; // a type tensorValues does not read (float16, ...)
    }
    return values.length === 1 ? Number(values[0]) : undefined;
  }

  /** Graph inputs that are not initializers (what a caller feeds). */
  inputs(): ValueInfoProto[] {
    return (this.graph.input ?? []).filter((v) => !this.initializers.has(v.name ?? ''));
  }

  outputs(): ValueInfoProto[] {
    return this.graph.output ?? [];
  }

  /** Nodes in topological order (Kahn); EMODEL on a cycle or a dangling input. */
  topologicalOrder(): NodeProto[] {
    const given = new Set<string>([...this.initializers.keys(), ...(this.graph.input ?? []).map((v) => v.name ?? ''), '']);
    const waitingOn = new Map<NodeProto, number>();
    const ready: NodeProto[] = [];
    for (const n of this.nodes) {
      const needed = new Set((n.input ?? []).filter((i) => !given.has(i)));
      for (const i of needed) {
        if (!this.producerOf.has(i)) throw new TensorrtNodeError('EMODEL', `node '${n.name}' reads '${i}', which nothing produces`);
      }
      if (needed.size === 0) ready.push(n);
      else waitingOn.set(n, needed.size);
    }
    const order: NodeProto[] = [];
    for (let k = 0; k < ready.length; k++) {
      const n = ready[k]!;
      order.push(n);
      for (const o of new Set(n.output ?? [])) {
        if (!o || given.has(o)) continue;
        for (const c of new Set(this.consumers(o).map((c) => c.node))) {
          const left = (waitingOn.get(c) ?? 0) - 1;
          waitingOn.set(c, left);
          if (left === 0) ready.push(c);
        }
      }
    }
    if (order.length !== this.nodes.length) throw new TensorrtNodeError('EMODEL', 'ONNX graph has a cycle');
    return order;
  }

  /** Static shape of a tensor where value info gives one (dynamic axes as -1), else undefined. */
  shape(tensor: string): number[] | undefined {
    const init = this.initializers.get(tensor);
    if (init) return (init.dims ?? []).map(toNumber);
    const dims = this.valueInfo.get(tensor)?.type?.tensorType?.shape?.dim;
    if (!dims) return undefined;
    return dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0 ? toNumber(d.dimValue) : -1));
  }

  /** Element type of a tensor (TensorProto.DataType) where known. */
  elemType(tensor: string): number | undefined {
    const init = this.initializers.get(tensor);
    if (init) return init.dataType ?? undefined;
    return this.valueInfo.get(tensor)?.type?.tensorType?.elemType ?? undefined;
  }
}

/** The other input of a two-input node, where one of its inputs is `tensor`. */
export function otherInput(node: NodeProto, tensor: string): string | undefined {
  const [a, b] = node.input ?? [];
  return a === tensor ? b : b === tensor ? a : undefined;
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a && a.i !== undefined && a.i !== null ? toNumber(a.i) : fallback;
}

export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attributes: Record<string, number> = {}): NodeProto {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    name,
    attribute: Object.entries(attributes).map(([k, v]) =>
      onnx.AttributeProto.create({ name: k, i: v, type: onnx.AttributeProto.AttributeType.INT }),
    ),
  });
}

/** A float32 tensor value-info entry (dims: numbers, or strings for named dynamic axes). */
export function makeValueInfo(name: string, elemType: number, dims: ReadonlyArray<number | string> | undefined): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: dims === undefined ? undefined : { dim: dims.map((d) => (typeof d === 'number' && d >= 0 ? { dimValue: d } : { dimParam: typeof d === 'string' ? d : 'N' })) },
      },
    },
  });
}
