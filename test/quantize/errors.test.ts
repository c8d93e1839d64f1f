import { describe, expect, it } from 'vitest';
import { decodeModel, writeModel } from '../../src/onnx/model.js';
import { quantize, type QuantizeProgress } from '../../src/quantize/index.js';
import { checkFeeds } from '../../src/quantize/feeds.js';
import { TensorrtNodeError } from '../../src/errors.js';
import { buildModel, convReluMatMul, node, random, randomArray, tensor } from './graphs.js';

const { bytes } = convReluMatMul(1);
const sample = () => ({ x: { data: randomArray(50, random(2)), dims: [1, 2, 5, 5] } });

async function failure(p: Promise<unknown>): Promise<TensorrtNodeError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TensorrtNodeError);
  return e as TensorrtNodeError;
}

describe('quantize: bad input gets a coded error', () => {
  it('a model onnxruntime refuses (an unknown operator) is EMODEL with its message, not a bare Error', async () => {
    const model = buildModel({
      nodes: [node('Conv', ['x', 'w'], ['c'], 'conv'), node('NoSuchOp', ['c'], ['y'], 'bad')],
      initializers: [tensor('w', randomArray(2 * 2 * 3 * 3, random(3)), [2, 2, 3, 3])],
      inputs: [{ name: 'x', dims: [1, 2, 5, 5] }],
      outputs: [{ name: 'y' }],
    });
    const e = await failure(quantize(model, { calibration: [sample()] }));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toMatch(/^onnxruntime could not load the model for calibration: .*NoSuchOp/);
  });

  it('wrong feed name names the input, what was expected and received', async () => {
    const e = await failure(quantize(bytes, { calibration: [{ y: sample().x }] }));
    expect(e.code).toBe('EINPUT');
    expect(e.details.tensor).toBe('y');
    expect(e.details.expected).toMatch(/x/);
    expect(e.message).toMatch(/'y'/);
  });

  it('wrong dtype', async () => {
    const e = await failure(quantize(bytes, { calibration: [{ x: { data: new Int32Array(50), dims: [1, 2, 5, 5] } }] }));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'dtype float32', received: 'dtype int32' } });
  });

  it('wrong shape, and data that does not fill the shape', async () => {
    const e = await failure(quantize(bytes, { calibration: [{ x: { data: new Float32Array(50), dims: [1, 2, 25] } }] }));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', expected: 'shape [1,2,5,5]', received: 'shape [1,2,25]' } });
    const e2 = await failure(quantize(bytes, { calibration: [{ x: { data: new Float32Array(49), dims: [1, 2, 5, 5] } }] }));
    expect(e2).toMatchObject({ code: 'EINPUT', details: { tensor: 'x', received: '49 elements' } });
  });

  it('a bare typed array works for a single fixed-shape input, and a wrong length is EINPUT', async () => {
    const { report } = await quantize(bytes, { calibration: randomArray(150, random(3)), method: 'max' });
    expect(report.calibration.samples).toBe(3);
    const { report: r2 } = await quantize(bytes, { calibration: [randomArray(50, random(4))], method: 'max' });
    expect(r2.calibration.samples).toBe(1);
    expect((await failure(quantize(bytes, { calibration: new Float32Array(70) }))).code).toBe('EINPUT');
  });

  it('a bare typed array for a dynamic input takes its dims from shapes, as infer() does', () => {
    const input = [{ name: 'x', dtype: 'float32' as const, shape: [-1, 3, -1, -1] }];
    const two = new Float32Array(2 * 3 * 4 * 5);
    expect(checkFeeds(two, input, 'calibration input', { x: [-1, 3, 4, 5] }).x!.dims).toEqual([2, 3, 4, 5]);
    // A range: its opt fills the axes beyond the batch; the batch comes from the length.
    expect(checkFeeds(two, input, 'calibration input', { x: { min: [1, 3, 1, 1], opt: [1, 3, 4, 5], max: [8, 3, 9, 9] } }).x!.dims).toEqual([2, 3, 4, 5]);
    expect(() => checkFeeds(two, input, 'calibration input')).toThrow(/calibration input 'x': expected a \{ data, dims \} tensor, or a 'shapes' option fixing \[\?,3,\?,\?\]/);
    expect(() => checkFeeds(new Float32Array(61), input, 'calibration input', { x: [-1, 3, 4, 5] })).toThrow(/a multiple of 60 elements \(\[\?,3,4,5\]\), received 61 elements/);
  });

  it('empty calibration set → ECALIBRATION', async () => {
    expect((await failure(quantize(bytes, { calibration: [] }))).code).toBe('ECALIBRATION');
    async function* none() {}
    expect((await failure(quantize(bytes, { calibration: none() }))).code).toBe('ECALIBRATION');
  });

  it('NaN and Inf are counted, reported and kept out of the ranges', async () => {
    const a = sample();
    const poisoned = Float32Array.from(a.x.data);
    poisoned[3] = NaN;
    poisoned[7] = Infinity;
    const events: QuantizeProgress[] = [];
    const { report } = await quantize(bytes, {
      calibration: [a, { x: { data: poisoned, dims: [1, 2, 5, 5] } }],
      method: 'max',
      onProgress: (e) => events.push(e),
    });
    const x = report.calibration.tensors.find((t) => t.name === 'x')!;
    expect(x.nonFinite).toBe(2);
    expect(Number.isFinite(x.amax)).toBe(true);
    expect(x.amax).toBe(Math.max(...a.x.data.map(Math.abs)));
    expect(report.calibration.nonFinite).toBeGreaterThanOrEqual(2);
    expect(report.warnings.some((w) => /NaN\/Inf/.test(w))).toBe(true);
    expect(events.some((e) => e.phase === 'warning' && /'x'/.test(e.message ?? ''))).toBe(true);
  });

  it('says which tensors saw only zeros in calibration, and which model inputs: their scales are placeholders', async () => {
    const events: QuantizeProgress[] = [];
    const { report } = await quantize(bytes, { calibration: [{ x: { data: new Float32Array(50), dims: [1, 2, 5, 5] } }], method: 'max', onProgress: (e) => events.push(e) });
    const zeroTensors = report.calibration.tensors.filter((t) => t.amax === 0).map((t) => t.name);
    expect(zeroTensors).toContain('x');
    const said = report.warnings.filter((w) => /every calibration value was 0/.test(w));
    expect(said).toHaveLength(1);
    for (const name of zeroTensors) expect(said[0]).toContain(`'${name}'`);
    expect(said[0]).toMatch(/model input 'x' got only zeros: check the calibration data$/);
    expect(events.some((e) => e.phase === 'warning' && /every calibration value was 0/.test(e.message ?? ''))).toBe(true);
    // Real data: no such warning.
    const { report: real } = await quantize(bytes, { calibration: [sample()], method: 'max' });
    expect(real.warnings.filter((w) => /every calibration value was 0/.test(w))).toEqual([]);
  });

  it('a tensor with only NaN/Inf → ECALIBRATION', async () => {
    const e = await failure(quantize(bytes, { calibration: [{ x: { data: new Float32Array(50).fill(NaN), dims: [1, 2, 5, 5] } }] }));
    expect(e.code).toBe('ECALIBRATION');
    expect(e.message).toMatch(/NaN or Inf/);
  });

  it('corrupt, graph-less and unknown-opset models → EMODEL', async () => {
    expect((await failure(quantize(bytes.subarray(0, 40), { calibration: [sample()] }))).code).toBe('EMODEL');
    const m = decodeModel(bytes);
    m.opsetImport![0]!.version = 1000;
    expect((await failure(quantize(writeModel(m), { calibration: [sample()] }))).code).toBe('EMODEL');
    m.opsetImport![0]!.version = 8;
    expect((await failure(quantize(writeModel(m), { calibration: [sample()] }))).code).toBe('EMODEL');
    m.graph = null;
    expect((await failure(quantize(writeModel(m), { calibration: [sample()] }))).code).toBe('EMODEL');
  });

  it('an old-opset model with an op that cannot be carried to 13 is refused', async () => {
    const rand = random(5);
    const bytes = buildModel({
      opset: 9,
      nodes: [node('MatMul', ['a', 'w'], ['m'], 'mm'), node('Upsample', ['m', 'scales'], ['y'], 'up')],
      initializers: [tensor('w', randomArray(12, rand), [4, 3]), tensor('scales', Float32Array.of(1, 2), [2])],
      inputs: [{ name: 'a', dims: [2, 4] }],
      outputs: [{ name: 'y' }],
    });
    const e = await failure(quantize(bytes, { calibration: [{ a: { data: randomArray(8, rand), dims: [2, 4] } }] }));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toMatch(/Upsample/);
  });

  it('bad options', async () => {
    expect((await failure(quantize(bytes, { calibration: [sample()], method: 'kl' as 'max' }))).code).toBe('EINPUT');
    expect((await failure(quantize(bytes, { calibration: [sample()], method: 'percentile', percentile: 0 }))).code).toBe('EINPUT');
    expect((await failure(quantize(bytes, { calibration: 42 as unknown as [] }))).code).toBe('EINPUT');
    expect((await failure(quantize(bytes, { calibration: [sample()], validation: { data: [] } }))).code).toBe('EINPUT');
  });

  it('options that used to be ignored: a budget without validation data, a bad batchSize, exclude that names nothing', async () => {
    const budget = await failure(quantize(bytes, { calibration: [sample()], maxAccuracyDrop: 0.01 }));
    expect(budget).toMatchObject({ code: 'EINPUT', details: { tensor: 'maxAccuracyDrop', received: 'no validation' } });
    for (const batchSize of [0, 1.5, Number.NaN]) {
      expect(await failure(quantize(bytes, { calibration: [sample()], batchSize }))).toMatchObject({ code: 'EINPUT', details: { tensor: 'batchSize', received: String(batchSize) } });
    }
    // A string would have excluded its characters' names; a typo, nothing.
    expect(await failure(quantize(bytes, { calibration: [sample()], exclude: 'conv' as unknown as string[] }))).toMatchObject({ code: 'EINPUT', details: { tensor: 'exclude', received: 'string' } });
    const typo = await failure(quantize(bytes, { calibration: [sample()], exclude: ['Conv', 'convv'] }));
    expect(typo).toMatchObject({ code: 'EINPUT', details: { tensor: 'exclude', received: "'convv'" } });
    // Node names and op types both still work.
    const { report } = await quantize(bytes, { calibration: [sample()], exclude: ['Conv', 'MatMul'] });
    expect(report.quantizedNodes).toEqual([]);
  });
});
