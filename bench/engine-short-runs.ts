/**
 * Short runs that cannot merge: a model with a fixed batch of 1 (default: the ONNX Model
 * Zoo's MNIST CNN from ../shared/data: onnxruntime-node's p50 at 1 in flight, 0.08 ms) on the engine with
 * `pipelineShortRuns: true` (each instance holds its next run queued behind the one it
 * runs), the same engine by default, and plain onnxruntime-node with one run() per
 * request on the JS thread. Contenders take turns round by round at each number of
 * requests in flight. Prints a table of medians (ranges), writes
 * bench/results/engine-short-runs.json.
 *
 *   npx tsx bench/engine-short-runs.ts [seconds] [rounds] [model]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/index.js';
import { closedLoop, medianRange } from '../src/bench/load.js';

const seconds = Number(process.argv[2] ?? 1.5);
const rounds = Number(process.argv[3] ?? 3);
const model = process.argv[4] ?? '../shared/data/mnist/mnist-12.onnx';
if (!existsSync(model)) {
  console.error(`${model} not found: give a model with a fixed batch of 1 as the third argument`);
  process.exit(1);
}

const pipelined = await Engine.build(model, { pipelineShortRuns: true });
const unpipelined = await Engine.build(model, {});
const peer = await ort.InferenceSession.create(model);
const [input] = pipelined.inputs;
if (!input || pipelined.inputs.length !== 1 || input.shape.some((d) => d < 0) || input.dtype !== 'float32') {
  console.error(`${model}: this bench takes a model with one float32 input of fixed shape, not ${JSON.stringify(pipelined.inputs)}`);
  process.exit(1);
}
const size = input.shape.reduce((a, b) => a * b, 1);
// MNIST-like pixels 0..255; only the time matters.
const inputs = Array.from({ length: 64 }, (_, k) => Float32Array.from({ length: size }, (_, i) => 127.5 * (1 + Math.sin(i * 0.37 + k))));

const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['engine, pipelineShortRuns', (i) => pipelined.infer(inputs[i]!)],
  ['engine (default)', (i) => unpipelined.infer(inputs[i]!)],
  ['onnxruntime-node', (i) => peer.run({ [input.name]: new ort.Tensor('float32', inputs[i]!, input.shape) })],
];
const levels = [1, 4, 16, 64];
type Figures = { throughput: number[]; p50: number[]; p99: number[]; stall: number[] };
const results: Record<string, Figures> = {};
for (let r = 0; r < rounds; r++) {
  for (const c of levels) {
    for (let j = 0; j < contenders.length; j++) {
      const [name, run] = contenders[(j + r) % contenders.length]!;
      const res = await closedLoop(run, inputs.length, c, seconds, 0.3);
      const v = (results[`${name}|${c}`] ??= { throughput: [], p50: [], p99: [], stall: [] });
      v.throughput.push(res.throughput);
      v.p50.push(res.latencyMs.p50);
      v.p99.push(res.latencyMs.p99);
      v.stall.push(res.stallMaxMs);
    }
  }
  console.log(`round ${r + 1}/${rounds} done`);
}
const engine = { backend: pipelined.backend, batching: pipelined.batching };
await Promise.all([pipelined.dispose(), unpipelined.dispose(), peer.release()]);

console.log(`\n${model}, ${rounds} rounds of ${seconds} s, medians (range):`);
console.log('| contender | in flight | req/s | p50 ms | p99 ms | stall ms |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const c of levels) {
  for (const [name] of contenders) {
    const v = results[`${name}|${c}`]!;
    console.log(`| ${name} | ${c} | ${medianRange(v.throughput, 0)} | ${medianRange(v.p50, 2)} | ${medianRange(v.p99, 2)} | ${medianRange(v.stall, 1)} |`);
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-short-runs.json', JSON.stringify({ model, seconds, rounds, cores: availableParallelism(), engine, results }, null, 2));
console.log('\nwrote bench/results/engine-short-runs.json');
