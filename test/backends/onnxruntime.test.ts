/**
 * The ONNX Runtime backend on its own: the worker protocol's buffer round trip and
 * the scheduling policy of the inference threads, read back from /proc.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { OnnxruntimeBackend, defaultThreading, workerExecArgv } from '../../src/backends/onnxruntime/index.js';
import type { TensorLike } from '../../src/tensor.js';
import { CLS_ITEM, CLS_MODEL, REC_MODEL, BACKGROUND_NICE, BACKGROUND_POLICY, KERNEL_TAKES_SLICES, clsInput, ort, referenceSession, sameBits, threadNices, threadSliceNs } from '../engine/helpers.js';

const backends: OnnxruntimeBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.dispose()));
});

/** Writes `lines` as a module in a scratch folder, runs node on it once per argument list, cleans up. */
function runScript(lines: string[], argLists: (script: string) => string[][]): SpawnSyncReturns<string>[] {
  const dir = mkdtempSync(join(tmpdir(), 'tnp-child-'));
  try {
    const script = join(dir, 'run.mts');
    writeFileSync(script, lines.join('\n'));
    return argLists(script).map((args) => spawnSync(process.execPath, args, { cwd: process.cwd(), encoding: 'utf8', timeout: 60_000 }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const srcUrl = (path: string): string => JSON.stringify(pathToFileURL(join(process.cwd(), path)).href);
const lastLines = (text: string): string => text.split('\n').slice(-4).join('\n');

describe('onnxruntime backend', () => {
  it('defaults to one single-threaded worker per core, up to 8 workers, then more threads each', () => {
    expect(defaultThreading(1)).toEqual({ instances: 1, threadsPerInstance: 1 });
    expect(defaultThreading(2)).toEqual({ instances: 2, threadsPerInstance: 1 });
    expect(defaultThreading(6)).toEqual({ instances: 6, threadsPerInstance: 1 });
    expect(defaultThreading(16)).toEqual({ instances: 8, threadsPerInstance: 2 });
    expect(defaultThreading(20)).toEqual({ instances: 8, threadsPerInstance: 2 });
  });

  it("starts its workers without the parent's preloads and module hooks, keeping other options", () => {
    expect(workerExecArgv(['--import', 'tsx', '--max-old-space-size=4096', '--require=dd-trace/init', '-r', 'ts-node/register', '--loader', 'x.mjs', '--enable-source-maps', '--experimental-loader=y.mjs']))
      .toEqual(['--max-old-space-size=4096', '--enable-source-maps']);
    expect(workerExecArgv([])).toEqual([]);
    expect(workerExecArgv(['--expose-gc', '--input-type=module', '-e', 'code', '--import', 'tsx'])).toEqual(['--expose-gc']);
  });

  it('starts its workers under a parent run with V8 flags, a preload, or -e code', () => {
    // Node refuses V8 flags in an explicit execArgv (ERR_WORKER_INVALID_EXEC_ARGV) and a worker
    // given the parent's --input-type / -e fails to load its module: each case runs for real.
    const runs = runScript([
      `import { OnnxruntimeBackend } from ${srcUrl('src/backends/onnxruntime/index.ts')};`,
      `const b = await OnnxruntimeBackend.create(${JSON.stringify(CLS_MODEL)}, { instances: 1, threadsPerInstance: 1 });`,
      `const r = await b.runTimed({ x: { data: new Float32Array(${CLS_ITEM.join(' * ')}), dims: [1, ${CLS_ITEM.join(', ')}], type: 'float32' } });`,
      `console.log('dims', JSON.stringify(Object.values(r.outputs)[0].dims));`,
      'await b.dispose();',
    ], (script) => [
      ['--expose-gc', '--max-old-space-size=1024', '--import', 'tsx', script],
      ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(script).href)})`],
    ]);
    for (const r of runs) {
      expect({ status: r.status, stderr: lastLines(r.stderr) }).toMatchObject({ status: 0 });
      expect(r.stdout).toContain('dims [1,2]');
    }
  });

  it('hands the input buffers back into the feeds after each run, intact and reusable', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 1 });
    backends.push(backend);
    const input = clsInput(7, 2);
    const feeds = { x: { data: new Float32Array(input), dims: [2, ...CLS_ITEM], type: 'float32' as const } };
    const reference = await referenceSession(CLS_MODEL);
    const expected = (await reference.run({ x: new ort.Tensor('float32', input, [2, ...CLS_ITEM]) }))[reference.outputNames[0]!]!;
    for (let run = 0; run < 3; run++) {
      const { outputs } = await backend.runTimed(feeds);
      expect(feeds.x.data.length).toBe(input.length);
      expect(sameBits(feeds.x.data, input)).toBe(true);
      expect(sameBits(outputs[reference.outputNames[0]!]!.data as Float32Array, expected.data as Float32Array)).toBe(true);
    }
  });

  it("counts the workers' time inside run(): the sum of what each run reported, less than the runs' wall time", async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 1 });
    backends.push(backend);
    expect(backend.stats().sessionRunMs).toBe(0);
    const feeds = (seed: number) => ({ x: { data: clsInput(seed, 2), dims: [2, ...CLS_ITEM], type: 'float32' as const } });
    let reported = 0;
    const started = performance.now();
    for (let k = 0; k < 3; k++) {
      // Two at once, one on each worker.
      const runs = await Promise.all([backend.runTimed(feeds(2 * k)), backend.runTimed(feeds(2 * k + 1))]);
      for (const r of runs) reported += r.computeMs;
    }
    const wall = performance.now() - started;
    const { runs, sessionRunMs } = backend.stats();
    expect(runs).toBe(6);
    expect(sessionRunMs).toBeGreaterThan(0);
    expect(sessionRunMs).toBeCloseTo(reported, 6);
    // Two workers: at most twice the wall time, however the runs overlapped.
    expect(sessionRunMs).toBeLessThan(2 * wall);
  });

  it.runIf(process.platform === 'linux')("gives a run's CPU time on the worker's thread where asked, by message, and none otherwise", async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 1 });
    backends.push(backend);
    const feeds = (seed: number) => ({ x: { data: clsInput(seed, 4), dims: [4, ...CLS_ITEM], type: 'float32' as const } });
    await backend.runTimed(feeds(0));
    const plain = await backend.runTimed(feeds(1));
    expect(plain.cpuMs).toBeUndefined();
    const runsBefore = backend.stats().mailboxRuns;
    for (let k = 2; k < 6; k++) {
      const r = await backend.runTimed(feeds(k), { cpuTime: true });
      // One thread: its CPU time inside run() is at most the run's wall time, and most of it on a quiet machine.
      expect(r.cpuMs).toBeGreaterThan(0);
      expect(r.cpuMs!).toBeLessThanOrEqual(r.computeMs + 0.05);
    }
    // Runs asking for it go by message, where the worker reads its clock around run().
    expect(backend.stats().mailboxRuns).toBe(runsBefore);
  });

  it('reuses the memory of a large result once released, for a later result; never without release', async () => {
    // The recognizer at width 64: 8 x 6625 floats, 212 KB a row, over the 64 KiB the worker copies.
    const backend = await OnnxruntimeBackend.create(REC_MODEL, { instances: 1, threadsPerInstance: 1 });
    backends.push(backend);
    const reference = await referenceSession(REC_MODEL);
    const name = reference.outputNames[0]!;
    const dims = [1, 3, 48, 64];
    const inputs = [1, 2, 3].map((seed) => clsInput(seed, 2).slice(0, 3 * 48 * 64));
    const want = await Promise.all(inputs.map(async (x) => (await reference.run({ x: new ort.Tensor('float32', x, dims) }))[name]!.data as Float32Array));
    const run = async (k: number): Promise<Float32Array> =>
      (await backend.runTimed({ x: { data: new Float32Array(inputs[k]!), dims, type: 'float32' } })).outputs[name]!.data as Float32Array;

    const kept = await run(0);
    const second = await run(1);
    // Not released: the next runs leave both results alone.
    await run(2);
    expect(sameBits(kept, want[0]!)).toBe(true);
    expect(sameBits(second, want[1]!)).toBe(true);
    // Released: its memory goes to the worker as a spare (detached here) and holds the next result.
    backend.release({ [name]: { data: second, dims: [1, 8, 6625] } });
    const third = await run(2);
    expect(second.buffer.byteLength).toBe(0);
    expect(sameBits(third, want[2]!)).toBe(true);
    expect(sameBits(kept, want[0]!)).toBe(true);
    await reference.release();
  });

  it('keeps spares of the current result size only: a new input shape lets the old size go', async () => {
    const backend = await OnnxruntimeBackend.create(REC_MODEL, { instances: 1, threadsPerInstance: 1 });
    backends.push(backend);
    const name = backend.outputs[0]!.name;
    const spareSizes = (): number[] => [...(backend as unknown as { spares: { free: Map<number, ArrayBuffer[]> } }).spares.free.entries()]
      .filter(([, list]) => list.length > 0).map(([size]) => size);
    const run = async (width: number): Promise<TensorLike> => {
      const dims = [1, 3, 48, width];
      return (await backend.runTimed({ x: { data: clsInput(width, 2).slice(0, 3 * 48 * width), dims, type: 'float32' } })).outputs[name]!;
    };
    // Width 64: 8 × 6625 floats (212 000 bytes); width 96: 12 × 6625 (318 000 bytes). Back at
    // 64, the larger spare holds the smaller result, so its size stays.
    const steps: [number, number][] = [[64, 212_000], [64, 212_000], [96, 318_000], [96, 318_000], [64, 318_000]];
    for (const [width, spare] of steps) {
      const out = await run(width);
      expect(out.dims).toEqual([1, width / 8, 6625]);
      backend.release({ [name]: out });
      expect(spareSizes()).toEqual([spare]);
    }
  });

  it('keeps the process alive while a run is in flight, and lets it end when idle without dispose()', () => {
    const [r] = runScript([
      `import { Engine } from ${srcUrl('src/engine/engine.ts')};`,
      `const engine = await Engine.build(${JSON.stringify(CLS_MODEL)}, { instances: 2, threadsPerInstance: 1 });`,
      // Not awaited: only the in-flight run can keep the process alive until the result prints.
      `engine.infer({ x: { data: new Float32Array(${CLS_ITEM.join(' * ')}), dims: [1, ${CLS_ITEM.join(', ')}] } }).then((r) => console.log('result', Object.keys(r).join()));`,
    ], (script) => [['--import', 'tsx', script]]);
    expect({ status: r!.status, signal: r!.signal, stderr: lastLines(r!.stderr) }).toMatchObject({ status: 0, signal: null });
    expect(r!.stdout).toContain('result softmax_0.tmp_0');
  });

  it.runIf(process.platform === 'linux')('runs its threads at background priority by default, and not with backgroundThreads: false', async () => {
    const before = threadNices();
    const background = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 2 });
    backends.push(background);
    expect(background.threadPolicy).toBe(BACKGROUND_POLICY);
    await background.runTimed({ x: { data: clsInput(1), dims: [1, ...CLS_ITEM], type: 'float32' } });
    const added = [...threadNices()].filter(([tid]) => !before.has(tid));
    // Each worker thread and ORT's intra-op thread it created (inherited), nothing else.
    const idle = added.filter(([, policy]) => policy === BACKGROUND_NICE);
    expect(idle.length).toBeGreaterThanOrEqual(4);
    // The kernel's own account of their slice, where it gives one: each has the background
    // slice, which the JS thread's default is shorter than.
    const slices = idle.map(([tid]) => threadSliceNs(tid)).filter((ns) => ns !== undefined);
    if (KERNEL_TAKES_SLICES && slices.length > 0) {
      expect(slices).toEqual(idle.map(() => 20_000_000));
      expect(threadSliceNs(Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]))).toBeLessThan(20_000_000);
    }
    // The threads that were there before (the JS thread among them) keep their policy.
    const now = threadNices();
    for (const [tid, policy] of before) if (now.has(tid)) expect(now.get(tid)).toBe(policy);

    const mark = threadNices();
    const normal = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 2, backgroundThreads: false });
    backends.push(normal);
    expect(normal.threadPolicy).toMatch(/^normal \(backgroundThreads: false\)/);
    const addedNormal = [...threadNices()].filter(([tid]) => !mark.has(tid));
    expect(addedNormal.length).toBeGreaterThan(0);
    expect(addedNormal.every(([, policy]) => policy !== BACKGROUND_NICE)).toBe(true);
  });
});
