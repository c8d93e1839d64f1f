/**
 * How to split the cores between ONNX Runtime workers: instances × intra-op threads,
 * with and without thread spinning, at 1 and 64 in flight, beside plain
 * onnxruntime-node in the same run. Prints a table and writes
 * bench/results/engine-threads.json.
 *
 *   npx tsx bench/engine-threads.ts [seconds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 2);
const model = paddleClsModelPath();
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const cores = availableParallelism();
const rows: Record<string, unknown>[] = [];

async function measure(name: string, infer: (i: number) => Promise<unknown>): Promise<void> {
  for (const c of [1, 64]) {
    const r = await closedLoop(infer, inputs.length, c, seconds);
    rows.push({ config: name, concurrency: c, throughput: r.throughput, p50: r.latencyMs.p50, p99: r.latencyMs.p99, stall: r.stallMaxMs });
    console.log(`${name.padEnd(34)} c=${String(c).padStart(2)} ${r.throughput.toFixed(1).padStart(7)} req/s  p50 ${r.latencyMs.p50.toFixed(2).padStart(7)} ms  p99 ${r.latencyMs.p99.toFixed(2).padStart(7)} ms  stall ${r.stallMaxMs.toFixed(1)} ms`);
  }
}

const peer = await ort.InferenceSession.create(model, { intraOpNumThreads: cores });
await measure(`peer onnxruntime-node ${cores} threads`, (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) }));

const configs: [number, number, boolean][] = [
  [1, cores, false],
  [1, cores, true],
  [cores, 1, false],
  [cores, 1, true],
  [1, 1, false],
];
for (const [instances, threads, spinning] of configs) {
  const engine = await Engine.build(model, { backend: 'onnxruntime', instances, threadsPerInstance: threads, spinning, shapes: { x: [-1, 3, 48, 192] } });
  await measure(`engine ${instances}×${threads}${spinning ? ' spinning' : ''}`, (i) => engine.infer(inputs[i]!));
  await engine.dispose();
}
await peer.release();
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-threads.json', JSON.stringify({ cores, seconds, rows }, null, 2));
