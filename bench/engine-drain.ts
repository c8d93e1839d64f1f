/**
 * Shutting down under load: 64 callers keep the classifier's engine busy for a while, then
 * stop sending and call dispose(), with and without a drain. Counts what happened to the 64
 * requests accepted and not yet answered at the call (answered, or rejected with EDISPOSED)
 * and how long dispose() took. Prints a table and writes bench/results/engine-drain.json.
 *   npx tsx bench/engine-drain.ts [rounds=3] [loadSeconds=1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { Engine } from '../src/engine/engine.js';
import type { DisposeOptions } from '../src/engine/options.js';

const rounds = Number(process.argv[2] ?? 3);
const loadSeconds = Number(process.argv[3] ?? 1);
const IN_FLIGHT = 64;
const modes: { name: string; options: DisposeOptions }[] = [
  { name: 'dispose()', options: {} },
  { name: 'dispose({ drainTimeoutMs: Infinity })', options: { drainTimeoutMs: Infinity } },
  { name: 'dispose({ drainTimeoutMs: 5 })', options: { drainTimeoutMs: 5 } },
];
const inputs = renderTextLines(16, 1_000_000).map((l) => l.data);

interface Row { mode: string; round: number; pending: number; answered: number; rejected: number; other: number; disposeMs: number }
const rows: Row[] = [];

for (let round = 1; round <= rounds; round++) {
  for (const mode of modes) {
    const engine = await Engine.build(paddleClsModelPath(), {});
    const name = engine.inputs[0]!.name;
    let stopping = false;
    let answered = 0;
    let rejected = 0;
    let other = 0;
    let sent = 0;
    // Each caller has one request outstanding at any time, and sends no more once the service
    // shuts down: the IN_FLIGHT outstanding at the call are accepted and not yet answered.
    const callers = Array.from({ length: IN_FLIGHT }, async () => {
      while (!stopping) {
        try {
          await engine.infer({ [name]: { data: inputs[sent++ % inputs.length]!, dims: [1, 3, 48, 192] } });
          if (stopping) answered++;
        } catch (e) {
          if (stopping && (e as { code?: string }).code === 'EDISPOSED') rejected++;
          else other++;
        }
      }
    });
    await new Promise((r) => setTimeout(r, loadSeconds * 1000));
    const pending = engine.stats().pending;
    stopping = true;
    const t0 = performance.now();
    await engine.dispose(mode.options);
    const disposeMs = performance.now() - t0;
    await Promise.all(callers);
    rows.push({ mode: mode.name, round, pending, answered, rejected, other, disposeMs });
  }
}

console.log(`the PaddleOCR classifier's engine, ${IN_FLIGHT} callers for ${loadSeconds} s, then each stops sending and dispose() is called (${rounds} rounds)`);
console.log('| dispose | round | queued at the call | answered after the call | rejected (EDISPOSED) | other errors | dispose() took, ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| \`${r.mode}\` | ${r.round} | ${r.pending} | ${r.answered} | ${r.rejected} | ${r.other} | ${r.disposeMs.toFixed(1)} |`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-drain.json', JSON.stringify({ inFlight: IN_FLIGHT, loadSeconds, rows }, null, 2));
