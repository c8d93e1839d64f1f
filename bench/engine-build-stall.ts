/**
 * What Engine.build costs a process that serves while it builds: each build's time and the
 * event loop's longest stall during it (a 1 ms timer, perf_hooks.monitorEventLoopDelay),
 * for the PaddleOCR classifier (FP32 and INT8) and the PP-OCRv4 recognizer and detector,
 * into an empty cache folder and then from it. The peer, a plain onnxruntime-node
 * InferenceSession.create() of the same model, is timed the same way.
 * Prints a table, writes bench/results/engine-build-stall.json.
 *
 *   npx tsx bench/engine-build-stall.ts [rounds]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { medianRange } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import type { EngineOptions } from '../src/engine/options.js';

const rounds = Number(process.argv[2] ?? 3);
const assets = join(paddleClsModelPath(), '..');
const calibration = renderTextLines(64, 1).map((l) => l.data);
const cases: { name: string; model: string; options: EngineOptions }[] = [
  { name: 'classifier FP32', model: paddleClsModelPath(), options: { shapes: { x: [-1, 3, 48, 192] } } },
  { name: 'classifier INT8 (64 lines)', model: paddleClsModelPath(), options: { precision: 'int8', calibration, shapes: { x: [-1, 3, 48, 192] } } },
  { name: 'recognizer FP32', model: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), options: { shapes: { x: [-1, 3, 48, 320] } } },
  { name: 'detector FP32', model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'), options: { shapes: { x: [-1, 3, 320, 320] } } },
];

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number; stallMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  const value = await f();
  const ms = performance.now() - t0;
  h.disable();
  return { value, ms, stallMs: Math.max(0, h.max / 1e6 - 1) };
}

type Row = { name: string; step: string; ms: number[]; stallMs: number[]; threads?: unknown };
const rows = new Map<string, Row>();
const record = (name: string, step: string, r: { ms: number; stallMs: number }, threads?: unknown): void => {
  const key = `${name}|${step}`;
  const row = rows.get(key) ?? { name, step, ms: [], stallMs: [] };
  row.ms.push(r.ms);
  row.stallMs.push(r.stallMs);
  if (threads !== undefined) row.threads = threads;
  rows.set(key, row);
};

for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-build-stall-'));
    for (const step of ['first build', 'from the cache']) {
      const r = await timed(() => Engine.build(c.model, { ...c.options, cacheDir }));
      record(c.name, step, r, { ...r.value.buildThreads, loneRunThreads: r.value.backend.loneRuns?.threads });
      await r.value.dispose();
    }
    rmSync(cacheDir, { recursive: true, force: true });
    if (c.options.precision !== 'int8') {
      const p = await timed(() => ort.InferenceSession.create(c.model));
      record(c.name, 'peer: InferenceSession.create', p);
      await p.value.release();
    }
  }
}

console.log(`\n${rounds} rounds, medians (lowest – highest):`);
console.log('| model | step | time ms | longest stall ms | where quantization / rewrites ran; lone runs (last round) |');
console.log('|---|---|---:|---:|---|');
const span = (xs: number[]): string => medianRange(xs, 0);
for (const r of rows.values()) {
  const t = r.threads as { quantization?: string; graphRewrites?: string; loneRunThreads?: number } | undefined;
  const where = t
    ? [t.quantization && `quantization: ${t.quantization}`, t.graphRewrites && `rewrites: ${t.graphRewrites}`, t.loneRunThreads && `lone runs: ${t.loneRunThreads} thread(s)`].filter(Boolean).join('; ')
    : '';
  console.log(`| ${r.name} | ${r.step} | ${span(r.ms)} | ${span(r.stallMs)} | ${where} |`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-build-stall.json', JSON.stringify({ rounds, rows: [...rows.values()] }, null, 2));
