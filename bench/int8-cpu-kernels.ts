/**
 * Would onnxruntime's integer kernels make INT8 faster than float on the CPU? The engine
 * runs INT8 models with onnxruntime's Q/DQ handling off: the INT8 model's numbers on float
 * kernels (docs/quantize.md, "onnxruntime on the CPU"). onnxruntime fuses a Conv into its
 * integer QLinearConv only where every input comes through a DequantizeLinear (the bias as
 * int32) and a QuantizeLinear takes its output, which TensorRT's placement leaves out. This
 * builds that placement for the 1 × 1 Convs of the PaddleOCR classifier and times it beside
 * the float model and the engine's INT8:
 *
 * 1. BatchNormalization folded into the Convs by onnxruntime's level 'basic', saved;
 * 2. quantize() on that (the bench's 200 calibration lines, percentile);
 * 3. each 1 × 1 Conv with a quantized input given an int32 bias and a Q/DQ on its output
 *    (range: the 99th percentile of the calibration lines' maxima); the other Convs' weights
 *    stored dequantized, as the engine's setting does at load.
 *
 * One thread, batch 8, rounds taking turns; accuracy on the bench's 1 000 held-out lines.
 *
 *   node --import tsx bench/int8-cpu-kernels.ts [--rounds 8]
 * Prints a table and writes bench/results/int8-cpu-kernels.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines, CLS_SAMPLE } from '../src/bench/text-lines.js';
import { rewriteGraph } from '../src/engine/rewrite.js';
import { GraphView, attribute, makeNode, makeValueInfo } from '../src/onnx/graph.js';
import { decodeModel, makeTensor, tensorValues, writeModel } from '../src/onnx/model.js';
import { DataType, toNumber, type NodeProto, type TensorProto } from '../src/onnx/proto.js';
import { removeUnused } from '../src/onnx/prune.js';
import { quantize } from '../src/quantize/index.js';
import { QDQ_SESSION_CONFIG } from '../src/quantize/ort-session.js';
import { median } from '../src/bench/load.js';

const args = process.argv.slice(2);
const roundsArg = args.indexOf('--rounds');
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 8;
const BATCH = 8;
const ROUND_MS = 400;

/** The float model with BatchNormalization folded into its Convs, as onnxruntime's level 'basic' writes it. */
async function foldBatchNorm(model: Uint8Array): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'int8-cpu-'));
  try {
    const path = join(dir, 'folded.onnx');
    const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'basic', optimizedModelFilePath: path });
    await s.release();
    return readFileSync(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The quantized model rewritten for onnxruntime's integer Convs (step 3 above), with
 * `outputRange` giving each new output Q/DQ its amax. Returns the model and how many Convs
 * were prepared for fusion.
 */
async function integerPointwise(
  quantized: Uint8Array,
  alreadyQuantized: ReadonlySet<string>,
  outputRange: (tensors: string[]) => Promise<Map<string, number>>,
): Promise<{ model: Uint8Array; convs: number }> {
  const model = decodeModel(quantized);
  const view = GraphView.of(model);
  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const integer: NodeProto[] = [];
  const fixed = (name: string): Float32Array => tensorValues(view.initializers.get(name)!) as Float32Array;
  for (const conv of view.nodes) {
    if (conv.opType !== 'Conv') continue;
    const [x, w, b] = conv.input!;
    const wDq = view.producer(w!);
    const xDq = view.producer(x!);
    if (wDq?.opType !== 'DequantizeLinear') continue;
    const wq = view.initializers.get(wDq.input![0]!)!;
    const dims = wq.dims!.map(toNumber);
    const ws = fixed(wDq.input![1]!);
    const pointwise = dims[2] === 1 && dims[3] === 1 && toNumber(attribute(conv, 'group')?.i ?? 1) === 1 && dims[1]! > 1;
    if (!pointwise || xDq?.opType !== 'DequantizeLinear') {
      // Float weights, the values the Q/DQ pair gives: the blocked float kernels take them.
      const q = tensorValues(wq) as Int8Array;
      const per = q.length / dims[0]!;
      added.push(makeTensor(`${w}/float`, Float32Array.from(q, (v, i) => v * ws[Math.floor(i / per)]!), dims));
      conv.input![1] = `${w}/float`;
      continue;
    }
    const sx = fixed(xDq.input![1]!)[0]!;
    const bias = b ? fixed(b) : new Float32Array(dims[0]!);
    const scale = Float32Array.from(ws, (s) => Math.fround(sx * s));
    const name = `${conv.name}/bias`;
    added.push(
      makeTensor(`${name}_q`, Int32Array.from(bias, (v, c) => Math.round(v / scale[c]!)), [dims[0]!]),
      makeTensor(`${name}_scale`, scale, [dims[0]!]),
      makeTensor(`${name}_zero`, new Int32Array(dims[0]!), [dims[0]!]),
    );
    nodes.push(makeNode('DequantizeLinear', [`${name}_q`, `${name}_scale`, `${name}_zero`], [`${name}_dq`], `${name}_DQ`, { axis: 0 }));
    conv.input = [x!, w!, `${name}_dq`];
    integer.push(conv);
  }
  // An output the quantizer quantized already (the next Conv's input) has its Q/DQ right after it.
  const outputs = integer.map((c) => c.output![0]!).filter((o) => !alreadyQuantized.has(o));
  const amax = await outputRange(outputs);
  for (const conv of integer) {
    const out = conv.output![0]!;
    if (alreadyQuantized.has(out)) continue;
    const q = `${out}/out`;
    added.push(makeTensor(`${q}_scale`, new Float32Array([Math.fround(amax.get(out)! / 127)]), []), makeTensor(`${q}_zero`, new Int8Array(1), []));
    conv.output = [`${q}_float`];
    nodes.push(
      makeNode('QuantizeLinear', [`${q}_float`, `${q}_scale`, `${q}_zero`], [`${q}_int8`], `${q}_Q`),
      makeNode('DequantizeLinear', [`${q}_int8`, `${q}_scale`, `${q}_zero`], [out], `${q}_DQ`),
    );
  }
  model.graph!.node = [...(model.graph!.node ?? []), ...nodes];
  model.graph!.initializer = [...(model.graph!.initializer ?? []), ...added];
  model.graph!.node = new GraphView(model.graph!).topologicalOrder();
  removeUnused(model);
  return { model: writeModel(model), convs: integer.length };
}

const toFeeds = (rows: Float32Array[]): { x: ort.Tensor } => {
  const x = new Float32Array(rows.length * CLS_SAMPLE);
  rows.forEach((r, i) => x.set(r, i * CLS_SAMPLE));
  return { x: new ort.Tensor('float32', x, [rows.length, 3, 48, 192]) };
};

const original = readFileSync(paddleClsModelPath());
const calibration = renderTextLines(200, 1);
const heldOut = renderTextLines(1000, 1_000_000);
const calibrationFeeds = calibration.map((l) => toFeeds([l.data]));

const folded = await foldBatchNorm(original);
const quantizeOptions = { calibration: calibration.map((l) => ({ x: { data: l.data, dims: [1, 3, 48, 192] } })), method: 'percentile' as const };
const [engineInt8, foldedInt8] = await Promise.all([quantize(original, quantizeOptions), quantize(folded, quantizeOptions)]);

// Each new output Q/DQ's range, from the folded float model with those tensors as outputs.
const outputRange = async (tensors: string[]): Promise<Map<string, number>> => {
  const m = decodeModel(folded);
  for (const t of tensors) m.graph!.output!.push(makeValueInfo(t, DataType.FLOAT, undefined));
  const s = await ort.InferenceSession.create(writeModel(m), { graphOptimizationLevel: 'disabled' });
  const maxima = new Map<string, number[]>(tensors.map((t) => [t, []]));
  for (const f of calibrationFeeds) {
    const r = await s.run(f, tensors);
    for (const t of tensors) maxima.get(t)!.push((r[t]!.data as Float32Array).reduce((a, v) => Math.max(a, Math.abs(v)), 0));
  }
  await s.release();
  return new Map([...maxima].map(([t, v]) => [t, v.sort((a, b) => a - b)[Math.floor(v.length * 0.99)]!]));
};
const quantizedActivations = new Set(foldedInt8.report.tensors.filter((t) => t.kind === 'activation').map((t) => t.name));
const integer = await integerPointwise(foldedInt8.model, quantizedActivations, outputRange);

const variants: { name: string; model: Uint8Array; qdqOff: boolean }[] = [
  { name: 'float (the engine\'s graph)', model: rewriteGraph(original).bytes, qdqOff: false },
  { name: 'engine INT8 (Q/DQ handling off)', model: rewriteGraph(engineInt8.model).bytes, qdqOff: true },
  { name: 'INT8, BatchNorm folded first', model: rewriteGraph(foldedInt8.model).bytes, qdqOff: true },
  { name: `INT8, ${integer.convs} integer 1x1 Convs`, model: rewriteGraph(integer.model).bytes, qdqOff: false },
];
const sessions = await Promise.all(variants.map((v) => ort.InferenceSession.create(v.model, {
  intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', ...(v.qdqOff ? { extra: { session: QDQ_SESSION_CONFIG } } : {}),
})));

const accuracy: number[] = [];
for (const s of sessions) {
  let right = 0;
  for (let i = 0; i < heldOut.length; i += BATCH) {
    const chunk = heldOut.slice(i, i + BATCH);
    const out = (await s.run(toFeeds(chunk.map((l) => l.data))))[s.outputNames[0]!]!.data as Float32Array;
    chunk.forEach((l, j) => { if ((out[j * 2 + 1]! > out[j * 2]! ? 1 : 0) === l.label) right++; });
  }
  accuracy.push(right / heldOut.length);
}

const feeds = toFeeds(heldOut.slice(0, BATCH).map((l) => l.data));
const perRow: number[][] = sessions.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, s] of sessions.entries()) {
    for (let k = 0; k < 5; k++) await s.run(feeds);
    const t0 = performance.now();
    let runs = 0;
    while (performance.now() - t0 < ROUND_MS) {
      await s.run(feeds);
      runs++;
    }
    perRow[i]!.push((performance.now() - t0) / runs / BATCH);
  }
}

const rows = variants.map((v, i) => ({ model: v.name, msPerRow: median(perRow[i]!), rounds: perRow[i]!, accuracy: accuracy[i]! }));
console.log(`PaddleOCR cls, one thread, batch ${BATCH}, ${ROUNDS} rounds of ${ROUND_MS} ms taking turns; accuracy on ${heldOut.length} held-out lines\n`);
console.log('| model | ms a row (median round) | against float | accuracy |\n|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.model} | ${r.msPerRow.toFixed(3)} | ${(rows[0]!.msPerRow / r.msPerRow).toFixed(2)}× | ${(r.accuracy * 100).toFixed(2)} % |`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/int8-cpu-kernels.json', JSON.stringify({ date: new Date().toISOString(), batch: BATCH, rounds: ROUNDS, rows }, null, 2));
console.error('wrote bench/results/int8-cpu-kernels.json');
