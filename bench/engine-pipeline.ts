/**
 * Several engines in one process: a PaddleOCR-shaped pipeline (the PP-OCRv4 detector on one
 * side × side image, then the classifier and the recognizer on `lines` text lines each, as one
 * request of that many rows) with three engines built by default (each starts one worker per
 * core), the same engines writing results into memory the caller keeps and reuses
 * (`infer(x, { outputs })`), the same three with one single-threaded worker each, and plain
 * onnxruntime-node running the three sessions in turn on the JS thread. Contenders take
 * turns round by round at each number of pipelines in flight. Prints a table of medians,
 * writes bench/results/engine-pipeline.json. Synthetic inputs: only the time matters.
 *
 *   npx tsx bench/engine-pipeline.ts [seconds] [rounds] [side] [lines]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Engine, type EngineOptions } from '../src/index.js';
import { closedLoop, medianRange } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';

const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 3);
const side = Number(process.argv[4] ?? 320);
const lines = Number(process.argv[5] ?? 4);
const assets = join(paddleClsModelPath(), '..');
const stages = [
  { name: 'det', model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'), item: [3, side, side], rows: 1 },
  { name: 'cls', model: paddleClsModelPath(), item: [3, 48, 192], rows: lines },
  { name: 'rec', model: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), item: [3, 48, 320], rows: lines },
];
const pattern = (n: number, k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.001 * (k + 1)));
const inputs = stages.map((s) => Array.from({ length: 4 }, (_, k) => pattern(s.rows * s.item.reduce((a, b) => a * b, 1), k)));

async function engines(options: EngineOptions): Promise<Engine[]> {
  const out: Engine[] = [];
  for (const s of stages) out.push(await Engine.build(s.model, { ...options, shapes: { x: [-1, ...s.item] } }));
  return out;
}
const byDefault = await engines({});
const single = await engines({ instances: 1, threadsPerInstance: 1 });
const sessions = await Promise.all(stages.map((s) => ort.InferenceSession.create(s.model)));
const describe = (es: Engine[]): string => es.map((e, i) => `${stages[i]!.name} ${e.backend.instances}×${e.backend.threadsPerInstance} (lone: ${e.backend.loneRuns?.threads ?? 1})`).join(', ');
console.log(`${availableParallelism()} cores. default: ${describe(byDefault)}; single: ${describe(single)}`);

const viaEngines = (es: Engine[]) => async (i: number): Promise<void> => {
  for (const [k, e] of es.entries()) await e.infer(inputs[k]![i]!);
};
// Result memory a service keeps: one set per pipeline in flight, taken and given back,
// sized from a first run (the detector's and the recognizer's outputs have dynamic axes).
const resultLengths = await Promise.all(byDefault.map(async (e, k) => Object.values(await e.infer(inputs[k]![0]!))[0]!.data.length));
const spare: Float32Array[][] = [];
const viaEnginesInto = (es: Engine[]) => async (i: number): Promise<void> => {
  const memory = spare.pop() ?? resultLengths.map((n) => new Float32Array(n));
  for (const [k, e] of es.entries()) await e.infer(inputs[k]![i]!, { outputs: { [e.outputs[0]!.name]: memory[k]! } });
  spare.push(memory);
};
const viaSessions = async (i: number): Promise<void> => {
  for (const [k, s] of sessions.entries()) {
    await s.run({ x: new ort.Tensor('float32', inputs[k]![i]!, [stages[k]!.rows, ...stages[k]!.item]) });
  }
};
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['engines by default', viaEngines(byDefault)],
  ['engines, results into caller memory', viaEnginesInto(byDefault)],
  ['engines, 1 worker each', viaEngines(single)],
  ['onnxruntime-node', viaSessions],
];
const levels = [1, 4, 16];
const results: Record<string, { throughput: number[]; p99: number[]; stall: number[] }> = {};
for (let r = 0; r < rounds; r++) {
  for (const c of levels) {
    for (let j = 0; j < contenders.length; j++) {
      const [name, run] = contenders[(j + r) % contenders.length]!;
      const res = await closedLoop(run, 4, c, seconds, 0.3);
      const key = `${name}|${c}`;
      results[key] ??= { throughput: [], p99: [], stall: [] };
      results[key].throughput.push(res.throughput);
      results[key].p99.push(res.latencyMs.p99);
      results[key].stall.push(res.stallMaxMs);
    }
  }
  console.log(`round ${r + 1}/${rounds} done`);
}
await Promise.all([...byDefault, ...single].map((e) => e.dispose()));
await Promise.all(sessions.map((s) => s.release()));

console.log(`\ndet ${side}×${side} + cls and rec on ${lines} lines a pipeline, ${rounds} rounds of ${seconds} s, medians (range):`);
console.log('| contender | pipelines in flight | pipelines/s | p99 ms | stall ms |');
console.log('|---|---:|---:|---:|---:|');
for (const c of levels) {
  for (const [name] of contenders) {
    const v = results[`${name}|${c}`]!;
    console.log(`| ${name} | ${c} | ${medianRange(v.throughput, 1)} | ${medianRange(v.p99, 1)} | ${medianRange(v.stall, 1)} |`);
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-pipeline.json', JSON.stringify({ seconds, rounds, side, lines, cores: availableParallelism(), default: describe(byDefault), single: describe(single), results }, null, 2));
