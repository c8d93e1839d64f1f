/**
 * How to split the cores between ONNX Runtime workers: one worker with every core as
 * intra-op threads, the default (one single-threaded worker per core up to 8), and the
 * default's workers with twice its threads, blocking instead of spinning, each with its
 * default maxBatchSize (8 rows per thread), beside plain onnxruntime-node. The
 * contenders take turns round by round, so the machine's drift falls on all of them.
 * Prints a table of medians over the rounds and writes bench/results/engine-threads-<model>.json.
 *
 *   npx tsx bench/engine-threads.ts [seconds per measurement] [rounds] [cls | rec | det] [rec width | det side]
 *
 * cls: the PaddleOCR classifier on rendered text lines, at 1, 4, 16 and 64 in flight.
 * rec: the PP-OCRv4 recognizer on 48 × width inputs (320 unless given), at 1, 4 and 16 in flight.
 * det: the PP-OCRv4 detector on side × side inputs (480 unless given), at 1 and 4 in flight.
 * rec and det get a smooth synthetic pattern: only the time matters here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { defaultThreading } from '../src/backends/onnxruntime/index.js';
import { closedLoop, median } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 3);
const which = process.argv[4] ?? 'cls';
if (which !== 'cls' && which !== 'rec' && which !== 'det') throw new Error(`model must be cls, rec or det, got ${which}`);
const side = Number(process.argv[5] ?? (which === 'rec' ? 320 : 480));
const cores = availableParallelism();
const assets = dirname(paddleClsModelPath());
const model = { cls: paddleClsModelPath(), rec: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), det: join(assets, 'ch_PP-OCRv4_det_infer.onnx') }[which];
const item = { cls: [3, 48, 192], rec: [3, 48, side], det: [3, side, side] }[which];
const size = item.reduce((a, b) => a * b, 1);
const inputs = which === 'cls'
  ? renderTextLines(64, 1_000_000).map((l) => l.data)
  : Array.from({ length: 8 }, (_, k) => new Float32Array(size).map((_, i) => Math.sin(i * 0.001 + k)));
const levels = { cls: [1, 4, 16, 64], rec: [1, 4, 16], det: [1, 4] }[which];

const peer = await ort.InferenceSession.create(model, { intraOpNumThreads: cores });
const contenders: { name: string; infer: (i: number) => Promise<unknown>; engine?: Engine }[] = [
  { name: `peer onnxruntime-node ${cores} threads`, infer: (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, ...item]) }) },
];
const defaults = defaultThreading(cores);
const configs: [number, number, boolean][] = [
  [1, cores, true],
  [defaults.instances, defaults.threadsPerInstance, true], // the default
  [defaults.instances, 2 * defaults.threadsPerInstance, false], // twice the cores in threads, blocking
];
for (const [instances, threads, spinning] of configs) {
  const engine = await Engine.build(model, { backend: 'onnxruntime', instances, threadsPerInstance: threads, spinning, shapes: { x: [-1, ...item] } });
  contenders.push({ name: `engine ${instances}×${threads}${spinning ? '' : ' no spin'} maxBatchSize ${engine.batching.maxBatchSize}`, infer: (i) => engine.infer(inputs[i]!), engine });
}

type Sample = { throughput: number; p50: number; p99: number; stall: number };
const samples = new Map<string, Sample[]>();
for (let round = 0; round < rounds; round++) {
  for (const c of levels) {
    for (const k of contenders) {
      const r = await closedLoop(k.infer, inputs.length, c, seconds);
      const key = `${k.name}|${c}`;
      samples.set(key, [...(samples.get(key) ?? []), { throughput: r.throughput, p50: r.latencyMs.p50, p99: r.latencyMs.p99, stall: r.stallMaxMs }]);
    }
  }
  console.log(`round ${round + 1}/${rounds} done`);
}

const rows: Record<string, unknown>[] = [];
console.log(`\n${'contender'.padEnd(44)} in flight   req/s (median, range)        p50 ms   p99 ms`);
for (const c of levels) {
  for (const k of contenders) {
    const s = samples.get(`${k.name}|${c}`)!;
    const tp = s.map((x) => x.throughput);
    const row = { config: k.name, concurrency: c, throughput: median(tp), throughputMin: Math.min(...tp), throughputMax: Math.max(...tp), p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)), rounds: s };
    rows.push(row);
    console.log(`${k.name.padEnd(44)} ${String(c).padStart(9)}   ${row.throughput.toFixed(0).padStart(5)} (${row.throughputMin.toFixed(0)}–${row.throughputMax.toFixed(0)})`.padEnd(80) + `${row.p50.toFixed(2).padStart(7)}  ${row.p99.toFixed(2).padStart(7)}`);
  }
}
for (const k of contenders) await k.engine?.dispose();
await peer.release();
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/engine-threads-${which}${which === 'cls' ? '' : `-${side}`}.json`, JSON.stringify({ model: which, item, cores, seconds, rounds, rows }, null, 2));
