/**
 * The engine's graph rewrites (src/engine/rewrite.ts) on the PaddleOCR models: plain
 * onnxruntime-node sessions of the model as given and as rewritten, one intra-op thread
 * each, taking turns round by round. Prints median ms a row with the range, the rewrites
 * counted, and how far the outputs moved; writes bench/results/graph-rewrites.json.
 *
 *   npx tsx bench/graph-rewrites.ts [rounds] [models, e.g. cls,rec,det]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { rewriteGraph } from '../src/engine/rewrite.js';
import { median, medianRange } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const rounds = Number(process.argv[2] ?? 6);
const models = (process.argv[3] ?? 'cls,rec,det').split(',');
const assets = dirname(paddleClsModelPath());
const MODELS: Record<string, { file: string; item: number[]; batches: number[] }> = {
  cls: { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', item: [3, 48, 192], batches: [1, 8] },
  rec: { file: 'ch_PP-OCRv4_rec_infer.onnx', item: [3, 48, 320], batches: [1, 2] },
  det: { file: 'ch_PP-OCRv4_det_infer.onnx', item: [3, 320, 320], batches: [1, 2] },
};

/** Rendered text lines, placed on a white canvas of the model's item shape (rows beyond the line stay white). */
function inputs(item: number[], batch: number): Float32Array {
  const [c, h, w] = item as [number, number, number];
  const lines = renderTextLines(batch, 7);
  const x = new Float32Array(batch * c * h * w).fill(1);
  lines.forEach((line, n) => {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < Math.min(48, h); y++) {
        const row = line.data.subarray((ch * 48 + y) * 192, (ch * 48 + y) * 192 + Math.min(192, w));
        x.set(row, ((n * c + ch) * h + y) * w);
      }
    }
  });
  return x;
}

const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' as const, graphOptimizationLevel: 'all' as const, logSeverityLevel: 3 as const };
const rows: Record<string, unknown>[] = [];
console.log(`${'model'.padEnd(5)} ${'batch'.padStart(5)}  ${'as given, ms a row'.padEnd(22)} ${'rewritten'.padEnd(22)} speed-up  largest difference  rewrites`);
for (const name of models) {
  const spec = MODELS[name];
  if (!spec) throw new Error(`model must be one of ${Object.keys(MODELS).join(', ')}, got ${name}`);
  const bytes = readFileSync(join(assets, spec.file));
  const rewritten = rewriteGraph(bytes);
  const given = await ort.InferenceSession.create(bytes, options);
  const fast = await ort.InferenceSession.create(rewritten.bytes, options);
  const output = given.outputNames[0]!;
  for (const batch of spec.batches) {
    const x = new ort.Tensor('float32', inputs(spec.item, batch), [batch, ...spec.item]);
    const want = (await given.run({ x }))[output]!.data as Float32Array;
    const got = (await fast.run({ x }))[output]!.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    const times: Record<'given' | 'rewritten', number[]> = { given: [], rewritten: [] };
    const runs = Math.max(3, Math.round(200 / (batch * spec.item.reduce((a, b) => a * b, 1) / 27648)));
    for (let round = 0; round < rounds; round++) {
      const order: ['given' | 'rewritten', ort.InferenceSession][] = [['given', given], ['rewritten', fast]];
      for (const [who, session] of round % 2 ? order.reverse() : order) {
        const ts: number[] = [];
        for (let i = 0; i < Math.min(runs, 40); i++) {
          const t0 = performance.now();
          await session.run({ x });
          ts.push(performance.now() - t0);
        }
        times[who].push(median(ts) / batch);
      }
    }
    const cell = (xs: number[]): string => medianRange(xs, 2);
    const speedup = median(times.given) / median(times.rewritten);
    rows.push({ model: name, item: spec.item, batch, rewrites: rewritten.rewrites, msPerRow: times, speedup, maxAbsDiff: diff });
    console.log(`${name.padEnd(5)} ${String(batch).padStart(5)}  ${cell(times.given).padEnd(22)} ${cell(times.rewritten).padEnd(22)} ${speedup.toFixed(2).padStart(7)}×  ${diff.toExponential(1).padStart(18)}  ${JSON.stringify(rewritten.rewrites)}`);
  }
  await given.release();
  await fast.release();
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/graph-rewrites.json', JSON.stringify({ rounds, rows }, null, 2));
