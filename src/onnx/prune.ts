/** Clean-up after a graph rewrite. */
import type { ModelProto } from './proto.js';

/**
 * Removes the constants among `candidates` (inputs of nodes a rewrite removed) that nothing
 * reads any more, Constant nodes or initializers: ORT warns of each unused one at session start.
 * Left alone where a node holds a subgraph, which may read outer names.
 */
export function removeUnreadConstants(model: ModelProto, candidates: Set<string>): void {
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0))) return;
  const read = new Set<string>([...(graph.output ?? []).map((o) => o.name ?? ''), ...(graph.input ?? []).map((i) => i.name ?? '')]);
  for (const n of nodes) for (const i of n.input ?? []) read.add(i);
  const unread = (name: string | null | undefined): boolean => !!name && candidates.has(name) && !read.has(name);
  graph.node = nodes.filter((n) => !(n.opType === 'Constant' && (n.output ?? []).every(unread)));
  graph.initializer = (graph.initializer ?? []).filter((t) => !unread(t.name));
}
