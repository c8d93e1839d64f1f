/** Clean-up after a graph rewrite. */
import type { GraphProto, ModelProto } from './proto.js';

/**
 * Removes what nothing reads any more: initializers (and their entries among the inputs,
 * which old IR versions list) and Constant nodes. ORT warns of each unused initializer at
 * session start. A subgraph's reads of outer names count as reads.
 */
export function removeUnused(model: ModelProto): void {
  const graph = model.graph!;
  const read = new Set<string>((graph.output ?? []).map((o) => o.name ?? ''));
  addReads(graph, read);
  const unread = (name: string | null | undefined): boolean => !read.has(name ?? '');
  const removed = new Set((graph.initializer ?? []).filter((t) => unread(t.name)).map((t) => t.name ?? ''));
  graph.initializer = (graph.initializer ?? []).filter((t) => !removed.has(t.name ?? ''));
  graph.input = (graph.input ?? []).filter((v) => !removed.has(v.name ?? ''));
  graph.node = (graph.node ?? []).filter((n) => n.opType !== 'Constant' || !(n.output ?? []).every(unread));
}

function addReads(graph: GraphProto, read: Set<string>): void {
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) read.add(i);
    for (const a of n.attribute ?? []) for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) addReads(g, read);
  }
}
