/**
 * Large results and the event loop: the PP-OCRv4 detector (409.6 KB of output a row at
 * 320 × 320) served with fresh result memory (views of each batch's result, the default)
 * and with caller memory (`infer(x, { outputs })`, which lets the engine reuse its result
 * buffers), beside plain onnxruntime-node. Counts the JS thread's full (mark-compact) GCs
 * with a PerformanceObserver and takes the loop's longest stall, per round; the contenders
 * take turns. Prints a table of medians, writes bench/results/engine-large-results.json.
 *
 *   npx tsx bench/engine-large-results.ts [seconds per measurement] [rounds] [side]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop, median, type Infer } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 4);
const side = Number(process.argv[4] ?? 320);
const levels = [4, 16];
const cores = availableParallelism();
const model = join(dirname(paddleClsModelPath()), 'ch_PP-OCRv4_det_infer.onnx');
const item = [3, side, side];
const size = item.reduce((a, b) => a * b, 1);
const inputs = Array.from({ length: 8 }, (_, k) => new Float32Array(size).map((_, i) => Math.sin(i * 0.001 + k)));

const engine = await Engine.build(model, { backend: 'onnxruntime', shapes: { x: [-1, ...item] } });
const peer = await ort.InferenceSession.create(model, { intraOpNumThreads: cores });
const output = engine.outputs[0]!.name;
// One destination per request in flight: taken for a request, given back when it settles.
const free: Float32Array[] = [];
const intoCallerMemory: Infer = async (i) => {
  const memory = free.pop() ?? new Float32Array(side * side);
  try {
    return await engine.infer(inputs[i]!, { outputs: { [output]: memory } });
  } finally {
    free.push(memory);
  }
};
const contenders: [string, Infer][] = [
  ['fresh', (i) => engine.infer(inputs[i]!)],
  ['outputs', intoCallerMemory],
  ['peer', (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, ...item]) })],
];

/** Full GCs of this thread while `fn` runs: count and total pause. */
async function withMajorGcs<T>(fn: () => Promise<T>): Promise<{ value: T; majorGcs: number; majorGcMs: number }> {
  let majorGcs = 0;
  let majorGcMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        majorGcs++;
        majorGcMs += e.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const value = await fn();
  await new Promise((r) => setImmediate(r)); // entries are delivered asynchronously
  observer.disconnect();
  return { value, majorGcs, majorGcMs };
}

interface Sample { throughput: number; stallMaxMs: number; majorGcs: number; majorGcMs: number; p99: number }
const samples = new Map<string, Sample[]>();
for (let round = 0; round < rounds; round++) {
  for (const c of levels) {
    for (const [who, infer] of round % 2 ? [...contenders].reverse() : contenders) {
      const { value: r, majorGcs, majorGcMs } = await withMajorGcs(() => closedLoop(infer, inputs.length, c, seconds));
      const key = `${who}|${c}`;
      samples.set(key, [...(samples.get(key) ?? []), { throughput: r.throughput, stallMaxMs: r.stallMaxMs, majorGcs, majorGcMs, p99: r.latencyMs.p99 }]);
    }
  }
}

const rows: Record<string, unknown>[] = [];
const med = (xs: Sample[], f: (s: Sample) => number): number => median(xs.map(f));
const range = (xs: Sample[], f: (s: Sample) => number, digits = 1): string => `${Math.min(...xs.map(f)).toFixed(digits)}–${Math.max(...xs.map(f)).toFixed(digits)}`;
console.log(`detector ${side} × ${side}, maxBatchSize ${engine.batching.maxBatchSize}, ${rounds} rounds of ${seconds} s (medians, range)`);
console.log(`${'contender'.padEnd(9)} ${'in flight'.padStart(9)}  ${'req/s'.padEnd(20)} ${'stall max, ms'.padEnd(20)} ${'full GCs / round'.padEnd(18)} ${'GC pause, ms'.padEnd(14)} p99, ms`);
for (const c of levels) {
  for (const [who] of contenders) {
    const xs = samples.get(`${who}|${c}`)!;
    rows.push({ contender: who, concurrency: c, samples: xs });
    console.log(`${who.padEnd(9)} ${String(c).padStart(9)}  ${`${med(xs, (s) => s.throughput).toFixed(1)} (${range(xs, (s) => s.throughput)})`.padEnd(20)} ${`${med(xs, (s) => s.stallMaxMs).toFixed(1)} (${range(xs, (s) => s.stallMaxMs)})`.padEnd(20)} ${`${med(xs, (s) => s.majorGcs)} (${range(xs, (s) => s.majorGcs, 0)})`.padEnd(18)} ${med(xs, (s) => s.majorGcMs).toFixed(1).padEnd(14)} ${med(xs, (s) => s.p99).toFixed(1)}`);
  }
}
await engine.dispose();
await peer.release();
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-large-results.json', JSON.stringify({ cores, seconds, rounds, side, maxBatchSize: engine.batching.maxBatchSize, rows }, null, 2));
