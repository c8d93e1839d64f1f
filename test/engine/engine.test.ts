import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEntry } from '../../src/cache/store.js';
import { Engine } from '../../src/engine/engine.js';
import { isTensorrtNodeError } from '../../src/errors.js';
import { QDQ_SESSION_CONFIG } from '../../src/quantize/ort-session.js';
import type { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import {
  BACKGROUND_POLICY, CLS_ITEM, CLS_ITEM_SIZE, CLS_MODEL, HAVE_MNIST, REC_MODEL, MNIST_MODEL, MNIST_SKIP_REASON,
  clsInput, mnistImages, ort, engineGraphSession, referenceSession, sameBits,
} from './helpers.js';

describe('Engine on the PaddleOCR text-direction classifier (onnxruntime backend)', () => {
  let engine: Engine;
  let reference: Awaited<ReturnType<typeof engineGraphSession>>;

  beforeAll(async () => {
    // maxBatchSize given, so that what these tests assert of batches does not rest on the
    // probe's timing (test/engine/batch-probe.test.ts covers the probe).
    engine = await Engine.build(CLS_MODEL, { backend: 'auto', instances: 2, threadsPerInstance: 1, maxBatchSize: 8, shapes: { x: [-1, ...CLS_ITEM] } });
    reference = await engineGraphSession(CLS_MODEL);
  });
  afterAll(async () => {
    await engine?.dispose();
    await reference?.release();
  });

  it('reports inputs, outputs, backend and batching', () => {
    expect(engine.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [-1, 3, -1, -1] }]);
    expect(engine.outputs).toEqual([{ name: 'softmax_0.tmp_0', dtype: 'float32', shape: [-1, 2] }]);
    expect(engine.backend.name).toBe('onnxruntime');
    expect(engine.backend.instances).toBe(2);
    if (process.platform === 'linux') expect(engine.backend.threadPolicy).toBe(BACKGROUND_POLICY);
    // No GPU and no TensorRT here: auto falls back and says why.
    expect(engine.backend.reason).toMatch(/auto: TensorRT is not usable \(.+\)/);
    expect(engine.batching.enabled).toBe(true);
    expect(engine.batching.maxBatchSize).toBe(8);
    expect(engine.batching.probe).toBeUndefined();
  });

  it('gives the same fp32 bits as plain onnxruntime-node on the graph it runs, request by request', async () => {
    expect(engine.backend.graphRewrites).toEqual({ hardSwish: 18, convAffine: 0 });
    for (const seed of [1, 2, 3]) {
      const x = clsInput(seed);
      const got = await engine.infer(x);
      const want = await reference.run({ x: new ort.Tensor('float32', x, [1, ...CLS_ITEM]) });
      const out = got['softmax_0.tmp_0']!;
      expect(out.dims).toEqual([1, 2]);
      expect(out.type).toBe('float32');
      expect(sameBits(out.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
  });

  it('with graphRewrites: false, gives plain onnxruntime-node\'s bits on the model as given; by default, the same within float rounding (1e-5)', async () => {
    const exact = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 8, shapes: { x: [-1, ...CLS_ITEM] }, graphRewrites: false });
    const plain = await referenceSession(CLS_MODEL);
    try {
      expect(exact.backend.graphRewrites).toBeUndefined();
      let largest = 0;
      for (const seed of [1, 2, 3, 4]) {
        const x = clsInput(seed, 2);
        const want = (await plain.run({ x: new ort.Tensor('float32', x, [2, ...CLS_ITEM]) }))['softmax_0.tmp_0']!.data as Float32Array;
        expect(sameBits((await exact.infer(x))['softmax_0.tmp_0']!.data as Float32Array, want)).toBe(true);
        const fused = (await engine.infer(x))['softmax_0.tmp_0']!.data as Float32Array;
        for (let i = 0; i < want.length; i++) largest = Math.max(largest, Math.abs(fused[i]! - want[i]!));
      }
      expect(largest).toBeLessThan(1e-5); // 3e-7 here; other CPUs pick other kernels
    } finally {
      await exact.dispose();
      await plain.release();
    }
  });

  it('merges concurrent requests into batches whose rows equal each request run alone', async () => {
    const inputs = Array.from({ length: 24 }, (_, i) => clsInput(100 + i, 1 + (i % 3)));
    const before = engine.stats();
    const results = await Promise.all(inputs.map((x) => engine.infer(x)));
    const after = engine.stats();
    // Fewer executions than requests: they were merged.
    expect(after.batches - before.batches).toBeLessThan(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const x = inputs[i]!;
      const n = x.length / CLS_ITEM_SIZE;
      const alone = await reference.run({ x: new ort.Tensor('float32', x, [n, ...CLS_ITEM]) });
      const out = results[i]!['softmax_0.tmp_0']!;
      expect(out.dims).toEqual([n, 2]);
      expect(sameBits(out.data as Float32Array, alone['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    }
  });

  it('takes a record of { data, dims } or an onnxruntime Tensor, and a Buffer of the bytes', async () => {
    const x = clsInput(7);
    const want = (await engine.infer(x))['softmax_0.tmp_0']!.data;
    const a = await engine.infer({ x: { data: x, dims: [1, 3, 48, 192] } });
    const b = await engine.infer({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) });
    const c = await engine.infer(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    for (const r of [a, b, c]) expect(sameBits(r['softmax_0.tmp_0']!.data as Float32Array, want as Float32Array)).toBe(true);
  });

  it('leaves the caller\'s input intact (the engine copies into its own batch buffer)', async () => {
    const x = clsInput(9);
    const copy = x.slice();
    await engine.infer(x);
    expect(x.byteLength).toBe(copy.byteLength);
    expect(sameBits(x, copy)).toBe(true);
  });

  it('allocates reusable input tensors shaped from `shapes`', async () => {
    const io = engine.allocate(2);
    expect(io.x!.dims).toEqual([2, 3, 48, 192]);
    (io.x!.data as Float32Array).set(clsInput(11, 2));
    const r = await engine.infer({ x: io.x! });
    const want = await reference.run({ x: new ort.Tensor('float32', clsInput(11, 2), [2, ...CLS_ITEM]) });
    expect(sameBits(r['softmax_0.tmp_0']!.data as Float32Array, want['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
  });

  it('allocate() and allocateOutputs() refuse a batch that is not a positive integer, or too large for a Buffer, with EINPUT', () => {
    for (const batch of [0, -1, 2.5, Number.NaN]) {
      expect(() => engine.allocate(batch)).toThrow(expect.objectContaining({ code: 'EINPUT', details: expect.objectContaining({ tensor: 'batch', received: String(batch) }) }));
      expect(() => engine.allocateOutputs(batch)).toThrow(expect.objectContaining({ code: 'EINPUT' }));
    }
    // 1e9 rows of 3 x 48 x 192 float32: 1.1e14 bytes.
    expect(() => engine.allocate(1e9)).toThrow(expect.objectContaining({ code: 'EINPUT', details: expect.objectContaining({ tensor: 'x', received: '110592000000000 bytes for [1000000000,3,48,192] float32' }) }));
  });

  it('writes results into caller memory (allocateOutputs, a Buffer), also from a merged batch', async () => {
    const outs = engine.allocateOutputs(2);
    expect(Object.keys(outs)).toEqual(['softmax_0.tmp_0']);
    expect(outs['softmax_0.tmp_0']!.dims).toEqual([2, 2]);
    const mine = Buffer.alloc(8);
    // Submitted together, 6 rows over 2 idle workers: [a, b] and [c, d] each run as one
    // batch, so b's rows sit after a's in its batch's result.
    const before = engine.stats().batches;
    const [a, b] = await Promise.all([
      engine.infer(clsInput(21, 2), { outputs: { 'softmax_0.tmp_0': outs['softmax_0.tmp_0']!.data } }),
      engine.infer(clsInput(22), { outputs: { 'softmax_0.tmp_0': mine } }),
      engine.infer(clsInput(23)),
      engine.infer(clsInput(24, 2)),
    ]);
    expect(engine.stats().batches - before).toBe(2);
    const wantA = await reference.run({ x: new ort.Tensor('float32', clsInput(21, 2), [2, ...CLS_ITEM]) });
    const wantB = await reference.run({ x: new ort.Tensor('float32', clsInput(22), [1, ...CLS_ITEM]) });
    expect(sameBits(outs['softmax_0.tmp_0']!.data as Float32Array, wantA['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    expect(a!['softmax_0.tmp_0']!.data.buffer).toBe(outs['softmax_0.tmp_0']!.data.buffer);
    expect(sameBits(new Float32Array(mine.buffer, mine.byteOffset, 2), wantB['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
    expect(b!['softmax_0.tmp_0']!.data).toBeInstanceOf(Float32Array);
    expect(b!['softmax_0.tmp_0']!.data.buffer).toBe(mine.buffer);
    expect(b!['softmax_0.tmp_0']!.data.byteOffset).toBe(mine.byteOffset);
    expect(b!['softmax_0.tmp_0']!.dims).toEqual([1, 2]);
  });

  it('counts a request in stats() and metrics() as soon as its await returns', async () => {
    const before = engine.stats().succeeded;
    await engine.infer(clsInput(42));
    expect(engine.stats().succeeded).toBe(before + 1);
    await engine.infer(clsInput(43));
    expect(await engine.metrics()).toContain(`nv_inference_request_success{model="ch_ppocr_mobile_v2.0_cls_infer",version="1"} ${before + 2}`);
  });

  it('counts requests, inferences and batches, and gives latency percentiles and Triton metrics', async () => {
    const s = engine.stats();
    expect(s.requests).toBe(s.succeeded + Object.values(s.failed).reduce((a, b) => a + (b ?? 0), 0));
    expect(s.inferences).toBeGreaterThan(s.succeeded - 1);
    expect(s.meanBatchSize).toBeGreaterThan(1);
    expect(s.latencyMs.samples).toBe(s.succeeded);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p99);
    expect(s.timeToFirstResultMs).toBeGreaterThan(s.buildMs);
    const text = await engine.metrics();
    expect(text).toContain(`nv_inference_request_success{model="ch_ppocr_mobile_v2.0_cls_infer",version="1"} ${s.succeeded}`);
    expect(text).toContain(`nv_inference_count{model="ch_ppocr_mobile_v2.0_cls_infer",version="1"} ${s.inferences}`);
    expect(text).toContain(`nv_inference_exec_count{model="ch_ppocr_mobile_v2.0_cls_infer",version="1"} ${s.batches}`);
    for (const name of ['nv_inference_pending_request_count', 'nv_inference_queue_duration_us', 'nv_inference_compute_infer_duration_us', 'nv_inference_request_duration_us']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/nv_inference_request_failure\{model="[^"]+",version="1",reason="REJECTED"\} \d+/);
    // Totals handed to prom-client at each scrape (this engine's second): the queue time is stats()'s, in µs.
    const queueUs = Number(/nv_inference_queue_duration_us\{model="[^"]+",version="1"\} (\S+)/.exec(text)?.[1]);
    expect(queueUs / (s.totalQueueMs * 1000)).toBeCloseTo(1, 9);
    // The request summary holds the same requests as stats(): its count, and its median in µs.
    expect(text).toContain('# TYPE nv_inference_request_summary_us summary');
    expect(text).toContain(`nv_inference_request_summary_us_count{model="ch_ppocr_mobile_v2.0_cls_infer",version="1"} ${s.succeeded}`);
    const median = Number(/nv_inference_request_summary_us\{quantile="0.5",model="[^"]+",version="1"\} (\S+)/.exec(text)?.[1]);
    expect(median).toBeCloseTo(s.latencyMs.p50 * 1000, 6);
    expect(text).toMatch(/nv_inference_queue_summary_us\{quantile="0.99",model="[^"]+",version="1"\} \d/);
    // The backend's own counters, one series each, as stats() gives them.
    const counters = engine.stats().backendCounters!;
    expect(text).toContain('# TYPE tensorrt_node_backend_counter gauge');
    expect(text).toContain(`tensorrt_node_backend_counter{model="ch_ppocr_mobile_v2.0_cls_infer",version="1",counter="runs"} ${counters.runs}`);
    expect(counters.runs).toBeGreaterThanOrEqual(s.batches); // and any probes at build
    const busyMs = Number(/tensorrt_node_backend_counter\{model="[^"]+",version="1",counter="sessionRunMs"\} (\S+)/.exec(text)?.[1]);
    expect(busyMs).toBeCloseTo(counters.sessionRunMs!, 6);
    // Time inside run() is part of each batch's dispatch-to-result time, which every request of the batch counts.
    const computeUs = Number(/nv_inference_compute_infer_duration_us\{model="[^"]+",version="1"\} (\S+)/.exec(text)?.[1]);
    expect(busyMs).toBeGreaterThan(0);
    expect(busyMs * 1000).toBeLessThanOrEqual(computeUs);
  });
});

describe('Engine on the PaddleOCR recognizer (dynamic width)', () => {
  it('merges only requests of the same width, and every row equals plain onnxruntime-node', async () => {
    const engine = await Engine.build(REC_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    const reference = await engineGraphSession(REC_MODEL);
    try {
      expect(engine.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [-1, 3, 48, -1] }]);
      const widths = [160, 320, 160, 320, 160, 96];
      const inputs = widths.map((w, i) => ({ data: clsInput(100 + i, 2).slice(0, 3 * 48 * w), dims: [1, 3, 48, w] }));
      const outputs = await Promise.all(inputs.map((x) => engine.infer({ x })));
      // One batch per width: three 160s, two 320s, one 96.
      expect(engine.stats().batches).toBe(3);
      const name = reference.outputNames[0]!;
      for (let i = 0; i < inputs.length; i++) {
        const want = (await reference.run({ x: new ort.Tensor('float32', inputs[i]!.data, inputs[i]!.dims) }))[name]!;
        expect(outputs[i]![name]!.dims).toEqual([1, widths[i]! / 8, 6625]);
        expect(sameBits(outputs[i]![name]!.data as Float32Array, want.data as Float32Array)).toBe(true);
      }
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });
});

/** The memory the engine's batcher hands its ONNX Runtime backend to reuse, in order (the backend still gets it). */
function recordReleases(engine: Engine): ArrayBufferLike[] {
  const backend = (engine as unknown as { impl: OnnxruntimeBackend }).impl;
  const released: ArrayBufferLike[] = [];
  const release = backend.release.bind(backend);
  backend.release = (outputs) => {
    for (const t of Object.values(outputs)) released.push(t.data.buffer);
    release(outputs);
  };
  return released;
}

describe('large results: memory reused once every caller has a copy', () => {
  it('releases a batch only when no caller holds a view of it; every result equals onnxruntime-node', async () => {
    // Recognizer rows at width 64 are 212 KB: the backend recycles such results.
    const engine = await Engine.build(REC_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 2, priorityLevels: 2, shapes: { x: [-1, 3, 48, 64] } });
    const released = recordReleases(engine);
    const reference = await engineGraphSession(REC_MODEL);
    const name = reference.outputNames[0]!;
    const row = 3 * 48 * 64;
    try {
      const kept: { data: Float32Array; seed: number; rows: number }[] = [];
      const views = new Set<ArrayBufferLike>();
      for (let round = 0; round < 4; round++) {
        // Copies into caller memory, views of the batch, and a 5-row request split over batches.
        const asks = Array.from({ length: 8 }, (_, i) => ({ seed: round * 10 + i, rows: i === 7 ? 5 : 1, copy: i % 2 === 0 || round === 3 }));
        const results = await Promise.all(asks.map(({ seed, rows, copy }) => {
          const x = clsInput(seed, rows * 2).slice(0, row * rows);
          return engine.infer(x, copy ? { outputs: { [name]: new Float32Array(rows * 8 * 6625) } } : {});
        }));
        results.forEach((r, i) => {
          const data = r[name]!.data as Float32Array;
          kept.push({ data, seed: asks[i]!.seed, rows: asks[i]!.rows });
          if (!asks[i]!.copy) views.add(data.buffer);
        });
        await new Promise((r) => setImmediate(r)); // the deferred bookkeeping releases
      }
      // A split request's first part waits while other batches of its size run: its rows
      // must stay intact until the parts are joined, though the request copies its result.
      const split = engine.infer(clsInput(90, 12).slice(0, row * 6), { priority: 2, outputs: { [name]: new Float32Array(6 * 8 * 6625) } });
      await new Promise((r) => setImmediate(r)); // its first part is running
      const ahead = [91, 92, 93].map((seed) => engine.infer(clsInput(seed, 4).slice(0, row * 2), { priority: 1, outputs: { [name]: new Float32Array(2 * 8 * 6625) } }));
      for (const [i, r] of [await split, ...(await Promise.all(ahead))].entries()) {
        kept.push({ data: r[name]!.data as Float32Array, seed: 90 + i, rows: i === 0 ? 6 : 2 });
      }
      expect(released.length).toBeGreaterThan(0);
      for (const b of views) expect(released.includes(b)).toBe(false);
      for (const { data, seed, rows } of kept) {
        const x = clsInput(seed, rows * 2).slice(0, row * rows);
        const want = (await reference.run({ x: new ort.Tensor('float32', x, [rows, 3, 48, 64]) }))[name]!.data as Float32Array;
        expect(sameBits(data, want)).toBe(true);
      }
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });
});

describe('large results of a request split over batches', () => {
  it('joins the parts into the caller\'s memory, and gives every part\'s memory back once joined', async () => {
    // Recognizer rows at width 64 are 212 KB; batches of at most 2 rows split a 6-row request in 3.
    const engine = await Engine.build(REC_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 2, shapes: { x: [-1, 3, 48, 64] } });
    const released = recordReleases(engine);
    const reference = await engineGraphSession(REC_MODEL);
    const name = reference.outputNames[0]!;
    const rows = 6;
    const x = (seed: number): Float32Array => clsInput(seed, rows * 2).slice(0, 3 * 48 * 64 * rows);
    const want = async (seed: number): Promise<Float32Array> => (await reference.run({ x: new ort.Tensor('float32', x(seed), [rows, 3, 48, 64]) }))[name]!.data as Float32Array;
    const settle = (): Promise<void> => new Promise((r) => setImmediate(r)); // the deferred bookkeeping releases
    try {
      // Into caller memory: joined there, no copy after, and the three parts' memory released.
      const dest = new Float32Array(rows * 8 * 6625);
      const into = await engine.infer(x(1), { outputs: { [name]: dest } });
      await settle();
      expect(into[name]!.data.buffer).toBe(dest.buffer);
      expect(sameBits(into[name]!.data as Float32Array, await want(1))).toBe(true);
      expect(new Set(released).size).toBe(3);
      // Without: the joined result is the caller's own memory; the parts' memory goes back too.
      released.length = 0;
      const own = await engine.infer(x(2));
      await settle();
      expect(released).toHaveLength(3);
      expect(released).not.toContain(own[name]!.data.buffer);
      // Later results land in the memory given back (the worker copies into it): still right,
      // and the earlier results, which own their memory, are untouched.
      for (const seed of [3, 4, 5]) expect(sameBits((await engine.infer(x(seed)))[name]!.data as Float32Array, await want(seed))).toBe(true);
      expect(sameBits(into[name]!.data as Float32Array, await want(1))).toBe(true);
      expect(sameBits(own[name]!.data as Float32Array, await want(2))).toBe(true);
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });
});

describe('INT8 on ONNX Runtime', () => {
  it('serves the Q/DQ model as onnxruntime does with its Q/DQ handling off: weights folded once, same numbers', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-qdq-'));
    const calibration = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => ({ x: { data: clsInput(seed), dims: [1, ...CLS_ITEM] } }));
    const engine = await Engine.build(CLS_MODEL, { precision: 'int8', calibration, cacheDir, instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } });
    const sessions: OrtTypes.InferenceSession[] = [];
    try {
      const entry = await loadEntry(cacheDir, engine.cache.key!, 'onnx.bin');
      if (entry.status !== 'hit') throw new Error(`no Q/DQ artifact in the cache: ${entry.status}`);
      const one = { intraOpNumThreads: 1, interOpNumThreads: 1 };
      // The graph the engine runs: the cached artifact, the Q/DQ model with the engine's rewrites.
      expect(entry.meta.graphRewrites).toEqual(engine.backend.graphRewrites);
      expect(engine.backend.graphRewrites!.hardSwish).toBeGreaterThan(0);
      const graph = entry.payload;
      const folded = await ort.InferenceSession.create(graph, { ...one, extra: { session: QDQ_SESSION_CONFIG } });
      const unfolded = await ort.InferenceSession.create(graph, one);
      sessions.push(folded, unfolded);
      let differs = false;
      for (const seed of [11, 12, 13, 14, 15, 16]) {
        const x = clsInput(seed);
        const got = (await engine.infer(x))['softmax_0.tmp_0']!.data as Float32Array;
        const feeds = { x: new ort.Tensor('float32', x, [1, ...CLS_ITEM]) };
        expect(sameBits(got, (await folded.run(feeds))['softmax_0.tmp_0']!.data as Float32Array)).toBe(true);
        differs ||= !sameBits(got, (await unfolded.run(feeds))['softmax_0.tmp_0']!.data as Float32Array);
      }
      // The two ways differ in rounding, so the comparison above tells them apart.
      expect(differs).toBe(true);
    } finally {
      for (const s of sessions) await s.release();
      await engine.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('INT8 calibration given as bare typed arrays', () => {
  it("takes their dims from 'shapes', as infer() does: the same engine as from tensors", async () => {
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const options = { backend: 'onnxruntime' as const, precision: 'int8' as const, instances: 1, threadsPerInstance: 1, maxBatchSize: 4, shapes: { x: [-1, ...CLS_ITEM] } };
    const bare = await Engine.build(CLS_MODEL, { ...options, calibration: seeds.map((seed) => clsInput(seed)) });
    const tensors = await Engine.build(CLS_MODEL, { ...options, calibration: seeds.map((seed) => ({ x: { data: clsInput(seed), dims: [1, ...CLS_ITEM] } })) });
    try {
      expect(bare.quantization!.calibration.samples).toBe(8);
      expect(bare.quantization!.calibration.tensors.map((t) => t.amax)).toEqual(tensors.quantization!.calibration.tensors.map((t) => t.amax));
      for (const seed of [21, 22, 23]) {
        const a = (await bare.infer(clsInput(seed)))['softmax_0.tmp_0']!.data as Float32Array;
        const b = (await tensors.infer(clsInput(seed)))['softmax_0.tmp_0']!.data as Float32Array;
        expect(sameBits(a, b)).toBe(true);
      }
    } finally {
      await bare.dispose();
      await tensors.dispose();
    }
    // Without shapes the model's dynamic axes leave them unknown: EINPUT says how.
    await expect(Engine.build(CLS_MODEL, { backend: 'onnxruntime', precision: 'int8', calibration: [clsInput(1)] }))
      .rejects.toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: "a { data, dims } tensor, or a 'shapes' option fixing [?,3,?,?]" } });
  });
});

describe('build progress', () => {
  it('a throwing onProgress does not fail the build; it is reported once as a warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    let calls = 0;
    try {
      const calibration = [1, 2, 3, 4].map((seed) => ({ x: { data: clsInput(seed), dims: [1, ...CLS_ITEM] } }));
      const engine = await Engine.build(CLS_MODEL, {
        precision: 'int8', calibration, instances: 1, threadsPerInstance: 1,
        onProgress: () => {
          calls++;
          throw new Error('progress bar broke');
        },
      });
      await engine.dispose();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(calls).toBeGreaterThan(1);
      expect(warnings.filter((m) => m.includes('onProgress callback threw (progress bar broke)'))).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('backend selection on a machine without a GPU', () => {
  it("refuses backend 'tensorrt' with the reason", async () => {
    const err = await Engine.build(CLS_MODEL, { backend: 'tensorrt' }).catch((e: unknown) => e);
    expect(isTensorrtNodeError(err)).toBe(true);
    expect(['ENOTENSORRT', 'ENODEVICE']).toContain((err as { code: string }).code);
    expect((err as Error).message).toMatch(/backend 'tensorrt' cannot run here: .+/);
  });

  it("refuses fp16 on onnxruntime and an unknown backend name", async () => {
    await expect(Engine.build(CLS_MODEL, { backend: 'onnxruntime', precision: 'fp16' })).rejects.toMatchObject({ code: 'EINPUT' });
    await expect(Engine.build(CLS_MODEL, { backend: 'cuda' as never })).rejects.toMatchObject({ code: 'EINPUT' });
  });

  it('reports a model that cannot be read or parsed', async () => {
    await expect(Engine.build('/nonexistent/model.onnx')).rejects.toMatchObject({ code: 'EMODEL' });
    await expect(Engine.build(new Uint8Array([1, 2, 3, 4]))).rejects.toMatchObject({ code: 'EMODEL' });
  });
});

describe.skipIf(!HAVE_MNIST)('Engine on MNIST (fixed batch 1)', () => {
  it('runs unbatched, says so, and matches onnxruntime-node bit for bit', async () => {
    const engine = await Engine.build(MNIST_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    const reference = await referenceSession(MNIST_MODEL);
    try {
      expect(engine.batching.enabled).toBe(false);
      expect(engine.batching.batchAxis).toBe(false);
      expect(engine.batching.reason).toMatch(/Input3.*no dynamic batch axis.*unbatched/);
      const images = await mnistImages(16);
      const results = await Promise.all(images.map((img) => engine.infer(img)));
      for (let i = 0; i < images.length; i++) {
        const want = await reference.run({ Input3: new ort.Tensor('float32', images[i]!, [1, 1, 28, 28]) });
        expect(sameBits(results[i]!.Plus214_Output_0!.data as Float32Array, want.Plus214_Output_0!.data as Float32Array)).toBe(true);
      }
      const s = engine.stats();
      expect(s.batches).toBe(16);
      expect(s.meanBatchSize).toBe(1);
    } finally {
      await engine.dispose();
      await reference.release();
    }
  });
});
if (!HAVE_MNIST) console.warn(MNIST_SKIP_REASON);
