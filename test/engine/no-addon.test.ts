/**
 * Where no addon binary fits (macOS, Windows, arm64 Linux: the package ships linux-x64
 * prebuilds only), the CPU path must still work: the engine on onnxruntime-node, its
 * results equal to onnxruntime-node's, host memory from the JS heap, INT8, and runtimeInfo
 * saying why. A child process whose TENSORRT_NODE_ADDON_PATH names no file has no addon,
 * as there.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKGROUND_POLICY_NO_ADDON, CLS_MODEL, runScript, srcUrl } from './helpers.js';

const SCRIPT = `
import { createRequire } from 'node:module';
import { Engine, runtimeInfo } from ${srcUrl('src/index.ts')};
// The script lies outside the repository: onnxruntime-node as the repository resolves it.
const ort = createRequire(${srcUrl('package.json')})('onnxruntime-node');
const model = ${JSON.stringify(CLS_MODEL)};
const info = runtimeInfo();
const engine = await Engine.build(model, { shapes: { x: [-1, 3, 48, 192] }, graphRewrites: false });
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
// Back to back first, so that runs find the worker polling: its mailbox inputs are
// copied in the worker here (no addon to read them in place).
const inputs = Array.from({ length: 20 }, (_, k) => Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.01 * (k + 1))));
const results = [];
for (const x of inputs) results.push((await engine.infer(x))['softmax_0.tmp_0'].data);
const counters = engine.stats().backendCounters;
let same = 0;
for (const [k, x] of inputs.entries()) {
  const want = (await session.run({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) }))['softmax_0.tmp_0'].data;
  if (results[k].every((v, i) => Object.is(v, want[i]))) same++;
}
const io = engine.allocate(2);
io.x.data.fill(0.5);
const fromPool = (await engine.infer(io))['softmax_0.tmp_0'].dims;
const calibration = [0.3, -0.2, 0.1].map((v) => new Float32Array(3 * 48 * 192).fill(v));
const int8 = await Engine.build(model, { precision: 'int8', calibration, shapes: { x: [-1, 3, 48, 192] } });
const int8Dims = (await int8.infer(new Float32Array(3 * 48 * 192)))['softmax_0.tmp_0'].dims;
console.log(JSON.stringify({
  addonLoaded: info.addon.loaded, problem: info.problems[0], usable: info.backends.usable,
  backend: engine.backend.name, reason: engine.backend.reason, threadPolicy: engine.backend.threadPolicy,
  same, counters, fromPool, int8Dims, quantized: int8.quantization?.quantizedNodes.length ?? 0,
}));
await Promise.all([engine.dispose(), int8.dispose(), session.release()]);
`;

describe('without the native addon', () => {
  it('runs the CPU path: onnxruntime-node bits (mailbox inputs copied), host memory, INT8, and says why the addon is missing', () => {
    // A path that names no file.
    const r = runScript(() => SCRIPT, { timeoutMs: 120_000, env: { TENSORRT_NODE_ADDON_PATH: join(tmpdir(), 'tnp-absent', 'no-such-addon.node') } });
    expect({ status: r.status, stderr: r.stderr.split('\n').slice(-6).join('\n') }).toMatchObject({ status: 0 });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(out.addonLoaded).toBe(false);
    expect(out.problem).toMatchObject({ component: 'addon', code: 'ENOBINARY' });
    expect(out.problem.message).toMatch(/no-such-addon\.node does not exist/);
    expect(out.usable).toEqual(['onnxruntime']);
    expect(out.backend).toBe('onnxruntime');
    expect(out.reason).toMatch(/^auto: TensorRT is not usable \(the native addon is not loaded: /);
    // Threads are niced from JS (os.setPriority), addon or not; their slice needs the addon.
    if (process.platform === 'linux') expect(out.threadPolicy).toBe(BACKGROUND_POLICY_NO_ADDON);
    expect(out.same).toBe(20);
    expect(out.counters.mailboxRuns).toBeGreaterThan(0);
    expect(out.counters.mailboxRunsInPlace).toBe(0);
    expect(out.fromPool).toEqual([2, 2]);
    expect(out.int8Dims).toEqual([1, 2]);
    expect(out.quantized).toBeGreaterThan(0);
  });
});
