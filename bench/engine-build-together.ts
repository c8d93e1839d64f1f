/**
 * Several processes that start together (a cluster's workers, replicas on one machine) each
 * build the same INT8 engine of the PaddleOCR classifier into an empty cache: once sharing
 * one cache folder (one process quantizes, the others wait for its entry and load it), once
 * with a folder each (every process quantizes, as each would without the shared lock).
 * Prints each process's build time and cache status and the time until all are ready;
 * writes bench/results/engine-build-together.json.
 *
 *   npx tsx bench/engine-build-together.ts [processes=2,4] [rounds=2]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { medianRange } from '../src/bench/load.js';

const counts = (process.argv[2] ?? '2,4').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 2);
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const src = (path: string): string => JSON.stringify(pathToFileURL(join(root, path)).href);

/** One process: builds the engine into `cacheDir`, answers one request, prints what it saw. */
const child = (cacheDir: string): string => `
  import { Engine } from ${src('src/engine/engine.ts')};
  import { paddleClsModelPath } from ${src('src/bench/models.ts')};
  import { renderTextLines } from ${src('src/bench/text-lines.ts')};
  const calibration = renderTextLines(64, 1).map((l) => l.data);
  const t0 = performance.now();
  const engine = await Engine.build(paddleClsModelPath(), { precision: 'int8', calibration, shapes: { x: [-1, 3, 48, 192] }, cacheDir: ${JSON.stringify(cacheDir)} });
  await engine.infer(calibration[0]);
  console.log(JSON.stringify({ buildMs: performance.now() - t0, status: engine.cache.status, waitedMs: engine.cache.waited?.ms }));
  await engine.dispose();
`;

interface Run { processes: number; folders: 'shared' | 'one each'; round: number; readyMs: number; builds: { buildMs: number; status: string; waitedMs?: number }[] }
const runs: Run[] = [];

async function together(n: number, folders: Run['folders'], round: number): Promise<Run> {
  const base = mkdtempSync(join(tmpdir(), 'trtn-together-'));
  try {
    const started = performance.now();
    const builds = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<Run['builds'][number]>((resolveBuild, reject) => {
      const dir = folders === 'shared' ? base : join(base, String(i));
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child(dir)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('close', (code) => (code === 0 ? resolveBuild(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`a build exited with ${code}`))));
    })));
    return { processes: n, folders, round, readyMs: performance.now() - started, builds };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

for (let round = 1; round <= rounds; round++) {
  for (const n of counts) {
    // Taking turns, so that neither arrangement always runs on a warmer machine.
    const order: Run['folders'][] = round % 2 ? ['shared', 'one each'] : ['one each', 'shared'];
    for (const folders of order) runs.push(await together(n, folders, round));
  }
}

console.log(`INT8 classifier (64 calibration lines) built at once by several processes into an empty cache, ${rounds} rounds`);
console.log('| processes | cache folder | all ready, s (median, range) | builds (status: seconds, waited) |');
console.log('|---:|---|---:|---|');
for (const n of counts) {
  for (const folders of ['shared', 'one each'] as const) {
    const mine = runs.filter((r) => r.processes === n && r.folders === folders);
    const ready = medianRange(mine.map((r) => r.readyMs / 1000), 1);
    const builds = mine.map((r) => r.builds.map((b) => `${b.status}: ${(b.buildMs / 1000).toFixed(1)}${b.waitedMs !== undefined ? ` (waited ${(b.waitedMs / 1000).toFixed(1)})` : ''}`).join(', ')).join(' / ');
    console.log(`| ${n} | ${folders} | ${ready} | ${builds} |`);
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-build-together.json', JSON.stringify({ rounds, runs }, null, 2));
