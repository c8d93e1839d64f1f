/**
 * The engine's graph rewrites on the PaddleOCR models: how many of each, and outputs that
 * move by float rounding only against onnxruntime-node on the model as given.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rewriteGraph } from '../../src/engine/rewrite.js';
import { decodeModel } from '../../src/onnx/model.js';
import { renderTextLines } from '../../src/bench/text-lines.js';
import { CLS_ITEM, CLS_MODEL, DET_MODEL, REC_MODEL, clsInput, ort } from './helpers.js';

async function run(bytes: Uint8Array, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    return (await s.run({ x: new ort.Tensor('float32', x, dims) }))[s.outputNames[0]!]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** A rendered text line (3 × 48 × 192) on a white page of 3 × 64 × 192, the detector's input. */
function page(): Float32Array {
  const line = renderTextLines(1, 5)[0]!.data;
  const [h, w] = [64, 192];
  const x = new Float32Array(3 * h * w).fill(1);
  for (let c = 0; c < 3; c++) x.set(line.subarray(c * 48 * w, (c + 1) * 48 * w), c * h * w + 8 * w);
  return x;
}

describe('rewriteGraph on the PaddleOCR models', () => {
  // Tolerances against ONNX Runtime's own spread: on the page below, the detector at
  // optimization level 'basic' differs from 'all' by 2.1e-5 on the same model.
  const cases = [
    { name: 'classifier', model: CLS_MODEL, dims: [2, ...CLS_ITEM], input: () => clsInput(7, 2), rewrites: { hardSwish: 18, convAffine: 0 }, nodes: [471, 399], within: 1e-5 },
    { name: 'recognizer', model: REC_MODEL, dims: [2, 3, 48, 96], input: () => clsInput(7, 2).slice(0, 2 * 3 * 48 * 96), rewrites: { hardSwish: 28, convAffine: 40 }, nodes: [765, 437], within: 1e-5 },
    { name: 'detector', model: DET_MODEL, dims: [1, 3, 64, 192], input: page, rewrites: { hardSwish: 24, convAffine: 38 }, nodes: [672, 318], within: 1e-4 },
  ];
  for (const c of cases) {
    it(`rewrites the ${c.name} (${JSON.stringify(c.rewrites)}); its outputs move within ${c.within}`, async () => {
      const bytes = readFileSync(c.model);
      const rewritten = rewriteGraph(bytes);
      expect(rewritten.rewrites).toEqual(c.rewrites);
      expect([decodeModel(bytes).graph!.node!.length, decodeModel(rewritten.bytes).graph!.node!.length]).toEqual(c.nodes);
      const x = c.input();
      const want = await run(bytes, x, c.dims);
      const got = await run(rewritten.bytes, x, c.dims);
      expect(got.length).toBe(want.length);
      // Outputs that mean something: probabilities over most of [0, 1].
      expect(want.reduce((m, v) => Math.max(m, v), 0)).toBeGreaterThan(0.5);
      expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]!)), 0)).toBeLessThanOrEqual(c.within);
    });
  }

  it('returns the bytes as they are where nothing applies', () => {
    const bytes = new Uint8Array(readFileSync(CLS_MODEL));
    const once = rewriteGraph(bytes).bytes;
    const twice = rewriteGraph(once);
    expect(twice.rewrites).toEqual({ hardSwish: 0, convAffine: 0 });
    expect(twice.bytes).toBe(once);
  });
});
