import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { quantize, type Outputs } from '../../src/quantize/index.js';
import { argmaxLastAxis } from '../../src/quantize/validate.js';
import { convReluMatMul, random, randomArray } from './graphs.js';

describe('validation and accuracy fallback', () => {
  it('keeps the most sensitive layers in float until the drop fits the budget', async () => {
    const { bytes } = convReluMatMul(31);
    const rand = random(77);
    const feeds = () => ({ x: { data: randomArray(50, rand, 2), dims: [1, 2, 5, 5] } });
    const validation = Array.from({ length: 40 }, () => ({ feeds: feeds() }));
    // percentile 40 clips most of every range: INT8 disagrees with float on many samples.
    const opts = { calibration: Array.from({ length: 8 }, feeds), method: 'percentile' as const, percentile: 40 };
    const plain = await quantize(bytes, { ...opts, validation: { data: validation, metric: 'agreement' } });
    expect(plain.report.validation!.float).toBe(1);
    expect(plain.report.validation!.int8).toBeLessThan(0.9);

    const { model, report } = await quantize(bytes, { ...opts, validation: { data: validation, metric: 'agreement', sensitivity: 'measure' }, maxAccuracyDrop: 0.05 });
    const v = report.validation!;
    expect(v.withinBudget).toBe(true);
    expect(v.drop).toBeLessThanOrEqual(0.05);
    expect(v.sensitivity!.map((s) => s.node).sort()).toEqual(['conv', 'matmul']);
    expect(report.keptInFloat.length).toBeGreaterThan(0);
    for (const k of report.keptInFloat) expect(k.reason).toMatch(/fallback/);
    expect(report.quantizedNodes.length + report.keptInFloat.length).toBe(2);

    // Independent check of the reported INT8 metric on the returned model.
    const f = await ort.InferenceSession.create(bytes);
    const q = await ort.InferenceSession.create(model);
    let agree = 0;
    for (const s of validation) {
      const x = new ort.Tensor('float32', s.feeds.x.data, s.feeds.x.dims);
      const a = (await f.run({ x })).y!;
      const b = (await q.run({ x })).y!;
      if (argmaxLastAxis(a as never)[0] === argmaxLastAxis(b as never)[0]) agree++;
    }
    expect(agree / validation.length).toBeCloseTo(v.int8, 10);
  });

  it("by default ('estimate'), ranks by quantization error without extra runs and still meets the budget", async () => {
    const { bytes } = convReluMatMul(31);
    const rand = random(77);
    const feeds = () => ({ x: { data: randomArray(50, rand, 2), dims: [1, 2, 5, 5] } });
    const validation = Array.from({ length: 40 }, () => ({ feeds: feeds() }));
    const events: string[] = [];
    const { report } = await quantize(bytes, {
      calibration: Array.from({ length: 8 }, feeds),
      method: 'percentile',
      percentile: 40,
      validation: { data: validation, metric: 'agreement' },
      maxAccuracyDrop: 0.05,
      onProgress: (e) => events.push(e.phase),
    });
    const v = report.validation!;
    expect(v.withinBudget).toBe(true);
    expect(v.sensitivity!.every((s) => typeof s.error === 'number' && s.error > 0 && s.metric === undefined)).toBe(true);
    expect(v.sensitivity![0]!.error).toBeGreaterThanOrEqual(v.sensitivity![1]!.error!);
    expect(events.filter((e) => e === 'sensitivity').length).toBe(1);
  });

  it('a metric function scores each sample', async () => {
    const { bytes } = convReluMatMul(32);
    const rand = random(78);
    const feeds = () => ({ x: { data: randomArray(50, rand, 2), dims: [1, 2, 5, 5] } });
    const negMse = (a: Outputs, b: Outputs) => {
      const fa = a.y!.data as Float32Array;
      const fb = b.y!.data as Float32Array;
      let s = 0;
      for (let i = 0; i < fa.length; i++) s += (fa[i]! - fb[i]!) ** 2;
      return -s;
    };
    const { report } = await quantize(bytes, {
      calibration: Array.from({ length: 8 }, feeds),
      method: 'max',
      validation: { data: Array.from({ length: 10 }, () => ({ feeds: feeds() })), metric: negMse },
    });
    expect(report.validation!.float === 0).toBe(true);
    expect(report.validation!.int8).toBeLessThan(0);
    expect(report.validation!.int8).toBeGreaterThan(-1);
  });
});
