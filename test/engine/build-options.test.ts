import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, type EngineOptions } from '../../src/engine/index.js';
import { TensorrtNodeError } from '../../src/errors.js';
import { CLS_MODEL, clsInput, failure } from './helpers.js';

const base = { backend: 'onnxruntime' as const, instances: 1, threadsPerInstance: 1, maxBatchSize: 2, wideLoneRuns: false };

/** The error Engine.build gives with these options (an engine it built anyway is disposed, and the test fails). */
function refused(options: object): Promise<TensorrtNodeError> {
  return failure(Engine.build(CLS_MODEL, { ...base, ...options } as EngineOptions).then((engine) => engine.dispose()));
}

describe('Engine.build refuses option mistakes with EINPUT naming the option', () => {
  it('an unknown option, with the option it is near', async () => {
    expect(await refused({ maxBatchsize: 4 })).toMatchObject({
      code: 'EINPUT', details: { tensor: 'maxBatchsize', expected: "an option of Engine.build (did you mean 'maxBatchSize'?)", received: 'an unknown option' },
    });
    expect((await refused({ precison: 'fp32' })).details.expected).toContain("'precision'");
    expect((await refused({ batching: true })).details.expected).toBe('an option of Engine.build');
    const nested = await refused({ precision: 'int8', calibration: [clsInput(1)], quantization: { methd: 'max' } });
    expect(nested.details).toMatchObject({ tensor: 'methd', expected: "an option of Engine.build's quantization (did you mean 'method'?)" });
    const { quantize } = await import('../../src/quantize/index.js');
    const q = await failure(quantize(CLS_MODEL, { calibration: [clsInput(1)], percentil: 99 } as never));
    expect(q).toMatchObject({ code: 'EINPUT', details: { tensor: 'percentil', expected: "an option of quantize (did you mean 'percentile'?)" } });
    const v = await failure(quantize(CLS_MODEL, { calibration: [clsInput(1)], validation: { data: [], metrc: 'top1' } } as never));
    expect(v.details).toMatchObject({ tensor: 'metrc', expected: "an option of quantize's validation (did you mean 'metric'?)" });
  });

  it('shapes: an input the model lacks, a wrong rank, a dim the model fixes, a bad dim, a range out of order', async () => {
    expect(await refused({ shapes: { y: [-1, 3, 48, 192] } })).toMatchObject({ code: 'EINPUT', details: { tensor: 'shapes.y', expected: "one of the model's inputs (x)" } });
    expect((await refused({ shapes: { x: [-1, 48, 192] } })).details).toMatchObject({ tensor: 'shapes.x', expected: '4 dims, the rank of [?,3,?,?]', received: '3 dims [-1,48,192]' });
    expect((await refused({ shapes: { x: [-1, 1, 48, 192] } })).details).toMatchObject({ expected: '3 on axis 1, as the model fixes it ([?,3,?,?])', received: '1' });
    expect((await refused({ shapes: { x: [-1, 3, 48.5, 192] } })).details).toMatchObject({ received: '48.5 on axis 2' });
    expect((await refused({ shapes: { x: [-1, 3, 0, 192] } })).details).toMatchObject({ received: '0 on axis 2' });
    const range = await refused({ shapes: { x: { min: [1, 3, 48, 192], opt: [8, 3, 48, 192], max: [4, 3, 48, 192] } } });
    expect(range.details).toMatchObject({ expected: 'min ≤ opt ≤ max on every axis', received: '1, 8, 4 on axis 0' });
    expect((await refused({ shapes: { x: { min: [1, 3, 48, 192], max: [4, 3, 48, 192] } } })).details).toMatchObject({ expected: '{ min, opt, max }, all three, or one shape of 4 dims (-1 where any size goes)', received: 'no opt' });
    expect((await refused({ shapes: { x: { opt: [1, 3, 48, 192] } } })).details.received).toBe('no min, max');
    expect((await refused({ shapes: { x: { min: [1, 3, 48, 192], opt: 8, max: [4, 3, 48, 192] } } })).details.expected).toBe('opt an array of 4 dims');
    expect((await refused({ shapes: [[-1, 3, 48, 192]] })).details.tensor).toBe('shapes');
  });

  it('shapes are checked before INT8 calibration too', async () => {
    const e = await refused({ precision: 'int8', calibration: [clsInput(1)], shapes: { x: [-1, 3, 48] } });
    expect(e.details).toMatchObject({ tensor: 'shapes.x', received: '3 dims [-1,3,48]' });
  });

  it('instances and threadsPerInstance past the caps (a typo such as 1e6 ended the process or never finished)', async () => {
    expect(await refused({ instances: 1e6 })).toMatchObject({ code: 'EINPUT', details: { tensor: 'instances', expected: 'at most 256', received: '1000000' } });
    expect(await refused({ instances: 257 })).toMatchObject({ code: 'EINPUT', details: { tensor: 'instances', expected: 'at most 256' } });
    expect(await refused({ threadsPerInstance: 1e6 })).toMatchObject({ code: 'EINPUT', details: { tensor: 'threadsPerInstance', expected: 'at most 256' } });
  });

  it('the model as a file: URL or an ArrayBuffer builds as from its path; anything else is EINPUT', async () => {
    const options = { ...base, shapes: { x: [-1, 3, 48, 192] } };
    const want = await Engine.build(CLS_MODEL, options);
    const expected = (await want.infer(clsInput(1)))['softmax_0.tmp_0']!.data;
    await want.dispose();
    for (const model of [pathToFileURL(CLS_MODEL), new Uint8Array(readFileSync(CLS_MODEL)).buffer]) {
      const engine = await Engine.build(model, options);
      expect((await engine.infer(clsInput(1)))['softmax_0.tmp_0']!.data).toEqual(expected);
      await engine.dispose();
    }
    const web = await failure(Engine.build(new URL('https://example.com/model.onnx'), base));
    expect(web).toMatchObject({ code: 'EINPUT', details: { tensor: 'model', received: 'a https: URL (models are read from files, never fetched)' } });
    expect(await failure(Engine.build(42 as unknown as string, base))).toMatchObject({ code: 'EINPUT', details: { tensor: 'model', expected: 'a path, a file: URL or the bytes of an ONNX model', received: 'number' } });
    const { quantize } = await import('../../src/quantize/index.js');
    const fromUrl = await quantize(pathToFileURL(CLS_MODEL), { calibration: [clsInput(1)], shapes: { x: [-1, 3, 48, 192] } });
    const fromPath = await quantize(CLS_MODEL, { calibration: [clsInput(1)], shapes: { x: [-1, 3, 48, 192] } });
    expect(Buffer.from(fromUrl.model).equals(Buffer.from(fromPath.model))).toBe(true);
  });

  it('cacheDir naming a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tnp-options-'));
    try {
      const file = join(dir, 'not-a-folder');
      writeFileSync(file, 'x');
      expect((await refused({ cacheDir: file })).details).toMatchObject({ tensor: 'cacheDir', received: `a path to a file: ${file}` });
      // A folder that does not exist yet is made at the first store.
      const engine = await Engine.build(CLS_MODEL, { ...base, cacheDir: join(dir, 'made', 'here') });
      expect(engine.cache.status).toBe('miss');
      await engine.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("TensorRT's options: mistyped ones are refused on any backend; valid ones leave ONNX Runtime's results alone", async () => {
    expect((await refused({ cudaGraphs: 'yes' })).details).toMatchObject({ tensor: 'cudaGraphs', expected: 'a boolean', received: 'string' });
    expect((await refused({ spinWaitUs: -1 })).details).toMatchObject({ tensor: 'spinWaitUs', received: '-1' });
    expect((await refused({ spinWaitUs: 2.5 })).details).toMatchObject({ tensor: 'spinWaitUs', received: '2.5' });
    expect((await refused({ device: [0, -1] })).details).toMatchObject({ tensor: 'device', received: '-1' });
    expect((await refused({ device: 0.5 })).details).toMatchObject({ tensor: 'device', received: '0.5' });
    const plain = await Engine.build(CLS_MODEL, base);
    const tuned = await Engine.build(CLS_MODEL, { ...base, device: [0], cudaGraphs: true, spinWaitUs: 0 });
    const feeds = { x: { data: clsInput(7, 2), dims: [2, 3, 48, 192] } };
    expect((await tuned.infer(feeds))['softmax_0.tmp_0']!.data).toEqual((await plain.infer(feeds))['softmax_0.tmp_0']!.data);
    await plain.dispose();
    await tuned.dispose();
  });

  it('valid shapes still build: a fixed batch-open shape and a range', async () => {
    const fixed = await Engine.build(CLS_MODEL, { ...base, shapes: { x: [-1, 3, 48, 192] } });
    const range = await Engine.build(CLS_MODEL, { ...base, shapes: { x: { min: [1, 3, 48, 192], opt: [2, 3, 48, 192], max: [2, 3, 48, 192] } } });
    expect((await fixed.infer(clsInput(3)))['softmax_0.tmp_0']!.data).toEqual((await range.infer(clsInput(3)))['softmax_0.tmp_0']!.data);
    await fixed.dispose();
    await range.dispose();
  });
});

describe('Engine.build and quantize() with an AbortSignal', () => {
  const calibration = Array.from({ length: 64 }, (_, i) => clsInput(i));

  it('an aborted signal rejects at once with EABORTED and its reason as the cause', async () => {
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    const e = await refused({ signal: controller.signal });
    expect(e).toMatchObject({ code: 'EABORTED', message: 'Engine.build was aborted' });
    expect((e.cause as Error).message).toBe('shutting down');
    expect((await refused({ signal: 'stop' })).details).toMatchObject({ tensor: 'signal', expected: 'an AbortSignal', received: 'string' });
  });

  it('aborting during INT8 calibration on the build worker rejects with EABORTED; the worker then serves the next build', async () => {
    const controller = new AbortController();
    const stages: string[] = [];
    const aborted = await refused({
      precision: 'int8', calibration, shapes: { x: [-1, 3, 48, 192] }, signal: controller.signal,
      onProgress: (p: { stage: string }) => {
        stages.push(p.stage);
        if (p.stage === 'quantize:calibration') controller.abort();
      },
    });
    expect(aborted.code).toBe('EABORTED');
    expect(stages.filter((s) => s === 'quantize:calibration')).toHaveLength(1);
    const engine = await Engine.build(CLS_MODEL, { ...base, precision: 'int8', calibration: calibration.slice(0, 16), shapes: { x: [-1, 3, 48, 192] } });
    expect(engine.buildThreads.quantization).toBe('worker');
    expect(Object.keys(await engine.infer(clsInput(1)))).toEqual(['softmax_0.tmp_0']);
    await engine.dispose();
  });

  it('quantize() on the JS thread (lazy data) stops at its next calibration batch', async () => {
    const { quantize } = await import('../../src/quantize/index.js');
    const controller = new AbortController();
    let batches = 0;
    async function* lazy(): AsyncGenerator<Float32Array> {
      for (const c of calibration) yield c;
    }
    const e = await failure(quantize(CLS_MODEL, {
      calibration: lazy(), shapes: { x: [-1, 3, 48, 192] }, batchSize: 8, signal: controller.signal,
      onProgress: (p) => {
        if (p.phase !== 'calibration') return;
        batches++;
        controller.abort();
      },
    }));
    expect(e).toMatchObject({ code: 'EABORTED', message: 'quantize was aborted' });
    expect(batches).toBe(1);
  });
});
