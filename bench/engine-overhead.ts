/**
 * Where the engine's time goes at batch 1, 1 in flight, on the PaddleOCR classifier (1 worker
 * × 2 threads, the bench's overhead configuration). Five contenders interleaved request by
 * request, their order turning: a raw `run()` on the JS thread; a bare worker hop (the same
 * session on a plain worker thread, src/bench/bare-worker.ts); the engine's ONNX Runtime
 * backend called directly (its worker protocol without the batcher); the engine; the engine
 * with `backgroundThreads: false`. Then the engine and its backend alone, split at the
 * worker's postMessage and at the result's message: time before the hop, the round trip,
 * time after it. Prints tables, writes bench/results/engine-overhead.json.
 *
 *   npx tsx bench/engine-overhead.ts [seconds per round] [rounds]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { OnnxruntimeBackend, workerSessionOptions } from '../src/backends/onnxruntime/index.js';
import { rewriteGraph } from '../src/engine/rewrite.js';
import { startBareWorker } from '../src/bench/bare-worker.js';
import { interleavedAtOne, median } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { percentiles } from '../src/engine/stats.js';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 5);
const model = paddleClsModelPath();
const graph = rewriteGraph(readFileSync(model)).bytes;
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const dims = [1, 3, 48, 192];
const shapes = { x: [-1, 3, 48, 192] };

const raw = await ort.InferenceSession.create(graph, workerSessionOptions(2));
const bare = await startBareWorker(graph, 'x', workerSessionOptions(2));
const backend = await OnnxruntimeBackend.create(graph, { instances: 1, threadsPerInstance: 2 });
const engine = await Engine.build(model, { instances: 1, threadsPerInstance: 2, shapes });
const normal = await Engine.build(model, { instances: 1, threadsPerInstance: 2, backgroundThreads: false, shapes });
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['raw run()', (i) => raw.run({ x: new ort.Tensor('float32', inputs[i]!, dims) })],
  ['bare worker hop', (i) => bare.infer(inputs[i]!, dims)],
  // The backend transfers its input: a copy, as the engine's batch is.
  ['engine backend alone', (i) => backend.runTimed({ x: { data: inputs[i]!.slice(), dims } })],
  ['engine', (i) => engine.infer(inputs[i]!)],
  ['engine, normal thread policy', (i) => normal.infer(inputs[i]!)],
];

const p50s = await interleavedAtOne(contenders.map(([, infer]) => infer), inputs.length, rounds, seconds);
for (let r = 0; r < rounds; r++) console.log(`round ${r + 1}: ${contenders.map(([n], c) => `${n} ${p50s[c]![r]!.toFixed(3)}`).join(' | ')} ms`);
const rawMs = median(p50s[0]!);
console.log(`\nbatch 1, 1 in flight, ${rounds} rounds of ${seconds} s, medians of the rounds' p50s:`);
console.log('| contender | p50 ms | over raw run() |');
console.log('|---|---:|---:|');
const table = contenders.map(([name], c) => ({ name, p50Ms: median(p50s[c]!), overRaw: median(p50s[c]!) / rawMs - 1 }));
for (const row of table) console.log(`| ${row.name} | ${row.p50Ms.toFixed(3)} | ${(row.overRaw * 100).toFixed(1)} % |`);

// The split: the worker's postMessage and its 'message' event, watched from outside.
let posted = 0;
let arrived = 0;
const watch = (w: Worker): void => {
  const post = w.postMessage.bind(w);
  w.postMessage = ((...args: Parameters<Worker['postMessage']>) => {
    posted = performance.now();
    post(...args);
  }) as Worker['postMessage'];
  w.on('message', () => (arrived = performance.now()));
};
type WithWorkers = { workers: { worker: Worker }[] };
watch((backend as unknown as WithWorkers).workers[0]!.worker);
watch((engine as unknown as { impl: WithWorkers }).impl.workers[0]!.worker);
const split: Record<string, { before: number[]; trip: number[]; after: number[] }> = {
  'engine backend alone': { before: [], trip: [], after: [] },
  engine: { before: [], trip: [], after: [] },
};
for (let k = 0; k < Math.max(400, rounds * seconds * 200); k++) {
  for (const name of k % 2 ? ['engine', 'engine backend alone'] : ['engine backend alone', 'engine']) {
    const t0 = performance.now();
    await contenders.find(([n]) => n === name)![1](k % inputs.length);
    const t3 = performance.now();
    if (k >= 100) {
      split[name]!.before.push(posted - t0);
      split[name]!.trip.push(arrived - posted);
      split[name]!.after.push(t3 - arrived);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}
console.log('\n| alternating, p50 µs | before postMessage | round trip | after the message |');
console.log('|---|---:|---:|---:|');
const us = (xs: number[]): number => percentiles(xs).p50 * 1000;
for (const [name, s] of Object.entries(split)) console.log(`| ${name} | ${us(s.before).toFixed(0)} | ${us(s.trip).toFixed(0)} | ${us(s.after).toFixed(0)} |`);

await Promise.all([engine.dispose(), normal.dispose(), backend.dispose(), bare.close(), raw.release()]);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-overhead.json', JSON.stringify({
  seconds, rounds, table, p50sByRound: Object.fromEntries(contenders.map(([n], c) => [n, p50s[c]])),
  splitP50Us: Object.fromEntries(Object.entries(split).map(([n, s]) => [n, { before: us(s.before), trip: us(s.trip), after: us(s.after) }])),
}, null, 2));
