/**
 * The event loop's longest stall at 64 in flight, by the policy of the inference
 * threads: engines with `backgroundThreads` on (nice 10) and off, in alternating
 * rounds, beside one round of plain onnxruntime-node FP32 (one run() per request); then
 * the price: each engine's throughput while the JS thread itself is 80 % busy; and, last,
 * each one's (and the peer's) second by second beside other busy processes (busyPerCore shell
 * loops a core), where the background engine starves until it replaces its workers by ones
 * of normal priority, with the event loop's longest stall there.
 * Prints three tables and writes bench/results/engine-stall.json.
 * With `own-session`, the busy loops start in sessions of their own (setsid), so that where
 * Linux groups a session's tasks (autogroup) they compete with this process's group as a whole.
 *   npx tsx bench/engine-stall.ts [secondsPerRound] [rounds] [concurrency] [busyPerCore] [own-session]
 */
import * as ort from 'onnxruntime-node';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { closedLoop, type ClosedLoopResult } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { Engine } from '../src/engine/engine.js';
import { percentiles } from '../src/engine/stats.js';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 4);
const concurrency = Number(process.argv[4] ?? 64);
const busyPerCore = Number(process.argv[5] ?? 1);
const busyOwnSession = process.argv[6] === 'own-session';
const model = paddleClsModelPath();
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const dims = [1, 3, 48, 192];

const engines = {
  'background (default)': await Engine.build(model, { backgroundThreads: true }),
  'normal policy': await Engine.build(model, { backgroundThreads: false }),
};
const results = new Map<string, ClosedLoopResult[]>();
for (let k = 0; k < rounds; k++) {
  const order = Object.entries(engines);
  if (k % 2) order.reverse();
  for (const [name, engine] of order) {
    const r = await closedLoop((i) => engine.infer({ x: { data: inputs[i]!, dims } }), inputs.length, concurrency, seconds);
    (results.get(name) ?? results.set(name, []).get(name)!).push(r);
  }
}
// The price of the background priority: with the JS thread itself busy (20 ms of synchronous
// work every 25 ms, 80 %), niced inference threads get little of the busy thread's core.
const spin = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
const busy = new Map<string, number[]>();
for (let k = 0; k < Math.min(rounds, 4); k++) {
  const order = Object.entries(engines);
  if (k % 2) order.reverse();
  for (const [name, engine] of order) {
    const timer = setInterval(() => spin(20), 25);
    const r = await closedLoop((i) => engine.infer({ x: { data: inputs[i]!, dims } }), inputs.length, 16, seconds);
    clearInterval(timer);
    (busy.get(name) ?? busy.set(name, []).get(name)!).push(r.throughput);
  }
}

const peer = await ort.InferenceSession.create(model);
const peerResult = await closedLoop((i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, dims) }), inputs.length, concurrency, seconds);
results.set('onnxruntime-node (peer)', [peerResult]);

const policies = Object.fromEntries(Object.entries(engines).map(([name, e]) => [name, e.backend.threadPolicy]));

// Beside other busy processes (busyPerCore shell loops a core), 16 in flight: requests served
// in each second. At nice 10 the workers get ~10 % of a core beside one loop (under
// SCHED_IDLE, the background until session 20, almost none) until the engine replaces them
// by workers of normal priority (starvation.ts): last, as they stay so for seconds after.
const hoggedSeconds = Math.max(8, 3 * seconds);
// The event loop's longest stall there too, from a 10 ms timer's gaps: starved workers hold
// locks the JS thread waits on (Node's message ports, V8's futex mutex; docs/engine.md).
async function perSecond(infer: (i: number) => Promise<unknown>): Promise<{ counts: number[]; stallMaxMs: number }> {
  const hogs = Array.from({ length: busyPerCore * availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: busyOwnSession }));
  const counts: number[] = [];
  let n = 0;
  let next = 0;
  const started = performance.now();
  const tick = setInterval(() => {
    counts.push(n);
    n = 0;
  }, 1000);
  let last = performance.now();
  let stallMaxMs = 0;
  const gaps = setInterval(() => {
    const now = performance.now();
    stallMaxMs = Math.max(stallMaxMs, now - last - 10);
    last = now;
  }, 10);
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (performance.now() - started < hoggedSeconds * 1000) {
      await infer(next++ % inputs.length);
      n++;
    }
  }));
  clearInterval(tick);
  clearInterval(gaps);
  for (const h of hogs) h.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  return { counts, stallMaxMs };
}
const hogged = new Map<string, { counts: number[]; stallMaxMs: number }>();
for (const name of ['normal policy', 'background (default)'] as const) {
  const engine = engines[name];
  hogged.set(name, await perSecond((i) => engine.infer({ x: { data: inputs[i]!, dims } })));
}
hogged.set('onnxruntime-node (peer)', await perSecond((i) => peer.run({ x: new ort.Tensor('float32', inputs[i]!, dims) })));
const rows = [...results].map(([name, rs]) => ({
  name,
  threadPolicy: policies[name],
  rounds: rs.length,
  stallMaxMs: rs.map((r) => r.stallMaxMs),
  stallMedianMs: percentiles(rs.map((r) => r.stallMaxMs)).p50,
  throughputMedian: percentiles(rs.map((r) => r.throughput)).p50,
  p99MedianMs: percentiles(rs.map((r) => r.latencyMs.p99)).p50,
}));
console.log(`${concurrency} in flight, ${rounds} alternating rounds of ${seconds} s (PaddleOCR cls)`);
console.log('| threads | stall max per round (ms) | median stall | median throughput | median p99 |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.stallMaxMs.map((x) => x.toFixed(1)).join(', ')} | ${r.stallMedianMs.toFixed(1)} ms | ${r.throughputMedian.toFixed(0)} req/s | ${r.p99MedianMs.toFixed(1)} ms |`);
}
console.log('\nWith the JS thread 80 % busy, 16 in flight: throughput per round');
console.log('| threads | req/s per round | median |');
console.log('|---|---|---:|');
for (const [name, xs] of busy) console.log(`| ${name} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${percentiles(xs).p50.toFixed(0)} req/s |`);
console.log(`\nBeside ${busyPerCore * availableParallelism()} busy processes (${busyPerCore} a core${busyOwnSession ? ', each in a session of its own' : ''}), 16 in flight: requests served in each second`);
console.log('| threads | req/s in each second | last half, median | longest event-loop stall | policy at the end |');
console.log('|---|---|---:|---:|---|');
for (const [name, { counts: xs, stallMaxMs }] of hogged) {
  const policy = name in engines ? engines[name as keyof typeof engines].backend.threadPolicy : 'normal (JS thread)';
  console.log(`| ${name} | ${xs.join(', ')} | ${percentiles(xs.slice(Math.floor(xs.length / 2))).p50.toFixed(0)} req/s | ${stallMaxMs.toFixed(1)} ms | ${policy} |`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/engine-stall.json', JSON.stringify({
  concurrency, seconds, rounds, rows, busyJsThroughput: Object.fromEntries(busy),
  besideBusyProcesses: { busyPerCore, busyOwnSession, seconds: hoggedSeconds, perSecond: Object.fromEntries([...hogged].map(([k, v]) => [k, v.counts])), stallMaxMs: Object.fromEntries([...hogged].map(([k, v]) => [k, v.stallMaxMs])), policyAfter: Object.fromEntries(Object.entries(engines).map(([name, e]) => [name, e.backend.threadPolicy])) },
}, null, 2));
await Promise.all([...Object.values(engines).map((e) => e.dispose()), peer.release()]);
