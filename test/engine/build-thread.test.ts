/**
 * The build's worker thread: quantization and rewrites give there the very bytes they give
 * on the JS thread, errors keep their codes, progress arrives, and what cannot be copied to
 * the worker stays on the JS thread and says why.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quantizeOffThread, rewriteOffThread, REWRITE_INLINE_BYTES } from '../../src/engine/build-thread.js';
import { rewriteGraph } from '../../src/engine/rewrite.js';
import { quantize, type QuantizeProgress } from '../../src/quantize/index.js';
import { TensorrtNodeError } from '../../src/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { CLS_ITEM_SIZE, CLS_MODEL, REC_MODEL, clsInput, ort, withWarnings } from './helpers.js';
import { convReluMatMul, random, randomArray } from '../quantize/graphs.js';

const samples = (n: number, seed: number): Float32Array[] => Array.from({ length: n }, (_, i) => clsInput(seed + i));
const shapes = { x: [-1, 3, 48, 192] };

describe('build thread', () => {
  it('rewrites a large model on the worker into the same bytes as on the JS thread, a small one on the JS thread', async () => {
    const rec = new Uint8Array(readFileSync(REC_MODEL));
    expect(rec.byteLength).toBeGreaterThanOrEqual(REWRITE_INLINE_BYTES);
    const off = await rewriteOffThread(rec);
    const inline = rewriteGraph(rec);
    expect(off.thread).toBe('worker');
    expect(off.rewrites).toEqual(inline.rewrites);
    expect(off.rewrites.hardSwish).toBeGreaterThan(0);
    expect(Buffer.from(off.bytes).equals(Buffer.from(inline.bytes))).toBe(true);
    // The caller's bytes are copied to the worker, not taken from it.
    expect(rec.byteLength).toBe(readFileSync(REC_MODEL).byteLength);

    const cls = new Uint8Array(readFileSync(CLS_MODEL));
    const small = await rewriteOffThread(cls);
    expect(small.thread).toMatch(/^JS thread \(a model under 2 MB\)$/);
    expect(Buffer.from(small.bytes).equals(Buffer.from(rewriteGraph(cls).bytes))).toBe(true);
  });

  it('quantizes on the worker into the same Q/DQ model as on the JS thread, with progress', async () => {
    const bytes = new Uint8Array(readFileSync(CLS_MODEL));
    const calibration = samples(12, 100);
    const events: QuantizeProgress[] = [];
    const off = await quantizeOffThread(bytes, { calibration, shapes, method: 'percentile', onProgress: (e) => events.push(e) });
    const inline = await quantize(bytes, { calibration, shapes, method: 'percentile' });
    expect(off.thread).toBe('worker');
    expect(Buffer.from(off.model).equals(Buffer.from(inline.model))).toBe(true);
    expect(off.report.quantizedNodes).toEqual(inline.report.quantizedNodes);
    expect(events.map((e) => e.phase)).toContain('calibration');
    expect(events.at(-1)?.phase).toBe('done');
    // The caller's samples are intact (copied, not transferred).
    expect(calibration[0]!.length).toBe(CLS_ITEM_SIZE);
  });

  it('copies onnxruntime Tensors to the worker as plain tensors', async () => {
    const bytes = new Uint8Array(readFileSync(CLS_MODEL));
    const calibration = samples(4, 300).map((d) => ({ x: new ort.Tensor('float32', d, [1, 3, 48, 192]) }));
    const off = await quantizeOffThread(bytes, { calibration, method: 'max' });
    const inline = await quantize(bytes, { calibration, method: 'max' });
    expect(off.thread).toBe('worker');
    expect(Buffer.from(off.model).equals(Buffer.from(inline.model))).toBe(true);
  });

  it('keeps a lazy iterable or a metric function on the JS thread, and says why', async () => {
    const { bytes } = convReluMatMul(1);
    function* lazy(): Generator<Float32Array> {
      for (let i = 0; i < 4; i++) yield randomArray(50, random(10 + i));
    }
    const eager = Array.from(lazy());
    const a = await quantizeOffThread(bytes, { calibration: lazy(), method: 'max' });
    expect(a.thread).toBe('JS thread (calibration is a lazy iterable)');
    const b = await quantizeOffThread(bytes, { calibration: eager, method: 'max' });
    expect(b.thread).toBe('worker');
    expect(Buffer.from(a.model).equals(Buffer.from(b.model))).toBe(true);
    const validation = eager.map((x) => ({ feeds: { x: { data: x, dims: [1, 2, 5, 5] } } }));
    const c = await quantizeOffThread(bytes, { calibration: eager, method: 'max', validation: { data: validation, metric: () => 1 } });
    expect(c.thread).toBe('JS thread (the validation metric is a function)');
    // Validation data in an array and a built-in metric go along to the worker.
    const d = await quantizeOffThread(bytes, { calibration: eager, method: 'max', validation: { data: validation, metric: 'agreement' } });
    const inline = await quantize(bytes, { calibration: eager, method: 'max', validation: { data: validation, metric: 'agreement' } });
    expect(d.thread).toBe('worker');
    expect(Buffer.from(d.model).equals(Buffer.from(inline.model))).toBe(true);
    expect(d.report.validation).toEqual(inline.report.validation);
    expect(d.report.validation).toBeDefined();
  });

  it("brings the worker's errors back with their code, details and message", async () => {
    const { bytes } = convReluMatMul(1);
    const bad = [{ x: { data: new Float32Array(49), dims: [1, 2, 5, 5] } }];
    const fail = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);
    const off = await fail(quantizeOffThread(bytes, { calibration: bad }));
    const inline = await fail(quantize(bytes, { calibration: bad }));
    expect(off).toBeInstanceOf(TensorrtNodeError);
    expect(inline).toBeInstanceOf(TensorrtNodeError);
    const [o, i] = [off as TensorrtNodeError, inline as TensorrtNodeError];
    expect(o.code).toBe(i.code);
    expect(o.message).toBe(i.message);
    expect(o.details).toEqual(i.details);
  });

  it('an INT8 engine says where it quantized and rewrote', async () => {
    const engine = await Engine.build(CLS_MODEL, { precision: 'int8', calibration: samples(4, 500), shapes });
    try {
      expect(engine.buildThreads).toEqual({ quantization: 'worker', graphRewrites: 'JS thread (a model under 2 MB)' });
      expect(Object.keys(await engine.infer(clsInput(1)))).toEqual(engine.outputs.map((o) => o.name));
    } finally {
      await engine.dispose();
    }
  });

  it("says the quantizer's warnings as EQUANTIZE process warnings: calibration data of zeros", async () => {
    const { value: engine, warnings } = await withWarnings('EQUANTIZE', () => Engine.build(CLS_MODEL, { backend: 'onnxruntime', precision: 'int8', calibration: [new Float32Array(CLS_ITEM_SIZE)], shapes }));
    try {
      expect(engine.quantization!.warnings.length).toBeGreaterThan(0);
      expect(warnings).toEqual(engine.quantization!.warnings.map((w) => `tensorrt-node: quantization: ${w}`));
      expect(warnings.join('\n')).toMatch(/model input 'x' got only zeros: check the calibration data/);
    } finally {
      await engine.dispose();
    }
  });
});
