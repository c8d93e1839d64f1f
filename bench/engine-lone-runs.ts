/**
 * A lone batch on every core (`wideLoneRuns`, src/engine/lone-runs.ts): the engine as
 * built by default, the same without the wide session, and plain onnxruntime-node, taking
 * turns round by round at 1 and 4 in flight, on the PP-OCRv4 detector (side × side) or
 * recognizer (48 × width), or the PaddleOCR classifier. Prints the engine's choice and a
 * table of medians, writes bench/results/engine-lone-runs-<model>.json.
 *
 *   npx tsx bench/engine-lone-runs.ts [det | rec | cls] [seconds] [rounds] [side | width]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop, median } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';

const which = process.argv[2] ?? 'det';
const seconds = Number(process.argv[3] ?? 2);
const rounds = Number(process.argv[4] ?? 3);
const assets = join(paddleClsModelPath(), '..');
const setups: Record<string, { model: string; item: number[] }> = {
  det: { model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'), item: [3, Number(process.argv[5] ?? 320), Number(process.argv[5] ?? 320)] },
  rec: { model: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), item: [3, 48, Number(process.argv[5] ?? 320)] },
  cls: { model: paddleClsModelPath(), item: [3, 48, 192] },
};
const setup = setups[which];
if (!setup) throw new Error(`model must be det, rec or cls, got ${which}`);
const size = setup.item.reduce((a, b) => a * b, 1);
// A smooth synthetic pattern: only the time matters here.
const inputs = Array.from({ length: 8 }, (_, k) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.001 * (k + 1))));
const shapes = { x: [-1, ...setup.item] };

const wide = await Engine.build(setup.model, { shapes });
const narrow = await Engine.build(setup.model, { shapes, wideLoneRuns: false });
const peer = await ort.InferenceSession.create(setup.model);
console.log(`engine: ${wide.backend.instances} × ${wide.backend.threadsPerInstance}, maxBatchSize ${wide.batching.maxBatchSize}; lone runs: ${wide.backend.loneRuns?.threads} thread(s): ${wide.backend.loneRuns?.reason}`);
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['engine (default)', (i) => wide.infer(inputs[i]!)],
  ['engine, wideLoneRuns: false', (i) => narrow.infer(inputs[i]!)],
  ['onnxruntime-node', (i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, [1, ...setup.item]) })],
];
const levels = [1, 4];
const results: Record<string, { throughput: number[]; p50: number[] }> = {};
for (let r = 0; r < rounds; r++) {
  for (const c of levels) {
    for (let j = 0; j < contenders.length; j++) {
      const [name, infer] = contenders[(j + r) % contenders.length]!;
      const res = await closedLoop(infer, inputs.length, c, seconds, 0.3);
      const key = `${name}|${c}`;
      results[key] ??= { throughput: [], p50: [] };
      results[key].throughput.push(res.throughput);
      results[key].p50.push(res.latencyMs.p50);
    }
  }
  console.log(`round ${r + 1}/${rounds} done`);
}
await Promise.all([wide.dispose(), narrow.dispose(), peer.release()]);

console.log(`\n${which} ${setup.item.join('×')}, ${rounds} rounds of ${seconds} s, medians (range):`);
console.log('| contender | in flight | req/s | p50 ms |');
console.log('|---|---:|---:|---:|');
for (const c of levels) {
  for (const [name] of contenders) {
    const r = results[`${name}|${c}`]!;
    console.log(`| ${name} | ${c} | ${median(r.throughput).toFixed(1)} (${Math.min(...r.throughput).toFixed(1)}–${Math.max(...r.throughput).toFixed(1)}) | ${median(r.p50).toFixed(1)} |`);
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/engine-lone-runs-${which}.json`, JSON.stringify({ model: which, item: setup.item, seconds, rounds, loneRuns: wide.backend.loneRuns, results }, null, 2));
