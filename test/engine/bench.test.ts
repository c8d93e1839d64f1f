/** The main job end to end on a short run: real model, real renderer, all three outputs. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { itemShape, runBench, type BenchResults } from '../../src/bench/run.js';
import { arrivalTimes, idleLoop, median, openLoop, poolRounds, type ClosedLoopResult } from '../../src/bench/load.js';
import { percentiles } from '../../src/engine/stats.js';
import { executiveSummary, writeReports } from '../../src/bench/report.js';
import { renderTextLines, CLS_SAMPLE } from '../../src/bench/text-lines.js';
import { startBareWorker } from '../../src/bench/bare-worker.js';
import { paddleClsModelPath } from '../../src/bench/models.js';

const out = mkdtempSync(join(tmpdir(), 'trtn-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench', () => {
  it("takes a custom model's dynamic dims from --shape, and says so where none is given", () => {
    expect(itemShape('x', [-1, 3, 48, 192], undefined)).toEqual([1, 3, 48, 192]);
    const det = ['N', 3, 'H', 'W'];
    expect(() => itemShape('x', det, undefined)).toThrow(/input 'x' has dynamic axes beyond the batch.*--shape 3,224,224/);
    expect(itemShape('x', det, [3, 480, 640])).toEqual([1, 3, 480, 640]);
    expect(() => itemShape('x', det, [1, 480, 640])).toThrow(/--shape 1,480,640 does not fit input 'x'/);
    expect(() => itemShape('x', det, [3, 480])).toThrow(/give the 3 dims after the batch/);
  });

  it('refuses a --shape the default classifier would ignore (it ran the whole bench at 3,48,192)', async () => {
    const options = { concurrency: [1], seconds: 0.3, burstSeconds: 0.1, int8: false, calibrationSamples: 10, evalSamples: 64, backend: 'onnxruntime' as const, log: () => {} };
    await expect(runBench({ ...options, itemShape: [1, 2] })).rejects.toThrow(/runs on text lines of 3,48,192; --shape 1,2 is for a model you give/);
  });

  it('takes the median of rounds: the middle one, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    // Two rounds: neither the upper nor the lower one alone.
    expect(median([53, 36])).toBe(44.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('pools rounds: counts and time summed, percentiles over all latencies, the longest stall, utilization by time', () => {
    const a = [1, 2, 3, 4];
    const b = [10, 20];
    const round = (lat: number[], seconds: number, stallMaxMs: number, eventLoopUtilization: number): ClosedLoopResult => ({
      concurrency: 4, requests: lat.length, seconds, throughput: lat.length / seconds, latencyMs: percentiles(lat), stallMaxMs, eventLoopUtilization, errors: 1,
    });
    const pooled = poolRounds([round(a, 1, 2.5, 0.2), round(b, 3, 7, 0.6)], [...a, ...b]);
    expect(pooled).toMatchObject({ concurrency: 4, requests: 6, seconds: 4, throughput: 1.5, stallMaxMs: 7, errors: 2 });
    expect(pooled.eventLoopUtilization).toBeCloseTo((0.2 * 1 + 0.6 * 3) / 4, 12);
    // Not the mean of the rounds' percentiles: the pooled p99 is the slow round's.
    expect(pooled.latencyMs.p99).toBe(percentiles([1, 2, 3, 4, 10, 20]).p99);
    expect(pooled.latencyMs.p50).toBe(percentiles([1, 2, 3, 4, 10, 20]).p50);
    expect(() => poolRounds([], [])).toThrow(RangeError);
    // The JS thread's CPU a request, weighted by each round's requests; absent where a round lacks it.
    const withCpu = poolRounds([{ ...round(a, 1, 2.5, 0.2), jsThreadCpuUs: 10 }, { ...round(b, 3, 7, 0.6), jsThreadCpuUs: 40 }], [...a, ...b]);
    expect(withCpu.jsThreadCpuUs).toBeCloseTo((10 * 4 + 40 * 2) / 6, 12);
    expect(poolRounds([{ ...round(a, 1, 2.5, 0.2), jsThreadCpuUs: 10 }, round(b, 3, 7, 0.6)], [...a, ...b]).jsThreadCpuUs).toBeUndefined();
  });

  it("reads the idle loop's longest stall: a 30 ms synchronous hold inside the window shows", async () => {
    setTimeout(() => {
      const until = performance.now() + 30;
      while (performance.now() < until);
    }, 50);
    const held = await idleLoop(0.2);
    // Beyond the 1 ms timer period: the hold less at most that period and the timer's slack.
    expect(held).toBeGreaterThanOrEqual(28);
    // Each window reads its own stalls: the next, without a hold, does not carry this one.
    expect(await idleLoop(0.05)).toBeLessThan(held);
  });

  it('runs a bare worker hop on the model it is given, and rejects what its session rejects', async () => {
    const model = await readFile(paddleClsModelPath());
    const bare = await startBareWorker(model, 'x', { intraOpNumThreads: 1 });
    try {
      await expect(bare.infer(new Float32Array(3 * 48 * 192), [1, 3, 48, 192])).resolves.toBeUndefined();
      await expect(bare.infer(new Float32Array(3 * 48 * 100), [1, 3, 48, 100])).resolves.toBeUndefined();
      await expect(bare.infer(new Float32Array(5), [1, 5])).rejects.toThrow(/bare worker: .*(rank|dimension|Invalid)/i);
    } finally {
      await bare.close();
    }
  });

  it('schedules arrivals evenly, or as a seeded Poisson process', () => {
    const even = arrivalTimes(200, 1, 'constant');
    expect(even).toHaveLength(200);
    expect(even.slice(0, 3)).toEqual([0, 5, 10]);
    const a = arrivalTimes(1000, 20, 'poisson', 7);
    expect(arrivalTimes(1000, 20, 'poisson', 7)).toEqual(a);
    expect(arrivalTimes(1000, 20, 'poisson', 8)).not.toEqual(a);
    // A Poisson count of mean 20 000 lies within 5 standard deviations (141); exponential
    // gaps have a mean of 1/rate and a coefficient of variation of 1.
    expect(Math.abs(a.length - 20_000)).toBeLessThan(5 * 141);
    const gaps = a.slice(1).map((t, i) => t - a[i]!);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((x, g) => x + (g - mean) ** 2, 0) / gaps.length);
    expect(mean).toBeCloseTo(1, 1);
    expect(sd / mean).toBeGreaterThan(0.95);
    expect(sd / mean).toBeLessThan(1.05);
    expect(a.every((t, i) => t >= 0 && t < 20_000 && (i === 0 || t >= a[i - 1]!))).toBe(true);
    expect(() => arrivalTimes(0, 1, 'poisson')).toThrow(RangeError);
  });

  it('sends on schedule whatever is outstanding, and charges a held event loop to the arrivals it delayed', async () => {
    let calls = 0;
    const open = await openLoop(
      async () => {
        // The 20th request holds the event loop for 40 ms, as a synchronous run() does.
        if (++calls === 20) {
          const until = performance.now() + 40;
          while (performance.now() < until);
        }
        await new Promise((r) => setTimeout(r, 2));
      },
      1,
      500,
      0.4,
      { distribution: 'constant', warmupSeconds: 0 },
    );
    expect(open.requests).toBe(200);
    expect(open.latencyMs.samples).toBe(200);
    expect(open.unfinished).toBe(0);
    expect(open.errors).toBe(0);
    // The request that held the loop and the ~20 that arrived meanwhile (one each 2 ms)
    // count from their arrival: the slowest took the hold and more.
    expect(open.latencyMs.max).toBeGreaterThanOrEqual(40);
    // The arrivals during the hold were sent when it ended: their send delay is part of the latency.
    expect(open.sendDelayMs.samples).toBe(200);
    expect(open.sendDelayMs.max).toBeGreaterThanOrEqual(30);
    expect(open.sendDelayMs.max).toBeLessThanOrEqual(open.latencyMs.max);
    expect(open.latencyMs.p90).toBeGreaterThanOrEqual(open.latencyMs.p50);
    // Requests waiting 2 ms each, sent at arrival: several in flight at once.
    expect(open.maxInFlight).toBeGreaterThan(1);
    expect(open.stallMaxMs).toBeGreaterThanOrEqual(30);
  });

  it('counts failed requests as errors and ones still running after the drain as unfinished', async () => {
    let calls = 0;
    const open = await openLoop(
      () => (++calls % 2 ? Promise.reject(new Error('refused')) : calls === 4 ? new Promise<void>(() => undefined) : Promise.resolve()),
      1,
      100,
      0.2,
      { distribution: 'constant', warmupSeconds: 0, drainSeconds: 0.1 },
    );
    expect(open.requests).toBe(20);
    expect(open.errors).toBe(10);
    expect(open.unfinished).toBe(1);
    expect(open.latencyMs.samples).toBe(9);
  });

  it('renders the same lines for the same seed, different ones for another, half turned', () => {
    const a = renderTextLines(20, 7);
    const b = renderTextLines(20, 7);
    const c = renderTextLines(20, 8);
    expect(a.map((l) => l.text)).toEqual(b.map((l) => l.text));
    expect(a[0]!.data).toEqual(b[0]!.data);
    expect(a.map((l) => l.text)).not.toEqual(c.map((l) => l.text));
    expect(a[0]!.data.length).toBe(CLS_SAMPLE);
    const turned = renderTextLines(200, 1).filter((l) => l.label === 1).length;
    expect(turned).toBeGreaterThan(60);
    expect(turned).toBeLessThan(140);
  });

  it('runs FP32 against the peer and writes Markdown, JSON and perf_analyzer CSV', async () => {
    const lines: string[] = [];
    const r: BenchResults = await runBench({
      concurrency: [1, 4], seconds: 0.3, burstSeconds: 0.1, int8: false, calibrationSamples: 10, evalSamples: 64,
      backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, peerThreads: 1, rates: [50], log: (l) => lines.push(l),
    });
    // The FP32 engine runs the peer's model with hard-swish rewritten: the same classes within
    // float rounding, the same bits as onnxruntime-node on the rewritten graph, and the
    // classifier reads the rendered lines.
    const v = r.accuracy!.fp32VsPeer;
    expect(r.engine.graphRewrites).toEqual({ hardSwish: 18, convAffine: 0 });
    expect(v.sameClass).toBe(v.checked);
    expect(v.maxAbsDiff).toBeLessThan(1e-5);
    expect(v.bitExactOnEngineGraph).toBe(v.checked);
    expect(r.accuracy!.fp32).toBeGreaterThan(0.9);
    expect(r.levels.map((l) => `${l.contender}@${l.concurrency}`)).toEqual([
      'engine-fp32@1', 'onnxruntime-node@1', 'engine-fp32@4', 'onnxruntime-node@4',
    ]);
    for (const l of r.levels) {
      expect(l.requests).toBeGreaterThan(0);
      expect(l.errors).toBe(0);
      // Three rounds by default, taking turns; the level's throughput pools them.
      expect(l.roundThroughputs).toHaveLength(3);
      expect(l.throughput).toBeGreaterThanOrEqual(Math.min(...l.roundThroughputs) - 1e-9);
      expect(l.throughput).toBeLessThanOrEqual(Math.max(...l.roundThroughputs) + 1e-9);
    }
    // The engine's workers' share of its rounds inside run(); the peer has no workers.
    for (const l of r.levels) {
      if (l.contender === 'onnxruntime-node') expect(l.workersBusy).toBeUndefined();
      else {
        expect(l.workersBusy).toBeGreaterThan(0);
        expect(l.workersBusy).toBeLessThanOrEqual(1);
      }
    }
    // The JS thread's CPU a request, by that thread's CPU clock, against the wall clock: one
    // thread's CPU time cannot outrun the time that passed, and the peer, which runs the
    // model on that thread (one intra-op thread), keeps it busy most of the time. The
    // engine's JS thread only hands requests over: a fraction of the peer's a request.
    for (const l of r.levels) {
      const cpuShare = (l.jsThreadCpuUs! * l.requests) / (l.seconds * 1e6);
      expect(cpuShare).toBeGreaterThan(0);
      expect(cpuShare).toBeLessThan(1.02);
      if (l.contender === 'onnxruntime-node') expect(cpuShare).toBeGreaterThan(0.3);
    }
    for (const [e, p] of [[r.levels[0]!, r.levels[1]!], [r.levels[2]!, r.levels[3]!]] as const) {
      expect(e.jsThreadCpuUs).toBeLessThan(0.5 * p.jsThreadCpuUs!);
    }
    expect(lines.some((l) => /^engine-fp32 +c= 4 .* JS \d+ µs\/req/.test(l))).toBe(true);
    const [e4, p4] = [r.levels[2]!, r.levels[3]!];
    expect(r.summary.bestVsPeerByRound).toEqual(e4.roundThroughputs.map((t, i) => t / p4.roundThroughputs[i]!));
    expect(r.summary.targets.length).toBe(4);
    // The idle loop after each round at the top concurrency only (4 here), its largest in the stall target.
    expect(r.idleLoop.roundStallsMs).toHaveLength(3);
    expect(r.idleLoop.stallMaxMs).toBe(Math.max(...r.idleLoop.roundStallsMs));
    expect(r.summary.targets[2]!.value).toContain(`nothing in flight, in the same rounds: ${r.idleLoop.stallMaxMs.toFixed(1)} ms`);
    expect(lines.some((l) => l.startsWith('nothing in flight (after each round)'))).toBe(true);
    const files = await writeReports(r, out);
    expect(files.map((f) => f.slice(out.length + 1)).sort()).toEqual([
      'bench.json', 'bench.md', 'perf_analyzer-engine-fp32.csv', 'perf_analyzer-onnxruntime-node.csv',
    ]);
    const csv = readFileSync(join(out, 'perf_analyzer-engine-fp32.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^Concurrency,Inferences\/Second,Client Send,.*,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency$/);
    expect(csv.slice(1).map((row) => row.split(',')[0])).toEqual(['1', '4']);
    expect(JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')).model.name).toBe('ch_ppocr_mobile_v2.0_cls_infer.onnx');
    expect(readFileSync(join(out, 'bench.md'), 'utf8')).toContain('## Executive summary');
    expect(executiveSummary(r).join('\n')).toMatch(/API overhead at batch 1/);
    // The open loop: every contender at every rate, on the same arrivals.
    expect(r.openLoop!.map((l) => `${l.contender}@${l.rate}`)).toEqual(['engine-fp32@50', 'onnxruntime-node@50']);
    for (const l of r.openLoop!) {
      expect(l.distribution).toBe('poisson');
      expect(l.requests).toBe(r.openLoop![0]!.requests);
      expect(l.latencyMs.samples + l.unfinished + l.errors).toBe(l.requests);
      expect(l.errors).toBe(0);
    }
    expect(executiveSummary(r).join('\n')).toMatch(/Open loop at 50 req\/s offered \(poisson arrivals, latency from arrival\):\n  engine-fp32: /);
    expect(readFileSync(join(out, 'bench.md'), 'utf8')).toContain('## Open loop');
    // The overheads are the median round's (rounds paired: each round's contenders took turns), the hop's as the engine's.
    const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) / 2]!;
    expect(r.overhead.overheadByRound).toHaveLength(r.overhead.rounds);
    expect(r.overhead.rounds % 2).toBe(1);
    // Rounds run first while V8 compiles are dropped, and the summary says how many.
    expect(r.overhead.warmRounds).toBeGreaterThan(0);
    expect(executiveSummary(r).join('\n')).toContain(`after ${r.overhead.warmRounds} rounds not kept while V8 compiles`);
    expect(r.overhead.overhead).toBe(middle(r.overhead.overheadByRound));
    expect(r.overhead.hopP50Ms).toBeGreaterThan(0);
    expect(r.overhead.hopOverheadByRound).toHaveLength(r.overhead.rounds);
    expect(r.overhead.hopOverhead).toBe(middle(r.overhead.hopOverheadByRound!));
    expect(executiveSummary(r).join('\n')).toMatch(/= -?\d+\.\d % \(rounds: (-?\d+\.\d %, ){4}-?\d+\.\d %\)/);
    expect(executiveSummary(r).join('\n')).toMatch(/plain worker thread, one postMessage each way and nothing else: p50 \d+\.\d\d ms/);
    expect(r.engine.loneRuns).toEqual({ threads: 1, reason: 'each instance runs on its own threads' });
    expect(executiveSummary(r).join('\n')).toContain('a lone batch on 1 thread(s) (each instance runs on its own threads)');
    // An INT8 speedup on ONNX Runtime comes with why it is what it is; without INT8, nothing.
    expect(executiveSummary(r).join('\n')).not.toContain('float kernels');
    const withInt8 = executiveSummary({ ...r, summary: { ...r.summary, int8Speedup: 0.74 } }).join('\n');
    expect(withInt8).toContain("INT8 speedup over FP32 0.74× (ONNX Runtime on the CPU runs the INT8 model's numbers on float kernels: the INT8 speedup is TensorRT's)");
    // The INT8 engine probes its own maxBatchSize: the Build line gives it beside the FP32 engine's.
    const int8Build = { firstMs: 2000, cachedMs: 100, cachedFraction: 0.05, quantizedNodes: 30, keptInFloat: 0, method: 'percentile', maxBatchSize: 2, probeMsPerRow: { 1: 1.5, 2: 1.1, 4: 1.2, 8: 1.3 }, probeSource: 'cache' as const };
    expect(executiveSummary({ ...r, builds: { ...r.builds, int8: int8Build } }).join('\n')).toContain(
      "from the cache 100.00 ms (5.0 % of the first); the INT8 engine's maxBatchSize 2 (probed at its first build, ms a row: 1.50 at 1, 1.10 at 2, 1.20 at 4, 1.30 at 8)",
    );
  });
});
