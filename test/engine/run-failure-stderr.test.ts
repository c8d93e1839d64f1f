/**
 * A run that fails inside the graph reaches the caller as EMODEL with onnxruntime's
 * message, and only there: at its default severity onnxruntime also wrote the message to
 * stderr, once per failed request, which floods a service's logs under bad input. The
 * model reshapes its input to a fixed [2, 4], so a request of one row passes the engine's
 * checks (the batch axis is open) and fails in onnxruntime. In a child process, whose
 * stderr (where the native library writes) can be read.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, node, tensor } from '../quantize/graphs.js';
import { runScript, srcUrl } from './helpers.js';

const script = (model: string): string => `
import { Engine, quantize } from ${srcUrl('src/index.ts')};
const row = (n) => ({ x: { data: new Float32Array(4 * n).fill(1), dims: [n, 4] } });
const out = {};
const engine = await Engine.build(${JSON.stringify(model)}, { backend: 'onnxruntime', instances: 1, maxBatchSize: 1 });
out.fits = Array.from((await engine.infer(row(2))).y.data);
try { await engine.infer(row(1)); out.engine = 'resolved'; } catch (e) { out.engine = e.code + ': ' + e.message; }
out.after = Array.from((await engine.infer(row(2))).y.data);
await engine.dispose();
try { await quantize(${JSON.stringify(model)}, { calibration: [row(1)] }); out.quantize = 'resolved'; } catch (e) { out.quantize = e.code + ': ' + e.message; }
console.log(JSON.stringify(out));
`;

describe('a run that fails inside the graph', () => {
  it('rejects with EMODEL and onnxruntime writes nothing to stderr', () => {
    const model = buildModel({
      nodes: [node('Reshape', ['x', 'shape'], ['r'], 'reshape'), node('MatMul', ['r', 'w'], ['y'], 'matmul')],
      initializers: [tensor('shape', BigInt64Array.from([2n, 4n]), [2]), tensor('w', Float32Array.from({ length: 12 }, (_, i) => i), [4, 3])],
      inputs: [{ name: 'x', dims: [-1, 4] }],
      outputs: [{ name: 'y', dims: [2, 3] }],
    });
    const r = runScript((dir) => script(join(dir, 'reshape-2x4.onnx')), { files: { 'reshape-2x4.onnx': model } });
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { fits: number[]; engine: string; after: number[]; quantize: string };
    // [1, 1, 1, 1] · w: each column's sum of w's rows, 0+3+6+9, 1+4+7+10, 2+5+8+11.
    expect(out.fits).toEqual([18, 22, 26, 18, 22, 26]);
    expect(out.engine).toMatch(/^EMODEL: onnxruntime run failed: .*Reshape/);
    expect(out.after).toEqual(out.fits);
    expect(out.quantize).toMatch(/^EMODEL: onnxruntime failed running the model for .*Reshape/);
    expect(r.stderr).not.toMatch(/onnxruntime|Reshape/);
  });
});
