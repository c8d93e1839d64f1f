/**
 * The engine alone at a few concurrencies (closed loop), beside raw onnxruntime-node
 * run() in the same process: throughput, latency, event-loop stall and utilization,
 * and the engine's mean compute time per batch. A quick check of the engine's own
 * overheads; run it under --cpu-prof to see where the JS thread's time goes.
 *
 *   node --import ./bench/register.mjs bench/engine-load.ts [seconds] [concurrency,...]
 *   (or npx tsx bench/engine-load.ts 3 1,16,64)
 * Env: SPIN=0 (no intra-op spinning, engine and raw session), RAW=0 (skip the raw session).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { workerSessionOptions } from '../src/backends/onnxruntime/index.js';

const seconds = Number(process.argv[2] ?? 3);
const levels = (process.argv[3] ?? '1,16,64').split(',').map(Number);
const model = paddleClsModelPath();
const inputs = renderTextLines(256, 1_000_000).map((l) => l.data);
const cores = availableParallelism();
const rows: Record<string, unknown>[] = [];

const spinning = process.env.SPIN !== '0';
const engine = await Engine.build(model, { backend: 'onnxruntime', spinning, shapes: { x: [-1, 3, 48, 192] } });
// The raw session has the engine workers' session options, so only the API differs.
const raw = process.env.RAW === '0' ? undefined : await ort.InferenceSession.create(model, workerSessionOptions(engine.backend.threadsPerInstance ?? cores, spinning));
for (const c of levels) {
  const before = engine.stats();
  const r = await closedLoop((i) => engine.infer(inputs[i]!), inputs.length, c, seconds);
  const after = engine.stats();
  const batches = after.batches - before.batches;
  const batch = batches ? (after.inferences - before.inferences) / batches : 0;
  const computeMs = batches ? (after.totalComputeMs - before.totalComputeMs) / batches : 0;
  const row = { contender: 'engine', concurrency: c, throughput: r.throughput, p50: r.latencyMs.p50, p99: r.latencyMs.p99, stall: r.stallMaxMs, elu: r.eventLoopUtilization, batch, computeMs };
  rows.push(row);
  console.log(`engine c=${String(c).padStart(2)} ${r.throughput.toFixed(1).padStart(7)} req/s  p50 ${r.latencyMs.p50.toFixed(2).padStart(7)} ms  p99 ${r.latencyMs.p99.toFixed(2).padStart(7)} ms  stall ${r.stallMaxMs.toFixed(1)} ms  ELU ${(r.eventLoopUtilization * 100).toFixed(0)} %  batch ${batch.toFixed(1)}  compute ${computeMs.toFixed(2)} ms`);
  if (raw) {
    const q = await closedLoop((i) => raw.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) }), inputs.length, c, seconds);
    rows.push({ contender: 'raw', concurrency: c, throughput: q.throughput, p50: q.latencyMs.p50, p99: q.latencyMs.p99, stall: q.stallMaxMs });
    console.log(`raw    c=${String(c).padStart(2)} ${q.throughput.toFixed(1).padStart(7)} req/s  p50 ${q.latencyMs.p50.toFixed(2).padStart(7)} ms  p99 ${q.latencyMs.p99.toFixed(2).padStart(7)} ms  stall ${q.stallMaxMs.toFixed(1)} ms`);
  }
}
await engine.dispose();
await raw?.release();
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-load.json', JSON.stringify({ cores, seconds, rows }, null, 2));
