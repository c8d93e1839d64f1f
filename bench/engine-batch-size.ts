/**
 * Throughput and latency at 64 in flight against maxBatchSize (and instances),
 * to choose the default: large batches can lose per-item speed on a CPU when
 * activations fall out of cache. Prints a table, writes bench/results/engine-batch-size.json.
 *
 *   npx tsx bench/engine-batch-size.ts [seconds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Engine } from '../src/engine/engine.js';
import { closedLoop } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 2);
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const rows: Record<string, unknown>[] = [];
for (const instances of [1, 2]) {
  for (const maxBatchSize of [4, 8, 16, 32, 64]) {
    const engine = await Engine.build(paddleClsModelPath(), { backend: 'onnxruntime', instances, threadsPerInstance: instances === 1 ? 2 : 1, maxBatchSize, shapes: { x: [-1, 3, 48, 192] } });
    const r = await closedLoop((i) => engine.infer(inputs[i]!), inputs.length, 64, seconds);
    const s = engine.stats();
    rows.push({ instances, maxBatchSize, throughput: r.throughput, p50: r.latencyMs.p50, p99: r.latencyMs.p99, meanBatch: s.meanBatchSize, computeMs: s.meanComputeMs });
    console.log(`${instances}×${instances === 1 ? 2 : 1} maxBatchSize ${String(maxBatchSize).padStart(2)}  ${r.throughput.toFixed(1).padStart(7)} req/s  p50 ${r.latencyMs.p50.toFixed(1).padStart(6)} ms  p99 ${r.latencyMs.p99.toFixed(1).padStart(6)} ms  batch ${s.meanBatchSize.toFixed(1)}  exec ${s.meanComputeMs.toFixed(1)} ms`);
    await engine.dispose();
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-batch-size.json', JSON.stringify({ seconds, rows }, null, 2));
