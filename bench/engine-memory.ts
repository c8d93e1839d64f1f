/**
 * Memory: what an engine's workers cost beside plain onnxruntime-node. Each configuration
 * runs in a process of its own (RSS is per process): plain onnxruntime-node (one session),
 * and engines of 1, 2 and 4 single-threaded workers, each driven for a few seconds at 4 in
 * flight. RSS is read before the build, after the load, and 6 s later, once the build
 * worker (graph rewrites of a model of 2 MB or more) has ended. Prints a table of the
 * growth over the process's start, writes bench/results/engine-memory-<model>.json.
 *
 *   npx tsx bench/engine-memory.ts [rec | det | cls] [seconds]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { paddleClsModelPath } from '../src/bench/models.js';

const assets = join(paddleClsModelPath(), '..');
const setups: Record<string, { model: string; item: number[] }> = {
  rec: { model: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), item: [3, 48, 320] },
  det: { model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'), item: [3, 320, 320] },
  cls: { model: paddleClsModelPath(), item: [3, 48, 192] },
};
const mb = (): number => process.memoryUsage().rss / 2 ** 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row { contender: string; startMb: number; loadedMb: number; settledMb: number }

/** One configuration, in this (child) process: prints its row as JSON. */
async function measure(which: string, instances: number, seconds: number): Promise<void> {
  const setup = setups[which]!;
  const x = Float32Array.from({ length: setup.item.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.001));
  const startMb = mb();
  let run: () => Promise<unknown>;
  let done: () => Promise<void>;
  if (instances === 0) {
    const session = await ort.InferenceSession.create(setup.model);
    const tensor = new ort.Tensor('float32', x, [1, ...setup.item]);
    run = () => session.run({ x: tensor });
    done = () => session.release();
  } else {
    const engine = await Engine.build(setup.model, { shapes: { x: [-1, ...setup.item] }, instances, threadsPerInstance: 1, wideLoneRuns: false });
    run = () => engine.infer(x);
    done = () => engine.dispose();
  }
  const until = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (performance.now() < until) await run();
  }));
  const loadedMb = mb();
  await sleep(6000);
  const settledMb = mb();
  await done();
  const row: Row = { contender: instances === 0 ? 'onnxruntime-node, one session' : `engine, ${instances} worker(s)`, startMb, loadedMb, settledMb };
  console.log(JSON.stringify(row));
}

if (process.argv[2] === '--child') {
  await measure(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
} else {
  const which = process.argv[2] ?? 'rec';
  const seconds = Number(process.argv[3] ?? 4);
  if (!setups[which]) throw new Error(`model must be rec, det or cls, got ${which}`);
  const self = fileURLToPath(import.meta.url);
  const rows: Row[] = [];
  for (const instances of [0, 1, 2, 4]) {
    const out = execFileSync(process.execPath, [...process.execArgv, self, '--child', which, String(instances), String(seconds)], { encoding: 'utf8' });
    rows.push(JSON.parse(out.trim().split('\n').pop()!) as Row);
  }
  console.log(`${which}: ${setups[which]!.model.split('/').pop()}, ${seconds} s at 4 in flight, RSS growth over the process's start (MB)`);
  console.log('| contender | after the load | 6 s later |\n|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.contender} | ${(r.loadedMb - r.startMb).toFixed(0)} | ${(r.settledMb - r.startMb).toFixed(0)} |`);
  const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `engine-memory-${which}.json`), JSON.stringify({ model: which, seconds, rows }, null, 2));
}
