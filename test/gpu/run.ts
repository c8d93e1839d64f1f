/**
 * The GPU check's measurements (run by scripts/test-gpu.sh on a lent GPU; not
 * part of `npm test`). The run path is the real one - the addon, the
 * TensorRT backend, instances, streams, pinned buffers, the thread-safe
 * completion - with a loopback kernel standing in for the engine where the
 * TensorRT SDK is absent (native/gpu_check/loopback_provider.cu).
 *
 *   node gpu-run.mjs --bandwidth <bare.json> --out <dir> [--driver <text>] [--calls N]
 *                    [--extra-rows <trt-rows.json> | --tensorrt-skipped <why>] [--dry-run]
 *   node gpu-run.mjs --tensorrt <mnist dir> --out <dir>     (the TensorRT part alone, with the real SDK:
 *                    a separate process, since the loader decides once per process)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTensorrtBackend, tensorrtAvailability, type TensorrtBackend, type TensorrtBackendOptions } from '../../src/backends/tensorrt/index.js';
import { Engine } from '../../src/engine/engine.js';
import { addonState } from '../../src/native/index.js';
import { CHECKS, type GpuResults, type Row, failed, formatTable } from './table.js';

const args = parseArgs({
  options: {
    bandwidth: { type: 'string' },
    out: { type: 'string', default: '.' },
    driver: { type: 'string', default: '' },
    calls: { type: 'string', default: '100000' },
    tensorrt: { type: 'string' },
    'extra-rows': { type: 'string' },
    'tensorrt-skipped': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    'exit-child': { type: 'boolean', default: false },
  },
}).values;

const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const row = (check: string, result: string, status = 'info'): void => {
  rows.push({ check, result, status });
  console.error(`[gpu] ${check}: ${result} (${status})`);
};

const plan = (o: { in: number; out: number; batch?: number; work?: number }): Uint8Array =>
  new TextEncoder().encode(`tnp-loopback in=${o.in} out=${o.out} batch=${o.batch ?? 0} work=${o.work ?? 0}`);

async function loopback(o: { in: number; out: number; batch?: number; work?: number }, options: TensorrtBackendOptions = {}): Promise<TensorrtBackend> {
  // The stand-in provider's "build" passes the plan text through: this runs the build path too.
  return createTensorrtBackend(plan(o), options);
}

const now = (): number => performance.now();

/** Median seconds of `repeats` timings of fn(). */
async function median(repeats: number, fn: () => Promise<void>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const a = now();
    await fn();
    t.push((now() - a) / 1000);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/** `total` calls of one(), `inFlight` at a time; returns seconds. */
async function drive(total: number, inFlight: number, one: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const a = now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await one(next++);
    }),
  );
  return (now() - a) / 1000;
}

function randomFill(f: Float32Array): void {
  for (let i = 0; i < f.length; i++) f[i] = Math.fround((Math.random() - 0.5) * 1000);
}

function expectLoopback(x: Float32Array, y: Float32Array, what: string): void {
  for (let i = 0; i < y.length; i++) {
    const want = Math.fround(x[i % x.length]! * 2 + 1);
    if (y[i] !== want) throw new Error(`${what}: y[${i}] = ${y[i]}, expected ${want}`);
  }
}

/** What native/gpu_check/bandwidth.cu prints: bare CUDA, the floor under the addon's figures. */
interface BareProbe {
  bytes: number;
  h2dGBs: number;
  d2hGBs: number;
  rtSyncUs: number;
  rtHostFuncUs: number;
  rtEventThreadUs: number;
  rtBlockingEventThreadUs: number;
  /** The same copies one at a time, each waited for (how the addon's calls run). */
  h2dSeqGBs: number;
  d2hSeqGBs: number;
}

async function bandwidth(bare: BareProbe): Promise<void> {
  const elems = bare.bytes / 4;
  const copies = 20;
  /** GB/s of `copies` calls one after another (median of 5), and the zero-copy inputs among them. */
  const timed = async (dir: 'H2D' | 'D2H', spinWaitUs?: number): Promise<{ gbs: number; zeroCopy: number }> => {
    const b = await loopback(dir === 'H2D' ? { in: elems, out: 1 } : { in: 1, out: elems }, spinWaitUs === undefined ? {} : { spinWaitUs });
    try {
      const io = b.allocate();
      const x = new Float32Array(io.inputs.x!.buffer, io.inputs.x!.byteOffset, dir === 'H2D' ? elems : 1);
      randomFill(x);
      const feeds = { x: { data: x, dims: [1, x.length] } };
      const outputs = { y: io.outputs.y! };
      await b.run(feeds, outputs); // warm-up
      const zeroCopyBefore = b.stats().zeroCopyInputs ?? 0;
      const s = await median(5, async () => {
        for (let i = 0; i < copies; i++) await b.run(feeds, outputs);
      });
      return { gbs: (bare.bytes * copies) / s / 1e9, zeroCopy: (b.stats().zeroCopyInputs ?? 0) - zeroCopyBefore };
    } finally {
      await b.dispose();
    }
  };
  for (const dir of ['H2D', 'D2H'] as const) {
    const { gbs, zeroCopy } = await timed(dir);
    // A copy (1.2 ms) outlasts the default polling (200 us), so its completion is waited for
    // asleep; polling through it tells whether waking costs the gap to the bare copies.
    const polled = await timed(dir, 5000);
    const ref = dir === 'H2D' ? bare.h2dGBs : bare.d2hGBs;
    const seq = dir === 'H2D' ? bare.h2dSeqGBs : bare.d2hSeqGBs;
    raw[`addon${dir}GBs`] = gbs;
    raw[`addon${dir}PolledGBs`] = polled.gbs;
    row(
      CHECKS[dir === 'H2D' ? 1 : 2],
      `${gbs.toFixed(1)} vs ${ref.toFixed(1)} GB/s (${((gbs / ref) * 100).toFixed(0)}%; polling through the copy ${polled.gbs.toFixed(1)}; bare one at a time ${seq.toFixed(1)}; ${bare.bytes >> 20} MiB per call, 1 in flight, zero-copy inputs ${zeroCopy} of ${5 * copies})`,
      gbs >= 0.8 * ref ? 'ok' : 'FAIL',
    );
  }
}

async function overlap(): Promise<void> {
  const elems = 4 << 20; // 16 MiB each way
  const x = new Float32Array(elems);
  randomFill(x);
  const feeds = { x: { data: x, dims: [1, elems] } };
  const result: Record<string, number> = {};
  for (const work of [0, 2500]) {
    for (const instances of [1, 2]) {
      const b = await loopback({ in: elems, out: elems, work }, { instances });
      const bufs = Array.from({ length: 8 }, () => b.allocate());
      bufs.forEach((io) => new Float32Array(io.inputs.x!.buffer, io.inputs.x!.byteOffset, elems).set(x));
      const run = (i: number): Promise<void> => {
        const io = bufs[i % bufs.length]!;
        return b.run({ x: { data: io.inputs.x!, dims: [1, elems] } }, { y: io.outputs.y! }).then(() => undefined);
      };
      await drive(8, 8, run);
      const s = await drive(64, 8, run);
      result[`work${work}_inst${instances}`] = 64 / s;
      await b.dispose();
    }
  }
  void feeds;
  raw.overlapCallsPerS = result;
  const gain = result.work2500_inst2! / result.work2500_inst1!;
  row(
    CHECKS[3],
    `${result.work2500_inst1!.toFixed(0)} -> ${result.work2500_inst2!.toFixed(0)} calls/s (x${gain.toFixed(2)}); copies only: ${result.work0_inst1!.toFixed(0)} -> ${result.work0_inst2!.toFixed(0)}`,
    gain > 1.1 ? 'ok' : 'FAIL',
  );
}

async function latency(calls: number, bare: BareProbe): Promise<void> {
  const b = await loopback({ in: 1024, out: 1024, batch: 64 }, { instances: 4 });
  const x = new Float32Array(1024);
  randomFill(x);
  const feeds = { x: { data: x, dims: [1, 1024] } };
  const r = await b.run(feeds);
  expectLoopback(x, r.y!.data as Float32Array, 'latency warm-up');
  const n1 = Math.min(calls, 20000);
  const s1 = await drive(n1, 1, async () => {
    await b.run(feeds);
  });
  const s64 = await drive(calls, 64, async () => {
    await b.run(feeds);
  });
  raw.usPerCall1 = (s1 / n1) * 1e6;
  raw.usPerCall64 = (s64 / calls) * 1e6;
  row(
    CHECKS[4],
    `${((s1 / n1) * 1e6).toFixed(1)} us/call (${n1} calls, staged 4 KiB in and out, 4 instances); bare CUDA round trip ${bare.rtSyncUs.toFixed(1)} us by stream sync, ${bare.rtHostFuncUs.toFixed(1)} us by host function, ${bare.rtEventThreadUs.toFixed(1)} / ${bare.rtBlockingEventThreadUs.toFixed(1)} us by an event thread (spin / blocking)`,
    'info',
  );
  row(CHECKS[5], `${((s64 / calls) * 1e6).toFixed(2)} us/call, ${(calls / s64).toFixed(0)} calls/s (${calls} calls)`, 'info');
  await b.dispose();
}

/**
 * The completion thread: polling the event first (the default, 200 us) against blocking on
 * it at once, on a kernel made slow enough (work=20000, tens of us) that a thread woken
 * for the run still finds it unfinished.
 */
async function completion(): Promise<void> {
  const x = new Float32Array(1024);
  randomFill(x);
  const feeds = { x: { data: x, dims: [1, 1024] } };
  const parts: string[] = [];
  const result: Record<string, { us: number; spun: number; blocked: number }> = {};
  const n = 5000;
  for (const spin of [undefined, 0]) {
    const b = await loopback({ in: 1024, out: 1024, work: 20000 }, spin === undefined ? {} : { spinWaitUs: spin });
    expectLoopback(x, (await b.run(feeds)).y!.data as Float32Array, 'completion warm-up');
    const before = b.stats();
    const s = await drive(n, 1, async () => {
      const r = await b.run(feeds);
      if ((r.y!.data as Float32Array)[5] !== Math.fround(x[5]! * 2 + 1)) throw new Error('completion: wrong output');
    });
    const after = b.stats();
    const spun = (after.completionsSpun ?? 0) - (before.completionsSpun ?? 0);
    const blocked = (after.completionsBlocked ?? 0) - (before.completionsBlocked ?? 0);
    const name = spin === undefined ? 'poll 200 us' : 'block at once';
    result[name] = { us: (s / n) * 1e6, spun, blocked };
    parts.push(`${name}: ${((s / n) * 1e6).toFixed(1)} us/call (polled ${spun}, blocked ${blocked})`);
    await b.dispose();
  }
  raw.completion = result;
  const polled = result['poll 200 us']!, block = result['block at once']!;
  const counted = polled.spun + polled.blocked === n && block.spun + block.blocked === n;
  row(CHECKS[13], parts.join('; '), counted && polled.spun > polled.blocked && block.blocked > block.spun ? 'ok' : 'FAIL');
}

async function graphs(): Promise<void> {
  const x = new Float32Array(1024);
  randomFill(x);
  const feeds = { x: { data: x, dims: [1, 1024] } };
  const t: Record<string, number> = {};
  let stats: Record<string, number> = {};
  for (const cudaGraphs of [false, true]) {
    const b = await loopback({ in: 1024, out: 1024 }, { cudaGraphs });
    const r = await b.run(feeds);
    expectLoopback(x, r.y!.data as Float32Array, 'graphs warm-up');
    const r2 = await b.run(feeds);
    expectLoopback(x, r2.y!.data as Float32Array, 'graph replay');
    const s = await drive(5000, 1, async () => {
      await b.run(feeds);
    });
    t[String(cudaGraphs)] = (s / 5000) * 1e6;
    if (cudaGraphs) stats = b.stats();
    await b.dispose();
  }
  raw.graphs = { usPlain: t.false, usGraph: t.true, stats };
  row(CHECKS[6], `plain ${t.false!.toFixed(1)} us, graph ${t.true!.toFixed(1)} us; launches ${stats.graphLaunches}, fallbacks ${stats.graphFallbacks}`, (stats.graphLaunches ?? 0) > 0 ? 'ok' : 'FAIL');
}

async function zeroCopy(): Promise<void> {
  const b = await loopback({ in: 4096, out: 4096, batch: 8 }, { instances: 2 });
  const io = b.allocate();
  const x = new Float32Array(io.inputs.x!.buffer, io.inputs.x!.byteOffset, 3 * 4096);
  randomFill(x);
  const before = b.stats();
  const r = await b.run({ x: { data: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dims: [3, 4096] } }, { y: io.outputs.y! });
  const after = b.stats();
  const y = r.y!.data as Float32Array;
  expectLoopback(x, y, 'zero-copy');
  const sameMemory = y.buffer === io.outputs.y!.buffer;
  const zc = (after.zeroCopyInputs ?? 0) - (before.zeroCopyInputs ?? 0);
  const staged = (after.stagedInputs ?? 0) - (before.stagedInputs ?? 0);
  row(CHECKS[7], `batch 3 x 4096 exact (2x+1); output in the given Buffer: ${sameMemory}; zero-copy inputs ${zc}, staged ${staged}`, sameMemory && zc === 1 && staged === 0 ? 'ok' : 'FAIL');
  const plain = new Float32Array(2 * 4096);
  randomFill(plain);
  // A plain (pageable) output buffer: the device writes a pinned block, copied into it on the JS thread.
  const plainOut = new Float32Array(2 * 4096);
  const r2 = await b.run({ x: { data: plain, dims: [2, 4096] } }, { y: new Uint8Array(plainOut.buffer) });
  expectLoopback(plain, r2.y!.data as Float32Array, 'staged');
  expectLoopback(plain, plainOut, 'staged output');
  const s2 = b.stats();
  const stagedIn = (s2.stagedInputs ?? 0) - (after.stagedInputs ?? 0);
  row(CHECKS[8], `batch 2 x 4096 exact, into the given plain output buffer; staged inputs +${stagedIn}`, stagedIn === 1 ? 'ok' : 'FAIL');
  await b.dispose();
}

/**
 * Memory over 2 x `calls` calls in four segments, settled after each: a leak grows
 * with the calls, a heap that sizes itself once does not. The verdict is the growth
 * over the second half (`calls` calls), in bytes a call.
 */
async function leak(calls: number): Promise<void> {
  const b = await loopback({ in: 256, out: 256, batch: 64 }, { instances: 4 });
  const x = new Float32Array(256);
  randomFill(x);
  const feeds = { x: { data: x, dims: [1, 256] } };
  const gc = (globalThis as { gc?: () => void }).gc;
  // Earlier steps leave pinned buffers for the collector; their finalizers run after gc(), so settle first.
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const segment = Math.max(1, Math.floor(calls / 2));
  const points: { calls: number; rss: number; heapUsed: number; external: number; device: number }[] = [];
  const mark = async (done: number): Promise<void> => {
    await settle();
    const m = process.memoryUsage();
    points.push({ calls: done, rss: m.rss, heapUsed: m.heapUsed, external: m.external, device: b.stats().deviceMemoryUsed ?? 0 });
  };
  await drive(Math.min(10000, segment), 64, async () => {
    await b.run(feeds);
  });
  await mark(0);
  for (let k = 1; k <= 4; k++) {
    await drive(segment, 64, async () => {
      await b.run(feeds);
    });
    await mark(k * segment);
  }
  raw.leak = { segment, points };
  const mib = (v: number): string => (v / 2 ** 20).toFixed(0);
  const [p0, , p2, , p4] = points as [typeof points[0], unknown, typeof points[0], unknown, typeof points[0]];
  const perCall = (p4.rss - p2.rss) / (p4.calls - p2.calls);
  const devMb = (p4.device - p0.device) / 2 ** 20;
  row(
    CHECKS[9],
    `RSS ${points.map((p) => mib(p.rss)).join(' -> ')} MiB every ${segment} calls (second half ${perCall >= 0 ? '+' : ''}${perCall.toFixed(1)} B/call; heap ${mib(p0.heapUsed)} -> ${mib(p4.heapUsed)}, external ${mib(p0.external)} -> ${mib(p4.external)} MiB), device ${devMb >= 0 ? '+' : ''}${devMb.toFixed(1)} MiB`,
    perCall < 64 && devMb < 1 ? 'ok' : 'FAIL', // growth is the leak; memory given back is not
  );
  await b.dispose();
}

/**
 * The whole product path over the GPU: Engine.build with backend 'tensorrt' (the stand-in's
 * "plan" in place of an ONNX model), then Engine.infer - input checks, the dynamic batcher,
 * the split of each batch's outputs - to set beside the backend's own run() (the infer path
 * rows). Every result of the concurrent part is checked row by row (each request its own data).
 */
async function engineOverGpu(calls: number): Promise<void> {
  const width = 1024;
  const engine = await Engine.build(plan({ in: width, out: width, batch: 64 }), { backend: 'tensorrt', instances: 4 });
  try {
    const x = new Float32Array(width);
    randomFill(x);
    expectLoopback(x, (await engine.infer(x)).y!.data as Float32Array, 'engine warm-up');
    const n1 = Math.min(calls, 20000);
    const s1 = await drive(n1, 1, async () => {
      await engine.infer(x);
    });
    const rows = Array.from({ length: 256 }, () => {
      const r = new Float32Array(width);
      randomFill(r);
      return r;
    });
    const before = engine.stats();
    const s64 = await drive(calls, 64, async (i) => {
      const r = rows[i % rows.length]!;
      const y = (await engine.infer(r)).y!;
      if (y.dims[0] !== 1) throw new Error(`request ${i}: dims [${y.dims.join(',')}], expected [1,${width}]`);
      expectLoopback(r, y.data as Float32Array, `engine request ${i}`);
    });
    const after = engine.stats();
    const batches = after.batches - before.batches;
    const usPerCall1 = (s1 / n1) * 1e6;
    const meanBatch = calls / batches;
    raw.engine = { usPerCall1, usPerCall64: (s64 / calls) * 1e6, batches, meanBatch, backend: engine.backend, batching: after.batching };
    row(CHECKS[10], `${usPerCall1.toFixed(1)} us/call (${n1} calls, 4 KiB in and out)`, 'info');
    row(CHECKS[11], `${(calls / s64).toFixed(0)} req/s, ${calls} requests in ${batches} batches (mean ${meanBatch.toFixed(1)} rows); every row checked`, 'ok');
  } finally {
    await engine.dispose();
  }
}

/** Engine.build passes TensorRT's cudaGraphs and spinWaitUs through (a static plan, so graphs apply). */
async function engineOptions(): Promise<void> {
  const engine = await Engine.build(plan({ in: 256, out: 256 }), { backend: 'tensorrt', cudaGraphs: true, spinWaitUs: 0 });
  try {
    const x = new Float32Array(256);
    for (let i = 0; i < 1000; i++) {
      randomFill(x);
      expectLoopback(x, (await engine.infer(x)).y!.data as Float32Array, `engine with graphs, request ${i}`);
    }
    // The backend's own counters, through the Engine's stats: graph replays, and completions.
    const s = engine.stats().backendCounters ?? {};
    const ok = (s.graphLaunches ?? 0) >= 999 && (s.completionsSpun ?? 0) + (s.completionsBlocked ?? 0) >= 1000;
    row(CHECKS[14], `1000 requests exact; graph launches ${s.graphLaunches}, completions polled ${s.completionsSpun}, blocked ${s.completionsBlocked}`, ok ? 'ok' : 'FAIL');
  } finally {
    await engine.dispose();
  }
}

/** The TensorRT part: MNIST FP32 and the quantizer's Q/DQ INT8 vs ONNX Runtime references made on the CPU. */
async function tensorrtPart(dir: string): Promise<void> {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { count: number; models: { name: string; file: string; ref: string; input: string; output: string }[] };
  const images = new Float32Array(readFileSync(join(dir, 'images.f32')).buffer.slice(0));
  const labels = new Uint8Array(readFileSync(join(dir, 'labels.u8')));
  const parts: string[] = [];
  let ok = true;
  for (const m of meta.models) {
    const ref = new Float32Array(readFileSync(join(dir, m.ref)).buffer.slice(0));
    const t0 = now();
    const b = await createTensorrtBackend(new Uint8Array(readFileSync(join(dir, m.file))), {});
    const buildS = (now() - t0) / 1000;
    let agree = 0, correct = 0, maxDiff = 0;
    for (let i = 0; i < meta.count; i++) {
      const x = images.subarray(i * 784, (i + 1) * 784);
      const r = await b.run({ [m.input]: { data: x, dims: [1, 1, 28, 28] } });
      const y = r[m.output]!.data as Float32Array;
      const argmax = (a: ArrayLike<number>, o = 0): number => {
        let k = 0;
        for (let j = 1; j < 10; j++) if (a[o + j]! > a[o + k]!) k = j;
        return k;
      };
      const top = argmax(y);
      if (top === argmax(ref, i * 10)) agree++;
      if (top === labels[i]) correct++;
      for (let j = 0; j < 10; j++) maxDiff = Math.max(maxDiff, Math.abs(y[j]! - ref[i * 10 + j]!));
    }
    await b.dispose();
    parts.push(`${m.name}: build ${buildS.toFixed(1)} s, top-1 ${((correct / meta.count) * 100).toFixed(2)}%, agrees with ORT ${((agree / meta.count) * 100).toFixed(2)}%, max |diff| ${maxDiff.toFixed(3)}`);
    ok = ok && agree / meta.count >= 0.99;
  }
  row(CHECKS[12], parts.join('; '), ok ? 'ok' : 'FAIL');
}

/**
 * The child of `exitInFlight`: 4 instances each running a slow kernel, 64 runs queued, and
 * process.exit(3) while they run. Teardown meets the completion threads inside CUDA calls.
 */
async function exitChild(): Promise<void> {
  const b = await loopback({ in: 1024, out: 1024, work: 200000 }, { instances: 4 });
  const x = new Float32Array(1024);
  for (let i = 0; i < 64; i++) b.run({ x: { data: x, dims: [1, 1024] } }).catch(() => undefined);
  setTimeout(() => {
    console.log(`in flight ${b.stats().inFlight}`);
    process.exit(3);
  }, 5);
}

async function exitInFlight(): Promise<void> {
  const started = now();
  const r = spawnSync(process.execPath, [process.argv[1]!, '--exit-child'], { encoding: 'utf8', timeout: 60_000 });
  const ms = now() - started;
  const inFlight = /in flight (\d+)/.exec(r.stdout)?.[1] ?? '?';
  const stderr = r.stderr.trim().split('\n').slice(-2).join(' | ');
  raw.exitInFlight = { status: r.status, signal: r.signal, inFlight, ms, stderr: r.stderr };
  row(CHECKS[15], `exit code ${r.status ?? r.signal} (asked 3) with ${inFlight} in flight, ${ms.toFixed(0)} ms${stderr ? `; stderr: ${stderr}` : ''}`, r.status === 3 && Number(inFlight) > 0 ? 'ok' : 'FAIL');
}

async function main(): Promise<void> {
  if (args['exit-child']) return exitChild();
  const calls = Number(args.calls);
  if (args['dry-run']) {
    // Exercises argument parsing, the addon load and the table on a machine without a GPU.
    const a = tensorrtAvailability();
    row(CHECKS[0], `no GPU here: ${a.code ?? 'usable'} - ${a.reason}`, 'pending');
    for (const c of CHECKS.slice(1)) row(c, 'not measured (dry run)', 'pending');
    finish({ mode: 'dry-run', rows, raw });
    return;
  }
  const state = addonState();
  if (!state.loaded) throw state.error;
  if (args.tensorrt) {
    const a = tensorrtAvailability();
    try {
      if (!a.usable) throw new Error(`${a.code}: ${a.reason}`);
      await tensorrtPart(args.tensorrt);
    } catch (e) {
      row(CHECKS[12], `threw: ${(e as Error).message}`, 'FAIL');
    }
    writeFileSync(join(args.out!, 'trt-rows.json'), JSON.stringify(rows));
    return;
  }
  const cuda = state.addon.binding.cudaInfo();
  const d = cuda.devices[0];
  const a = tensorrtAvailability();
  raw.cuda = cuda;
  raw.availability = a;
  row(CHECKS[0], d ? `${d.name} sm_${d.computeCapability.replace('.', '')}, ${(d.totalMemory / 2 ** 30).toFixed(0)} GiB; driver ${args.driver || cuda.driverVersion}; addon ${state.addon.build.variant}` : 'no device', d ? 'info' : 'FAIL');
  if (!a.usable) {
    row('backend', `not usable: ${a.code} ${a.reason}`, 'FAIL');
    finish({ mode: 'gpu', rows, raw });
    return;
  }
  const bare = JSON.parse(readFileSync(args.bandwidth!, 'utf8')) as BareProbe;
  const steps: [string, () => Promise<void>][] = [
    ['bandwidth', () => bandwidth(bare)],
    ['overlap', overlap],
    ['latency', () => latency(Math.min(calls, 100000), bare)],
    ['completion', completion],
    ['graphs', graphs],
    ['zero-copy', zeroCopy],
    ['leak', () => leak(calls)],
    ['engine', () => engineOverGpu(Math.min(calls, 100000))],
    ['engine options', engineOptions],
    ['exit in flight', exitInFlight],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (e) {
      row(name, `threw: ${(e as Error).message}`, 'FAIL');
    }
  }
  if (args['extra-rows']) {
    rows.push(...(JSON.parse(readFileSync(args['extra-rows'], 'utf8')) as Row[]));
  } else {
    row(CHECKS[12], `skipped: ${args['tensorrt-skipped'] ?? 'no TensorRT part was run'}`, 'skipped');
  }
  finish({ mode: 'gpu', rows, raw });
}

function finish(r: GpuResults): void {
  writeFileSync(join(args.out!, r.mode === 'gpu' ? 'gpu-results.json' : 'gpu-dry-run.json'), JSON.stringify(r, null, 2));
  console.log(formatTable(r));
  if (failed(r)) process.exitCode = 1;
}

await main();
