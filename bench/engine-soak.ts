/**
 * Memory over a long run: `requests` requests at 64 in flight through one engine, with
 * RSS, JS heap and ArrayBuffer memory read (after a GC when run with --expose-gc) six
 * times on the way. Prints a table and writes bench/results/engine-soak.json.
 *   node --expose-gc --import tsx bench/engine-soak.ts [requests=36000] [model] [dims as JSON]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { Engine } from '../src/engine/engine.js';

const total = Number(process.argv[2] ?? 36_000);
const model = process.argv[3] ?? paddleClsModelPath();
const dims = process.argv[4] ? (JSON.parse(process.argv[4]) as number[]) : [1, 3, 48, 192];
const size = dims.reduce((a, b) => a * b, 1);
const inputs = process.argv[3]
  ? Array.from({ length: 16 }, (_, k) => Float32Array.from({ length: size }, (_, i) => Math.sin(i + k)))
  : renderTextLines(16, 1_000_000).map((l) => l.data);

const engine = await Engine.build(model, {});
const name = engine.inputs[0]!.name;
const gc = (globalThis as { gc?: () => void }).gc;
const rows: { requests: number; rssMB: number; heapMB: number; arrayBuffersMB: number }[] = [];
const sample = (requests: number): void => {
  gc?.();
  const m = process.memoryUsage();
  rows.push({ requests, rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20, arrayBuffersMB: m.arrayBuffers / 2 ** 20 });
};
let done = 0;
const every = Math.max(1, Math.floor(total / 6));
const started = performance.now();
sample(0);
await Promise.all(
  Array.from({ length: 64 }, async (_, w) => {
    while (done < total) {
      await engine.infer({ [name]: { data: inputs[(done + w) % inputs.length]!, dims } });
      done++;
      if (done % every === 0) sample(done);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const stats = engine.stats();
await engine.dispose();

console.log(`${done} requests at 64 in flight in ${seconds.toFixed(1)} s${gc ? '' : ' (no --expose-gc: figures include garbage)'}`);
console.log('| requests | RSS MB | JS heap MB | ArrayBuffers MB |');
console.log('|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.requests} | ${r.rssMB.toFixed(1)} | ${r.heapMB.toFixed(1)} | ${r.arrayBuffersMB.toFixed(1)} |`);
console.log(`succeeded ${stats.succeeded}, failed ${JSON.stringify(stats.failed)}, pending ${stats.pending}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-soak.json', JSON.stringify({ model, dims, requests: done, seconds, rows, succeeded: stats.succeeded }, null, 2));
