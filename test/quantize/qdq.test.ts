import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphView } from '../../src/onnx/graph.js';
import { decodeModel, tensorValues } from '../../src/onnx/model.js';
import { onnx, toNumber, type ModelProto } from '../../src/onnx/proto.js';
import { quantize } from '../../src/quantize/index.js';
import { quantizeWeight } from '../../src/quantize/qdq.js';
import { buildModel, convReluMatMul, node, random, randomArray, tensor, withAttrs } from './graphs.js';

/** Independent reference: round half to even, then clamp to int8, then scale back. */
function fakeQuant(v: number, scale: number): number {
  const x = v / scale;
  const f = Math.floor(x);
  const r = x - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x);
  return Math.max(-128, Math.min(127, r)) * scale;
}

/** Naive NCHW conv, stride 1, pad 1, 3×3 kernels. */
function conv(x: Float32Array, c: number, h: number, w: number, weight: Float32Array, bias: Float32Array, o: number): Float32Array {
  const out = new Float32Array(o * h * w);
  for (let oc = 0; oc < o; oc++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let s = bias[oc]!;
        for (let ic = 0; ic < c; ic++)
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++) {
              const iy = y + ky - 1;
              const ix = xx + kx - 1;
              if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
              s += x[(ic * h + iy) * w + ix]! * weight[((oc * c + ic) * 3 + ky) * 3 + kx]!;
            }
        out[(oc * h + y) * w + xx] = s;
      }
  return out;
}

function nodesOf(model: ModelProto, op: string) {
  return (model.graph!.node ?? []).filter((n) => n.opType === op);
}

function scalarInit(model: ModelProto, name: string): number[] {
  const t = model.graph!.initializer!.find((i) => i.name === name)!;
  return [...(tensorValues(t) as Float32Array)];
}

describe('Q/DQ model against a float re-computation of fake quantization', () => {
  it('Conv → Relu → MatMul: onnxruntime output equals the JS fake-quant reference', async () => {
    const { bytes, w1, b1, w2 } = convReluMatMul(21);
    const rand = random(99);
    const cal = Array.from({ length: 8 }, () => randomArray(50, rand, 2));
    const { model, report } = await quantize(bytes, { calibration: cal.map((d) => ({ x: { data: d, dims: [1, 2, 5, 5] } })), method: 'max' });

    // Ranges computed directly from the float data.
    let xAmax = 0;
    let hAmax = 0;
    for (const d of cal) {
      for (const v of d) xAmax = Math.max(xAmax, Math.abs(v));
      for (const v of conv(d, 2, 5, 5, w1, b1, 3)) hAmax = Math.max(hAmax, Math.max(v, 0));
    }
    const sx = Math.fround(xAmax / 127);
    const sh = Math.fround(hAmax / 127);
    const act = Object.fromEntries(report.tensors.filter((t) => t.kind === 'activation').map((t) => [t.name, t]));
    expect(act.x!.scale).toBe(sx);
    expect(act.f!.scale).toBe(sh);

    // Per-channel weight scales: Conv axis 0, MatMul [K, N] axis 1.
    const w1Scale = [0, 1, 2].map((oc) => Math.fround(Math.max(...w1.subarray(oc * 18, oc * 18 + 18).map(Math.abs)) / 127));
    const w2Scale = [0, 1, 2, 3].map((n) => Math.fround(Math.max(...Array.from({ length: 75 }, (_, k) => Math.abs(w2[k * 4 + n]!))) / 127));
    const weights = Object.fromEntries(report.tensors.filter((t) => t.kind === 'weight').map((t) => [t.name, t]));
    expect(weights.w1!.axis).toBe(0);
    expect(weights.w1!.scale).toEqual(w1Scale);
    expect(weights.w2!.axis).toBe(1);
    expect(weights.w2!.scale).toEqual(w2Scale);

    // Reference forward pass with fake quantization.
    const x = randomArray(50, rand, 2);
    const fqW1 = w1.map((v, i) => fakeQuant(v, w1Scale[Math.floor(i / 18)]!));
    const fqW2 = w2.map((v, i) => fakeQuant(v, w2Scale[i % 4]!));
    const h = conv(x.map((v) => fakeQuant(v, sx)), 2, 5, 5, fqW1, b1, 3).map((v) => fakeQuant(Math.max(v, 0), sh));
    const expected = [0, 1, 2, 3].map((n) => {
      let s = 0;
      for (let k = 0; k < 75; k++) s += h[k]! * fqW2[k * 4 + n]!;
      return s;
    });

    // 'basic' runs the Q/DQ operators as written. At 'extended'/'all' onnxruntime fuses
    // DQ→MatMul into an int8 kernel that, on x86 CPUs without VNNI, saturates int16 pair
    // sums (onnxruntime's documented u8s8 limitation), so it is no exact reference there.
    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'basic' });
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, 2, 5, 5]) });
    await session.release();
    const got = [...(out.y!.data as Float32Array)];
    for (let n = 0; n < 4; n++) expect(got[n]).toBeCloseTo(expected[n]!, 4);

    // What the file holds: int8 weights + DequantizeLinear with axis, activations Q → DQ, zero points int8 0.
    const m = decodeModel(model);
    expect(nodesOf(m, 'QuantizeLinear').map((n) => n.input![0])).toEqual(['x', 'f']);
    const dqAxes = nodesOf(m, 'DequantizeLinear')
      .filter((n) => n.input![0]!.startsWith('w'))
      .map((n) => [n.input![0], toNumber(n.attribute!.find((a) => a.name === 'axis')!.i)]);
    expect(dqAxes).toEqual([['w1_quantized', 0], ['w2_quantized', 1]]);
    for (const t of m.graph!.initializer!) if (t.name!.endsWith('zero_point')) expect([...(tensorValues(t) as Int8Array)].every((v) => v === 0)).toBe(true);
    expect(m.graph!.initializer!.find((t) => t.name === 'w1_quantized')!.dataType).toBe(3); // INT8
    expect(m.graph!.initializer!.some((t) => t.name === 'w1')).toBe(false);
  });
});

describe('weights given as Constant nodes', () => {
  it('are recognized as weights and quantized per channel', async () => {
    const rand = random(12);
    const w = randomArray(3 * 2 * 9, rand);
    const constant = node('Constant', [], ['w'], 'w_const');
    constant.attribute = [onnx.AttributeProto.create({ name: 'value', t: tensor('', w, [3, 2, 3, 3]), type: onnx.AttributeProto.AttributeType.TENSOR })];
    const bytes = buildModel({
      nodes: [constant, withAttrs(node('Conv', ['x', 'w'], ['y'], 'conv'), { pads: [1, 1, 1, 1] })],
      initializers: [],
      inputs: [{ name: 'x', dims: [1, 2, 4, 4] }],
      outputs: [{ name: 'y', dims: [1, 3, 4, 4] }],
    });
    const { report } = await quantize(bytes, { calibration: [{ x: { data: randomArray(32, rand), dims: [1, 2, 4, 4] } }], method: 'max' });
    const weight = report.tensors.find((t) => t.name === 'w')!;
    expect(weight.kind).toBe('weight');
    expect(weight.axis).toBe(0);
    expect(weight.scale).toEqual([...quantizeWeight(w, [3, 2, 3, 3], 0).scales]);
  });
});

describe('per-channel weight scales', () => {
  it('match the per-output-channel max computed directly (Conv, ConvTranspose, Gemm transB)', () => {
    const rand = random(4);
    const w = randomArray(4 * 3 * 2 * 2, rand);
    // Conv [O=4, I=3, 2, 2]: axis 0
    const direct0 = Array.from({ length: 4 }, (_, o) => {
      let m = 0;
      for (let i = 0; i < 3; i++) for (let k = 0; k < 4; k++) m = Math.max(m, Math.abs(w[o * 12 + i * 4 + k]!));
      return Math.fround(m / 127);
    });
    expect([...quantizeWeight(w, [4, 3, 2, 2], 0).scales]).toEqual(direct0);
    // ConvTranspose [I=4, O=3, 2, 2]: axis 1
    const direct1 = Array.from({ length: 3 }, (_, o) => {
      let m = 0;
      for (let i = 0; i < 4; i++) for (let k = 0; k < 4; k++) m = Math.max(m, Math.abs(w[i * 12 + o * 4 + k]!));
      return Math.fround(m / 127);
    });
    expect([...quantizeWeight(w, [4, 3, 2, 2], 1).scales]).toEqual(direct1);
    // Values reconstruct within half a step.
    const { q, scales } = quantizeWeight(w, [4, 3, 2, 2], 0);
    w.forEach((v, i) => expect(Math.abs(q[i]! * scales[Math.floor(i / 12)]! - v)).toBeLessThanOrEqual(scales[Math.floor(i / 12)]! / 2 + 1e-7));
  });

  it('ConvTranspose weights get axis 1 in the file, and the model runs close to float', async () => {
    const rand = random(40);
    const w = randomArray(2 * 3 * 2 * 2, rand);
    const bytes = buildModel({
      nodes: [withAttrs(node('ConvTranspose', ['x', 'w'], ['y'], 'deconv'), { strides: [2, 2] })],
      initializers: [tensor('w', w, [2, 3, 2, 2])],
      inputs: [{ name: 'x', dims: [1, 2, 3, 3] }],
      outputs: [{ name: 'y', dims: [1, 3, 6, 6] }],
    });
    const x = randomArray(18, rand);
    const { model, report } = await quantize(bytes, { calibration: [{ x: { data: x, dims: [1, 2, 3, 3] } }], method: 'max' });
    expect(report.tensors.find((t) => t.name === 'w')!.axis).toBe(1);
    const dq = decodeModel(model).graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === 'w_quantized')!;
    expect(toNumber(dq.attribute!.find((a) => a.name === 'axis')!.i)).toBe(1);
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b);
      const out = (await s.run({ x: new ort.Tensor('float32', x, [1, 2, 3, 3]) })).y!.data as Float32Array;
      await s.release();
      return out;
    };
    const f = await run(bytes);
    const q = await run(model);
    f.forEach((v, i) => expect(Math.abs(v - q[i]!)).toBeLessThan(0.05));
  });

  it('Gemm with transB = 1 quantizes B along axis 0, with transB = 0 along axis 1', async () => {
    for (const transB of [0, 1]) {
      const rand = random(8 + transB);
      const b = randomArray(6 * 5, rand);
      const bytes = buildModel({
        nodes: [withAttrs(node('Gemm', ['a', 'b', 'c'], ['y'], 'gemm'), { transB })],
        initializers: [tensor('b', b, transB ? [5, 6] : [6, 5]), tensor('c', randomArray(5, rand), [5])],
        inputs: [{ name: 'a', dims: [2, 6] }],
        outputs: [{ name: 'y', dims: [2, 5] }],
      });
      const { report, model } = await quantize(bytes, { calibration: [{ a: { data: randomArray(12, rand), dims: [2, 6] } }], method: 'max' });
      const wt = report.tensors.find((t) => t.name === 'b')!;
      expect(wt.axis).toBe(transB ? 0 : 1);
      expect((wt.scale as number[]).length).toBe(5); // one per output column N
      const s = await ort.InferenceSession.create(model);
      await s.release();
    }
  });
});

/**
 * x → Conv1 → BN1 → Relu → r1 ─┬→ Conv2 → BN2 → Add(·, r1) → Relu → r2
 *                              └────────────────┘ (skip)
 * r2 → ConvA → a ─┬→ Concat(a, b) → c → ConvC → y
 * r2 → ConvB → b ─┘
 * a → ConvD → d (so 'a' is quantized on its own too)
 */
function residualConcatModel(): Uint8Array {
  const rand = random(17);
  const C = 4;
  const conv = (name: string, input: string, output: string, ci = C, co = C) => {
    return {
      node: withAttrs(node('Conv', [input, `${name}_w`, `${name}_b`], [output], name), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
      inits: [tensor(`${name}_w`, randomArray(co * ci * 9, rand, 0.4), [co, ci, 3, 3]), tensor(`${name}_b`, randomArray(co, rand, 0.1), [co])],
    };
  };
  const bn = (name: string, input: string, output: string) => ({
    node: node('BatchNormalization', [input, `${name}_s`, `${name}_b`, `${name}_m`, `${name}_v`], [output], name),
    inits: [
      tensor(`${name}_s`, Float32Array.from({ length: C }, () => 1 + rand() * 0.2), [C]),
      tensor(`${name}_b`, randomArray(C, rand, 0.1), [C]),
      tensor(`${name}_m`, randomArray(C, rand, 0.1), [C]),
      tensor(`${name}_v`, Float32Array.from({ length: C }, () => 1 + rand() * 0.2), [C]),
    ],
  });
  const parts = [
    conv('conv1', 'x', 'c1'), bn('bn1', 'c1', 'n1'),
    conv('conv2', 'r1', 'c2'), bn('bn2', 'c2', 'n2'),
    conv('convA', 'r2', 'a'), conv('convB', 'r2', 'b'),
    conv('convC', 'c', 'y', 2 * C, C), conv('convD', 'a', 'd'),
  ];
  const nodes = [
    parts[0]!.node, parts[1]!.node, node('Relu', ['n1'], ['r1'], 'relu1'),
    parts[2]!.node, parts[3]!.node, node('Add', ['n2', 'r1'], ['s'], 'add'), node('Relu', ['s'], ['r2'], 'relu2'),
    parts[4]!.node, parts[5]!.node, withAttrs(node('Concat', ['a', 'b'], ['c'], 'concat'), { axis: 1 }),
    parts[6]!.node, parts[7]!.node,
  ];
  return buildModel({
    nodes,
    initializers: parts.flatMap((p) => p.inits),
    inputs: [{ name: 'x', dims: [1, C, 6, 6] }],
    outputs: [{ name: 'y', dims: [1, C, 6, 6] }, { name: 'd', dims: [1, C, 6, 6] }],
  });
}

describe('Q/DQ placement by TensorRT rules', () => {
  it('quantizes the residual skip input, shares one scale across a Concat, leaves Conv-BN-Relu alone', async () => {
    const bytes = residualConcatModel();
    const rand = random(5);
    const cal = Array.from({ length: 4 }, () => ({ x: { data: randomArray(4 * 36, rand, 3), dims: [1, 4, 6, 6] } }));
    const { model, report } = await quantize(bytes, { calibration: cal, method: 'max' });
    const m = decodeModel(model);
    const view = GraphView.of(m);
    const producerOp = (t: string) => view.producer(t)?.opType;

    // Residual: the Add's skip input reads a DequantizeLinear, the Conv branch stays float.
    const add = m.graph!.node!.find((n) => n.name === 'add')!;
    expect(producerOp(add.input![0]!)).toBe('BatchNormalization');
    expect(producerOp(add.input![1]!)).toBe('DequantizeLinear');
    expect(report.residualAdds).toEqual(['add']);

    // Conv → BN → Relu/Add with nothing in between.
    for (const n of m.graph!.node!.filter((n) => n.opType === 'BatchNormalization')) {
      expect(producerOp(n.input![0]!)).toBe('Conv');
      expect(view.consumers(n.input![0]!).map((c) => c.node.opType)).toEqual(['BatchNormalization']);
      for (const c of view.consumers(n.output![0]!)) expect(['Relu', 'Add']).toContain(c.node.opType);
    }
    expect(view.consumers('c1').map((c) => c.node.opType)).toEqual(['BatchNormalization']);
    expect(view.consumers('n1').map((c) => c.node.opType)).toEqual(['Relu']);

    // Every Conv reads DQ on its data and weight inputs, never Q on its output.
    for (const n of m.graph!.node!.filter((n) => n.opType === 'Conv')) {
      expect(producerOp(n.input![0]!)).toBe('DequantizeLinear');
      expect(producerOp(n.input![1]!)).toBe('DequantizeLinear');
      expect(view.isInitializer(n.input![2]!)).toBe(true); // bias stays float
    }

    // Concat group: 'a' (ConvD's input) and 'c' (ConvC's input) share one scale, the group's largest range.
    const byName = Object.fromEntries(report.tensors.map((t) => [t.name, t]));
    expect(byName.a!.scale).toBe(byName.c!.scale);
    const ranges = Object.fromEntries(report.calibration.tensors.map((t) => [t.name, t.amax]));
    expect(byName.c!.amax).toBe(Math.max(ranges.a!, ranges.b!, ranges.c!));

    // Shape ops and the Concat itself carry no Q/DQ of their own.
    expect(producerOp('c')).toBe('Concat');
    expect(view.producer('c')!.input!.every((i) => producerOp(i) === 'Conv')).toBe(true);

    // The model runs in onnxruntime and stays close to the float model.
    const x = new ort.Tensor('float32', randomArray(4 * 36, rand, 3), [1, 4, 6, 6]);
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b);
      const out = await s.run({ x });
      await s.release();
      return out.y!.data as Float32Array;
    };
    const f = await run(bytes);
    const q = await run(model);
    const peak = Math.max(...f.map(Math.abs));
    f.forEach((v, i) => expect(Math.abs(v - q[i]!)).toBeLessThan(0.1 * peak));
  });

  it('exclude keeps nodes (by name or op type) in float', async () => {
    const bytes = residualConcatModel();
    const cal = [{ x: { data: randomArray(144, random(1), 3), dims: [1, 4, 6, 6] } }];
    const { report } = await quantize(bytes, { calibration: cal, method: 'max', exclude: ['convA', 'convB'] });
    expect([...report.quantizedNodes].sort()).toEqual(['conv1', 'conv2', 'convC', 'convD']);
    expect(report.keptInFloat.map((k) => [k.node, k.reason])).toEqual([
      ['convA', 'excluded by option'],
      ['convB', 'excluded by option'],
    ]);
    const { report: r2 } = await quantize(bytes, { calibration: cal, method: 'max', exclude: ['Conv'] });
    expect(r2.quantizedNodes).toEqual([]);
    expect(r2.warnings.join()).toMatch(/no Conv/);
  });
});
