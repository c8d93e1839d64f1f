/**
 * Intra-op spinning on vs off (threads stop spinning when a run returns, as in the
 * engine's workers): raw onnxruntime-node run() on the main thread and the onnxruntime
 * backend (one worker) at 1 in flight, alternating rounds; medians of the rounds' p50.
 *   npx tsx bench/engine-spin.ts [secondsPerRound] [rounds]
 */
import * as ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';
import { closedLoop } from '../src/bench/load.js';
import { paddleClsModelPath } from '../src/bench/models.js';
import { renderTextLines } from '../src/bench/text-lines.js';
import { createOnnxruntimeBackend, workerSessionOptions } from '../src/backends/onnxruntime/index.js';
import { percentiles } from '../src/engine/stats.js';

const seconds = Number(process.argv[2] ?? 1);
const rounds = Number(process.argv[3] ?? 3);
const model = paddleClsModelPath();
const inputs = renderTextLines(64, 1_000_000).map((l) => l.data);
const threads = availableParallelism();
const rawOn = await ort.InferenceSession.create(model, workerSessionOptions(threads, true));
const rawOff = await ort.InferenceSession.create(model, workerSessionOptions(threads, false));
const beOn = await createOnnxruntimeBackend(model, { instances: 1, threadsPerInstance: threads, spinning: true });
const beOff = await createOnnxruntimeBackend(model, { instances: 1, threadsPerInstance: threads, spinning: false });
const contenders: [string, (i: number) => Promise<unknown>][] = [
  ['raw spin on', (i) => rawOn.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) })],
  ['raw spin off', (i) => rawOff.run({ x: new ort.Tensor('float32', inputs[i]!, [1, 3, 48, 192]) })],
  ['worker spin on', (i) => beOn.run({ x: { data: inputs[i]!.slice(), dims: [1, 3, 48, 192], type: 'float32' } })],
  ['worker spin off', (i) => beOff.run({ x: { data: inputs[i]!.slice(), dims: [1, 3, 48, 192], type: 'float32' } })],
];
const p50s = new Map<string, number[]>();
for (let k = 0; k < rounds; k++) {
  for (const [name, infer] of contenders) {
    const r = await closedLoop(infer, inputs.length, 1, seconds, 0.2);
    (p50s.get(name) ?? p50s.set(name, []).get(name)!).push(r.latencyMs.p50);
  }
}
for (const [name, xs] of p50s) console.log(`${name.padEnd(16)} p50 median ${percentiles(xs).p50.toFixed(3)} ms  (rounds: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
await Promise.all([rawOn.release(), rawOff.release(), beOn.dispose(), beOff.dispose()]);
