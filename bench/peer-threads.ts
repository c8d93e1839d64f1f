/**
 * The peer's two modes: plain onnxruntime-node with its default intra-op threads (one per
 * core) against the same session on one thread, beside the engine, round by round at 64
 * in flight on the PaddleOCR classifier. On a shared VM the peer's threads synchronize
 * inside every operator, so a vCPU the host takes away for a moment stalls the whole run;
 * the engine's single-threaded workers lose only their own share. This is why the
 * bench's ratio to the peer swings from run to run: read it with its rounds.
 * Prints each round and the medians, writes bench/results/peer-threads.json.
 *
 *   npx tsx bench/peer-threads.ts [seconds per measurement] [rounds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Engine } from '../src/engine/engine.js';
import { closedLoop, median } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';

const seconds = Number(process.argv[2] ?? 1.5);
const rounds = Number(process.argv[3] ?? 6);
const inFlight = 64;
const cores = availableParallelism();
const model = paddleClsModelPath();
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);

const session = (threads: number): Promise<ort.InferenceSession> =>
  ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
const viaSession = (s: ort.InferenceSession) => (i: number) => s.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) });
const engine = await Engine.build(model, { shapes: { x: [-1, 3, 48, 192] } });
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['engine (default)', (i) => engine.infer(inputs[i]!)],
  [`peer, ${cores} threads (default)`, viaSession(await session(cores))],
  ['peer, 1 thread', viaSession(await session(1))],
];

const perRound: Record<string, number[]> = Object.fromEntries(contenders.map(([n]) => [n, []]));
for (let r = 0; r < rounds; r++) {
  const line: string[] = [];
  for (let j = 0; j < contenders.length; j++) {
    const [name, infer] = contenders[(j + r) % contenders.length]!;
    const res = await closedLoop(infer, inputs.length, inFlight, seconds, 0.2);
    perRound[name]!.push(res.throughput);
  }
  for (const [name] of contenders) line.push(`${name} ${perRound[name]![r]!.toFixed(0)}`);
  console.log(`round ${r + 1}: ${line.join(' | ')} req/s`);
}
await engine.dispose();

console.log(`\n${inFlight} in flight, ${rounds} rounds of ${seconds} s (${engine.backend.instances} × ${engine.backend.threadsPerInstance} engine workers):`);
console.log('| contender | median req/s | lowest | highest |');
console.log('|---|---:|---:|---:|');
for (const [name] of contenders) {
  const t = perRound[name]!;
  console.log(`| ${name} | ${median(t).toFixed(0)} | ${Math.min(...t).toFixed(0)} | ${Math.max(...t).toFixed(0)} |`);
}
const ratios = perRound[contenders[0]![0]]!.map((t, i) => t / perRound[contenders[1]![0]]![i]!);
console.log(`engine / default peer by round: ${ratios.map((x) => `${x.toFixed(2)}×`).join(', ')}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/peer-threads.json', JSON.stringify({ inFlight, seconds, rounds, cores, perRound, engineVsDefaultPeer: ratios }, null, 2));
