/**
 * How to split the cores between ONNX Runtime workers: one worker with every core as
 * intra-op threads, against one single-threaded worker per core (the default), each
 * with its default maxBatchSize (8 rows per thread), at 1, 4, 16 and 64 in flight,
 * beside plain onnxruntime-node. The contenders take turns round by round, so the
 * machine's drift falls on all of them. Prints a table of medians over the rounds and
 * writes bench/results/engine-threads.json.
 *
 *   npx tsx bench/engine-threads.ts [seconds per measurement] [rounds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 3);
const model = paddleClsModelPath();
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const cores = availableParallelism();
const levels = [1, 4, 16, 64];

const peer = await ort.InferenceSession.create(model, { intraOpNumThreads: cores });
const contenders: { name: string; infer: (i: number) => Promise<unknown>; engine?: Engine }[] = [
  { name: `peer onnxruntime-node ${cores} threads`, infer: (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) }) },
];
for (const [instances, threads] of [[1, cores], [cores, 1]] as const) {
  const engine = await Engine.build(model, { backend: 'onnxruntime', instances, threadsPerInstance: threads, shapes: { x: [-1, 3, 48, 192] } });
  contenders.push({ name: `engine ${instances}×${threads} maxBatchSize ${engine.batching.maxBatchSize}`, infer: (i) => engine.infer(inputs[i]!), engine });
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

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const rows: Record<string, unknown>[] = [];
console.log(`\n${'contender'.padEnd(40)} in flight   req/s (median, range)        p50 ms   p99 ms`);
for (const c of levels) {
  for (const k of contenders) {
    const s = samples.get(`${k.name}|${c}`)!;
    const tp = s.map((x) => x.throughput);
    const row = { config: k.name, concurrency: c, throughput: median(tp), throughputMin: Math.min(...tp), throughputMax: Math.max(...tp), p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)), rounds: s };
    rows.push(row);
    console.log(`${k.name.padEnd(40)} ${String(c).padStart(9)}   ${row.throughput.toFixed(0).padStart(5)} (${row.throughputMin.toFixed(0)}–${row.throughputMax.toFixed(0)})`.padEnd(80) + `${row.p50.toFixed(2).padStart(7)}  ${row.p99.toFixed(2).padStart(7)}`);
  }
}
for (const k of contenders) await k.engine?.dispose();
await peer.release();
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-threads.json', JSON.stringify({ cores, seconds, rounds, rows }, null, 2));
