/**
 * Where the engine's time goes at batch 1, 1 in flight, on the PaddleOCR classifier (1 worker
 * × 2 threads, the bench's overhead configuration). Five contenders, each called back to back
 * in blocks that take turns (src/bench/load.ts, interleavedAtOne): a raw `run()` on the JS
 * thread; a bare worker hop (the same session on a plain worker thread,
 * src/bench/bare-worker.ts); the engine's ONNX Runtime backend called directly (its worker protocol without the batcher); the engine; the engine
 * with `backgroundThreads: false`; the engine without the mailbox (src/backends/onnxruntime/mailbox.mjs:
 * every run through a request slot and a message naming it, where the addon has the doorbell, else
 * by message). Then how the engine's and the backend's runs went. Prints a table, writes bench/results/engine-overhead.json.
 *
 *   npx tsx bench/engine-overhead.ts [seconds per round] [rounds]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { OnnxruntimeBackend, workerSessionOptions } from '../src/backends/onnxruntime/index.js';
import { rewriteGraph } from '../src/engine/rewrite.js';
import { startBareWorker } from '../src/bench/bare-worker.js';
import { interleavedAtOne, median } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

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
// The engine without the mailbox: every run through a request slot and a message naming it
// (by message with its input transferred before session 21, and where the worker does not
// ring the doorbell), to a worker that still polls its port. The JS side reads a state word of
// its own that never says POLLING, so it never claims the mailbox (hiding the mailbox instead
// made every run send a fresh one).
const byMessage = await Engine.build(model, { instances: 1, threadsPerInstance: 2, shapes });
type WithWorkers = { workers: { state: Int32Array }[] };
for (const w of (byMessage as unknown as { impl: WithWorkers }).impl.workers) Object.defineProperty(w, 'state', { value: new Int32Array(new SharedArrayBuffer(4)) });
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['raw run()', (i) => raw.run({ x: new ort.Tensor('float32', inputs[i]!, dims) })],
  ['bare worker hop', (i) => bare.infer(inputs[i]!, dims)],
  // The backend transfers its input: a copy, as the engine's batch is.
  ['engine backend alone', (i) => backend.runTimed({ x: { data: inputs[i]!.slice(), dims } })],
  ['engine', (i) => engine.infer(inputs[i]!)],
  ['engine, normal thread policy', (i) => normal.infer(inputs[i]!)],
  ['engine, no mailbox', (i) => byMessage.infer(inputs[i]!)],
];

const p50s = await interleavedAtOne(contenders.map(([, infer]) => infer), inputs.length, rounds, seconds);
for (let r = 0; r < rounds; r++) console.log(`round ${r + 1}: ${contenders.map(([n], c) => `${n} ${p50s[c]![r]!.toFixed(3)}`).join(' | ')} ms`);
console.log(`\nbatch 1, 1 in flight, ${rounds} rounds of ${seconds} s: medians of the rounds' p50s, and over raw run() the median round (paired by round):`);
console.log('| contender | p50 ms | over raw run() |');
console.log('|---|---:|---:|');
const table = contenders.map(([name], c) => ({ name, p50Ms: median(p50s[c]!), overRaw: median(p50s[c]!.map((p, r) => p / p50s[0]![r]! - 1)) }));
for (const row of table) console.log(`| ${row.name} | ${row.p50Ms.toFixed(3)} | ${(row.overRaw * 100).toFixed(1)} % |`);

// How the engine's and the backend's runs reached their workers (mailbox.mjs: a worker
// polling after a result takes the next run from shared memory).
const paths = { 'engine backend alone': backend.stats(), engine: engine.stats().backendCounters ?? {}, 'engine, no mailbox': byMessage.stats().backendCounters ?? {} };
for (const [name, c] of Object.entries(paths)) console.log(`${name}: of ${c.runs} runs, ${c.mailboxRuns} through the mailbox, ${c.slotRuns ?? 0} through a request slot; ${c.boxResults ?? 0} results through the result box`);

await Promise.all([engine.dispose(), normal.dispose(), byMessage.dispose(), backend.dispose(), bare.close(), raw.release()]);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-overhead.json', JSON.stringify({
  seconds, rounds, table, p50sByRound: Object.fromEntries(contenders.map(([n], c) => [n, p50s[c]])),
  paths,
}, null, 2));
