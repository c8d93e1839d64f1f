/** The engine's own graph rewrites for ONNX Runtime, applied before its optimizer runs. */
import { decodeModel, writeModel } from '../onnx/model.js';
import { fuseHardSwish } from '../onnx/hardswish.js';
import { foldConvAffine } from '../onnx/conv-affine.js';

export interface GraphRewrites {
  /** Hard-swish subgraphs (x · clip(x + 3, 0, 6) / 6) rewritten as x · HardSigmoid(x). */
  hardSwish: number;
  /** Chains of scalar Mul / Add folded into the weights and bias of the convolution before or after them. */
  convAffine: number;
}

/**
 * Part of the engine cache's key where it holds rewritten models: a change to what the
 * rewrites do must change it, so that no entry written by older rewrites is read.
 */
export const REWRITES_VERSION = 1;

/** Whether a value read back (from a cache entry's header) is a GraphRewrites. */
export function isGraphRewrites(x: unknown): x is GraphRewrites {
  const r = x as GraphRewrites | undefined;
  return !!r && typeof r === 'object' && Number.isInteger(r.hardSwish) && Number.isInteger(r.convAffine);
}

/** The model with the rewrites applied (the same bytes where none applies). */
export function rewriteGraph(bytes: Uint8Array): { bytes: Uint8Array; rewrites: GraphRewrites } {
  const model = decodeModel(bytes);
  // Hard-swish first: its pattern must be whole when the scalar chains are folded.
  const hardSwish = fuseHardSwish(model);
  const convAffine = foldConvAffine(model);
  return { bytes: hardSwish + convAffine > 0 ? writeModel(model) : bytes, rewrites: { hardSwish, convAffine } };
}
