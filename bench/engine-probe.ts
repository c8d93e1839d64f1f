/**
 * maxBatchSize measured at build (the probe) against the former fixed default of 8 rows
 * a thread, beside plain onnxruntime-node with every core as intra-op threads, on the
 * PaddleOCR classifier (48 × 192), recognizer (48 × 320) and detector (320 × 320). The
 * contenders take turns round by round, so the machine's drift falls on all of them.
 * Prints a table of medians over the rounds, writes bench/results/engine-probe.json.
 *
 *   npx tsx bench/engine-probe.ts [seconds per measurement] [rounds] [models, e.g. cls,rec,det]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop, median, medianRange } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 2);
const models = (process.argv[4] ?? 'cls,rec,det').split(',');
const levels = [16, 64];
const cores = availableParallelism();
const assets = dirname(paddleClsModelPath());
const MODELS: Record<string, { file: string; item: number[] }> = {
  cls: { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', item: [3, 48, 192] },
  rec: { file: 'ch_PP-OCRv4_rec_infer.onnx', item: [3, 48, 320] },
  det: { file: 'ch_PP-OCRv4_det_infer.onnx', item: [3, 320, 320] },
};

const rows: Record<string, unknown>[] = [];
console.log(`${'model'.padEnd(5)} ${'in flight'.padStart(9)}  ${'probed (mb)'.padEnd(24)} ${'fixed 8'.padEnd(20)} ${'peer'.padEnd(20)} probed/fixed  probed/peer`);
for (const name of models) {
  const spec = MODELS[name];
  if (!spec) throw new Error(`model must be one of ${Object.keys(MODELS).join(', ')}, got ${name}`);
  const model = join(assets, spec.file);
  const size = spec.item.reduce((a, b) => a * b, 1);
  const inputs = name === 'cls'
    ? renderTextLines(64, 1_000_000).map((l) => l.data)
    : Array.from({ length: 8 }, (_, k) => new Float32Array(size).map((_, i) => Math.sin(i * 0.001 + k)));
  const shapes = { x: [-1, ...spec.item] };
  const probed = await Engine.build(model, { backend: 'onnxruntime', shapes });
  const fixed = await Engine.build(model, { backend: 'onnxruntime', shapes, maxBatchSize: 8 });
  const peer = await ort.InferenceSession.create(model, { intraOpNumThreads: cores });
  const contenders: [string, (i: number) => Promise<unknown>][] = [
    ['probed', (i) => probed.infer(inputs[i]!)],
    ['fixed', (i) => fixed.infer(inputs[i]!)],
    ['peer', (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, ...spec.item]) })],
  ];
  const samples = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const c of levels) {
      for (const [who, infer] of round % 2 ? [...contenders].reverse() : contenders) {
        const r = await closedLoop(infer, inputs.length, c, seconds);
        samples.set(`${who}|${c}`, [...(samples.get(`${who}|${c}`) ?? []), r.throughput]);
      }
    }
  }
  for (const c of levels) {
    const got = (who: string): number[] => samples.get(`${who}|${c}`)!;
    const cell = (xs: number[]): string => medianRange(xs, 1);
    const row = {
      model: name, item: spec.item, concurrency: c, probedMaxBatchSize: probed.batching.maxBatchSize, probe: probed.batching.probe,
      probed: got('probed'), fixed: got('fixed'), peer: got('peer'),
      probedOverFixed: median(got('probed')) / median(got('fixed')), probedOverPeer: median(got('probed')) / median(got('peer')),
    };
    rows.push(row);
    console.log(`${name.padEnd(5)} ${String(c).padStart(9)}  ${`${cell(row.probed)} (${row.probedMaxBatchSize})`.padEnd(24)} ${cell(row.fixed).padEnd(20)} ${cell(row.peer).padEnd(20)} ${row.probedOverFixed.toFixed(2).padStart(11)}× ${row.probedOverPeer.toFixed(2).padStart(10)}×`);
  }
  await probed.dispose();
  await fixed.dispose();
  await peer.release();
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-probe.json', JSON.stringify({ cores, seconds, rounds, rows }, null, 2));
