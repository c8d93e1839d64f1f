/**
 * The main job (`npx tensorrt-node bench`): build FP32 and INT8 engines, measure
 * accuracy on held-out data, drive each engine and plain onnxruntime-node (one
 * run() per request, the peer) at several concurrencies, and report.
 */
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { createRequire } from 'node:module';
import type * as OrtTypes from 'onnxruntime-node';
import { Engine } from '../engine/engine.js';
import type { EngineOptions } from '../engine/options.js';
import { DEFAULT_INT8_METHOD } from '../engine/prepare.js';
import { rewriteGraph, type GraphRewrites } from '../engine/rewrite.js';
import type { LoneRuns } from '../engine/lone-runs.js';
import type { CalibrationMethod } from '../quantize/index.js';
import type { BackendChoice } from '../backends/select.js';
import { onnxruntimeVersion, workerSessionOptions } from '../backends/onnxruntime/index.js';
import { bursts, closedLoop, idleLoop, openLoop, overheadAtOne, poolRounds, type ArrivalDistribution, type BurstResult, type ClosedLoopResult, type OpenLoopResult, type OverheadResult } from './load.js';
import { renderTextLines, CLS_HEIGHT, CLS_WIDTH, type TextLine } from './text-lines.js';
import { paddleClsModelPath } from './models.js';
import { startBareWorker } from './bare-worker.js';
import { maxBatchLine } from './report.js';

export interface BenchOptions {
  /** An ONNX model; default the PaddleOCR text-direction classifier. */
  model?: string;
  /** A custom model's input dims after the batch, where the model leaves them dynamic. */
  itemShape?: number[];
  concurrency: number[];
  /** Measured seconds per contender and concurrency, over all rounds (each after a warm-up). */
  seconds: number;
  /**
   * Closed-loop rounds per concurrency (default 3): the contenders take turns, `seconds /
   * rounds` each a round, so that all of them meet the same moments of a noisy machine
   * rather than one contender a slow minute alone.
   */
  rounds?: number;
  /** Seconds of bursts per contender and concurrency, for time to first result. */
  burstSeconds: number;
  int8: boolean;
  calibrationSamples: number;
  evalSamples: number;
  /**
   * With a value (accuracy points, e.g. 1), INT8 is validated on 200 more lines and the
   * quantizer keeps the most sensitive layers in float until the drop is within it.
   * Costly (a sensitivity pass per layer); off by default: the held-out accuracy is measured anyway.
   */
  maxDropPt?: number;
  /** INT8 calibration method (default: the Engine's, 'percentile'). */
  method?: CalibrationMethod;
  backend: BackendChoice;
  instances?: number;
  threadsPerInstance?: number;
  maxBatchSize?: number;
  maxQueueDelayMs?: number;
  /** intraOpNumThreads of the peer's session (default: the core count, like a plain session). */
  peerThreads?: number;
  /**
   * Offered request rates (req/s) for an open loop after the closed ones: requests arrive on
   * a schedule whatever is outstanding, and latency counts from arrival (see openLoop).
   * Each contender meets the same arrivals for `seconds`. None by default.
   */
  rates?: number[];
  /** Arrivals of the open loop (default 'poisson'). */
  distribution?: ArrivalDistribution;
  log: (line: string) => void;
}

export type Contender = 'engine-fp32' | 'engine-int8' | 'onnxruntime-node';

export interface LevelResult extends ClosedLoopResult {
  contender: Contender;
  /** Each round's throughput, req/s (the level's figures pool the rounds). */
  roundThroughputs: number[];
  burst: BurstResult;
  /** Engines only: mean merged batch, queue and compute time per request in the engine, µs. */
  meanBatchSize?: number;
  queueUs?: number;
  computeUs?: number;
  /**
   * Engines on ONNX Runtime: the share of its rounds' wall time its workers spent inside
   * onnxruntime's run(), over all of them (1 = every worker ran the model all the time).
   */
  workersBusy?: number;
}

export interface OpenLoopLevel extends OpenLoopResult {
  contender: Contender;
}

export interface BenchResults {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; node: string; onnxruntime: string; platform: string };
  model: { path: string; name: string; input: string; shape: number[] };
  options: Omit<BenchOptions, 'log'>;
  engine: { backend: string; reason: string; instances: number; threadsPerInstance?: number; threadPolicy?: string; graphRewrites?: GraphRewrites; loneRuns?: LoneRuns; batching: string; maxBatchSize: number; probeMsPerRow?: Record<number, number>; peerThreads: number };
  builds: {
    fp32Ms: number;
    int8?:
      | {
          firstMs: number;
          cachedMs: number;
          cachedFraction: number;
          quantizedNodes: number;
          keptInFloat: number;
          method: string;
          /** The INT8 engine's own maxBatchSize, and its probe where it ran one (ms a row; 'cache': read from the first build's). */
          maxBatchSize: number;
          probeMsPerRow?: Record<number, number>;
          probeSource?: 'measured' | 'cache';
          quantizerMs?: { total: number; calibration: number; validation: number };
          validation?: { samples: number; float: number; int8: number; withinBudget: boolean };
        }
      | { error: string };
  };
  accuracy?: {
    samples: number;
    metric: string;
    fp32: number;
    int8?: number;
    dropPt?: number;
    /**
     * The FP32 engine against plain onnxruntime-node (the peer, the model as given) on the
     * first lines: rows of the same class, the largest absolute difference, and rows whose
     * bits equal onnxruntime-node's running the graph the engine runs (after its rewrites).
     */
    fp32VsPeer: { checked: number; sameClass: number; maxAbsDiff: number; bitExactOnEngineGraph: number };
  };
  levels: LevelResult[];
  /** The open loop at each offered rate, where `rates` were given. */
  openLoop?: OpenLoopLevel[];
  /** API overhead at batch 1, 1 in flight: an engine with one instance of the peer's thread count against the raw call. */
  overhead: OverheadResult & { engineConfig: string };
  /**
   * The event loop with nothing in flight, in each round at the top concurrency after the
   * contenders, as long as a contender's round: its longest stall a round and over all of them,
   * ms. The machine's floor under the stall figures.
   */
  idleLoop: { roundStallsMs: number[]; stallMaxMs: number };
  summary: Summary;
}

export interface Summary {
  concurrency: number;
  fp32: LevelResult | undefined;
  int8: LevelResult | undefined;
  peer: LevelResult | undefined;
  throughputVsPeer?: number;
  int8ThroughputVsPeer?: number;
  int8Speedup?: number;
  /** The best engine's throughput over the peer's in each round (the contenders took turns). */
  bestVsPeerByRound?: number[];
  apiOverheadAt1?: number;
  targets: { name: string; value: string; pass: boolean | undefined }[];
}

/** Logs each new build stage once, with its progress when known. */
function phaseLogger(log: (line: string) => void): (e: { stage: string; done?: number; total?: number }) => void {
  let last = '';
  let lastAt = 0;
  return (e) => {
    const now = performance.now();
    if (e.stage === last && now - lastAt < 5000) return;
    last = e.stage;
    lastAt = now;
    log(`  ${e.stage}${e.done !== undefined ? ` ${e.done}${e.total !== undefined ? `/${e.total}` : ''}` : ''}`);
  };
}

function argmax2(d: ArrayLike<number>, row: number): number {
  return d[row * 2 + 1]! > d[row * 2]! ? 1 : 0;
}

/** Deterministic stand-in inputs for a model without labeled data: waves of a frequency per input. */
function syntheticInputs(count: number, size: number, first: number): Float32Array[] {
  return Array.from({ length: count }, (_, k) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.001 * (first + k + 1))));
}

/**
 * A custom model's input shape for batch 1: its fixed dims, and `given` (the dims after the
 * batch) where it leaves them dynamic; `given` must agree with the fixed ones.
 */
export function itemShape(name: string, model: readonly (number | string)[], given: readonly number[] | undefined): number[] {
  const dims = model.slice(1);
  const fixed = (d: number | string): d is number => typeof d === 'number' && d > 0;
  if (given === undefined) {
    if (dims.every(fixed)) return [1, ...dims];
    throw new Error(`bench: input '${name}' has dynamic axes beyond the batch: ${JSON.stringify(model)}; give its dims after the batch with --shape, e.g. --shape ${dims.map((d) => (fixed(d) ? d : 224)).join(',')}`);
  }
  if (given.length !== dims.length || dims.some((d, i) => fixed(d) && d !== given[i])) {
    throw new Error(`bench: --shape ${given.join(',')} does not fit input '${name}' ${JSON.stringify(model)}: give the ${dims.length} dims after the batch, keeping the fixed ones`);
  }
  return [1, ...given];
}

export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const log = o.log;
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as typeof OrtTypes;
  const modelPath = o.model ?? paddleClsModelPath();
  const isCls = o.model === undefined || basename(modelPath) === 'ch_ppocr_mobile_v2.0_cls_infer.onnx';
  const cores = availableParallelism();
  const peerThreads = o.peerThreads ?? cores;

  // Inputs: rendered text lines with known orientation for the classifier; random data otherwise.
  let inputName = 'x';
  let shape = [1, 3, CLS_HEIGHT, CLS_WIDTH];
  let evalLines: TextLine[] = [];
  let loadInputs: Float32Array[];
  if (!existsSync(modelPath)) throw new Error(`bench: no model at ${modelPath}`);
  const probe = await ort.InferenceSession.create(modelPath);
  if (isCls) {
    // The lines are rendered at the classifier's size; a --shape it would ignore is a mistake.
    if (o.itemShape && o.itemShape.join(',') !== shape.slice(1).join(',')) {
      throw new Error(`bench: the PaddleOCR classifier runs on text lines of ${shape.slice(1).join(',')}; --shape ${o.itemShape.join(',')} is for a model you give`);
    }
    log(`rendering ${o.evalSamples} held-out text lines (seed 1000000) ...`);
    evalLines = renderTextLines(o.evalSamples, 1_000_000);
    loadInputs = evalLines.slice(0, 256).map((l) => l.data);
  } else {
    const meta = probe.inputMetadata[0]!;
    if (probe.inputNames.length !== 1 || !meta.isTensor || meta.type !== 'float32') {
      throw new Error('bench: a custom model must have one float32 input');
    }
    inputName = meta.name;
    shape = itemShape(inputName, meta.shape, o.itemShape);
    const size = shape.reduce((a, b) => a * b, 1);
    loadInputs = syntheticInputs(64, size, 0);
  }
  await probe.release();

  const engineOptions: EngineOptions = {
    backend: o.backend,
    shapes: { [inputName]: [-1, ...shape.slice(1)] },
    ...(o.instances !== undefined ? { instances: o.instances } : {}),
    ...(o.threadsPerInstance !== undefined ? { threadsPerInstance: o.threadsPerInstance } : {}),
    ...(o.maxBatchSize !== undefined ? { maxBatchSize: o.maxBatchSize } : {}),
    ...(o.maxQueueDelayMs !== undefined ? { maxQueueDelayMs: o.maxQueueDelayMs } : {}),
  };

  log('building the FP32 engine ...');
  let t0 = performance.now();
  const fp32 = await Engine.build(modelPath, engineOptions);
  const fp32Ms = performance.now() - t0;

  // INT8: calibrated on lines disjoint from the evaluation set, validated on a third set; built twice to time the cache.
  let int8: Engine | undefined;
  let int8Build: BenchResults['builds']['int8'];
  if (o.int8) {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tensorrt-node-bench-cache-'));
    try {
      const calibration = (isCls ? renderTextLines(o.calibrationSamples, 1).map((l) => l.data) : syntheticInputs(o.calibrationSamples, loadInputs[0]!.length, 64)).map((data) => ({
        [inputName]: { data, dims: [1, ...shape.slice(1)] },
      }));
      const validation = isCls && o.maxDropPt !== undefined
        ? {
            data: renderTextLines(200, 2_000_000).map((l) => ({ feeds: { [inputName]: { data: l.data, dims: [1, ...shape.slice(1)] } }, label: l.label })),
            metric: 'top1' as const,
          }
        : undefined;
      const options: EngineOptions = {
        ...engineOptions,
        precision: 'int8',
        calibration,
        ...(o.method ? { quantization: { method: o.method } } : {}),
        ...(validation ? { validation, maxAccuracyDrop: o.maxDropPt! / 100 } : {}),
        cacheDir,
        onProgress: phaseLogger(log),
      };
      log(`building the INT8 engine (calibration: ${calibration.length} samples, ${o.method ?? DEFAULT_INT8_METHOD}${validation ? `, validation: 200 lines, max drop ${o.maxDropPt} pt` : ''}) ...`);
      t0 = performance.now();
      const first = await Engine.build(modelPath, options);
      const firstMs = performance.now() - t0;
      const report = first.quantization;
      await first.dispose();
      t0 = performance.now();
      int8 = await Engine.build(modelPath, options);
      const cachedMs = performance.now() - t0;
      log(`INT8 build ${firstMs.toFixed(0)} ms, from the cache ${cachedMs.toFixed(0)} ms (${int8.cache.status}); ${maxBatchLine(int8.batching.maxBatchSize, int8.batching.probe?.perRowMs, int8.batching.probe?.source)}`);
      int8Build = {
        firstMs,
        cachedMs,
        cachedFraction: cachedMs / firstMs,
        quantizedNodes: report?.quantizedNodes.length ?? 0,
        keptInFloat: report?.keptInFloat.length ?? 0,
        method: report?.method ?? o.method ?? DEFAULT_INT8_METHOD,
        maxBatchSize: int8.batching.maxBatchSize,
        ...(int8.batching.probe ? { probeMsPerRow: int8.batching.probe.perRowMs, probeSource: int8.batching.probe.source } : {}),
        ...(report ? { quantizerMs: report.timeMs } : {}),
        ...(report?.validation
          ? { validation: { samples: report.validation.samples, float: report.validation.float, int8: report.validation.int8, withinBudget: report.validation.withinBudget } }
          : {}),
      };
    } catch (e) {
      const err = e as { code?: string; message?: string };
      int8Build = { error: `${err.code ? `[${err.code}] ` : ''}${err.message ?? String(e)}` };
      log(`INT8 engine unavailable: ${int8Build.error}`);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }

  const peer = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: peerThreads, interOpNumThreads: 1, executionMode: 'sequential' });
  // The raw call for the API overhead runs the graph the engine runs (its rewrites applied)
  // with exactly the session options of its workers, so that only the API differs.
  const modelBytes = await readFile(modelPath);
  const engineGraph = fp32.backend.graphRewrites ? rewriteGraph(modelBytes).bytes : modelBytes;
  const raw = await ort.InferenceSession.create(engineGraph, workerSessionOptions(peerThreads));
  const peerInfer = (data: Float32Array): Promise<OrtTypes.InferenceSession.ReturnType> =>
    peer.run({ [inputName]: new ort.Tensor('float32', data, [1, ...shape.slice(1)]) });

  // Accuracy on the held-out lines: orientation agreement with the ground truth.
  let accuracy: BenchResults['accuracy'];
  if (isCls) {
    log(`accuracy on ${evalLines.length} held-out lines ...`);
    const score = async (engine: Engine): Promise<number> => {
      let ok = 0;
      for (let i = 0; i < evalLines.length; i += 256) {
        const chunk = evalLines.slice(i, i + 256);
        const outs = await Promise.all(chunk.map((l) => engine.infer(l.data)));
        outs.forEach((r, k) => {
          if (argmax2(Object.values(r)[0]!.data as Float32Array, 0) === chunk[k]!.label) ok++;
        });
      }
      return ok / evalLines.length;
    };
    const fp32Acc = await score(fp32);
    const int8Acc = int8 ? await score(int8) : undefined;
    // The FP32 engine against the peer, and bit for bit against onnxruntime-node on the engine's graph, on the first 200 lines.
    let sameClass = 0;
    let maxAbsDiff = 0;
    let bitExactOnEngineGraph = 0;
    const checked = Math.min(200, evalLines.length);
    for (let i = 0; i < checked; i++) {
      const tensor = new ort.Tensor('float32', evalLines[i]!.data, shape);
      const a = Object.values(await fp32.infer(evalLines[i]!.data))[0]!.data as Float32Array;
      const b = Object.values(await peerInfer(evalLines[i]!.data))[0]!.data as Float32Array;
      const c = Object.values(await raw.run({ [inputName]: tensor }))[0]!.data as Float32Array;
      if (argmax2(a, 0) === argmax2(b, 0)) sameClass++;
      for (let k = 0; k < a.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[k]! - b[k]!));
      if (a.length === c.length && a.every((v, k) => Object.is(v, c[k]))) bitExactOnEngineGraph++;
    }
    accuracy = {
      samples: evalLines.length,
      metric: 'orientation agreement with ground truth (0° / 180°)',
      fp32: fp32Acc,
      ...(int8Acc !== undefined ? { int8: int8Acc, dropPt: (fp32Acc - int8Acc) * 100 } : {}),
      fp32VsPeer: { checked, sameClass, maxAbsDiff, bitExactOnEngineGraph },
    };
    log(`accuracy FP32 ${(fp32Acc * 100).toFixed(2)} %${int8Acc !== undefined ? `, INT8 ${(int8Acc * 100).toFixed(2)} %` : ''}; FP32 engine vs peer: same class ${sameClass}/${checked}, max |diff| ${maxAbsDiff.toExponential(1)}; bit for bit with onnxruntime-node on the engine's graph ${bitExactOnEngineGraph}/${checked}`);
  }

  // API overhead at batch 1, 1 in flight, with the same ORT threads on both sides.
  const sameThreads = fp32.backend.instances === 1 && fp32.backend.threadsPerInstance === peerThreads;
  const overheadEngine = sameThreads ? fp32 : await Engine.build(modelPath, { ...engineOptions, instances: 1, threadsPerInstance: peerThreads });
  // Beside them, the same session on a plain worker thread: what leaving the JS thread costs here.
  const bare = await startBareWorker(engineGraph, inputName, workerSessionOptions(peerThreads));
  const rowDims = [1, ...shape.slice(1)];
  log('API overhead at 1 in flight (engine, raw run() and a bare worker hop, taking turns in blocks of back-to-back calls) ...');
  const overheadResult = await overheadAtOne(
    (i) => overheadEngine.infer(loadInputs[i]!),
    (i) => raw.run({ [inputName]: new ort.Tensor('float32', loadInputs[i]!, rowDims) }),
    loadInputs.length,
    5,
    // 1.5 s a round by default: at 0.6 s a round held ~3 blocks a contender, and one noisy
    // spell of this VM moved the median by 10 points and more.
    Math.max(0.3, o.seconds / 2),
    (i) => bare.infer(loadInputs[i]!, rowDims),
  );
  const overhead = { ...overheadResult, engineConfig: `1 worker × ${peerThreads} threads, raw session with the same options` };
  if (!sameThreads) await overheadEngine.dispose();
  await bare.close();
  await raw.release();
  log(`engine p50 ${overhead.engineP50Ms.toFixed(3)} ms, raw run() p50 ${overhead.rawP50Ms.toFixed(3)} ms: overhead ${(overhead.overhead * 100).toFixed(1)} % (the median round); bare worker hop p50 ${overhead.hopP50Ms!.toFixed(3)} ms (${(overhead.hopOverhead! * 100).toFixed(1)} %)`);

  // Load: at each concurrency the contenders take turns in rounds of a closed loop, then each runs bursts.
  const levels: LevelResult[] = [];
  const contenders: [Contender, (i: number) => Promise<unknown>, Engine | undefined][] = [
    ['engine-fp32', (i) => fp32.infer(loadInputs[i]!), fp32],
    ...(int8 ? [['engine-int8', (i: number) => int8!.infer(loadInputs[i]!), int8] as [Contender, (i: number) => Promise<unknown>, Engine]] : []),
    ['onnxruntime-node', (i) => peerInfer(loadInputs[i]!), undefined],
  ];
  const rounds = Math.max(1, Math.round(o.rounds ?? 3));
  const topConcurrency = Math.max(...o.concurrency);
  const idleStalls: number[] = [];
  for (const c of o.concurrency) {
    const pooled = contenders.map(([, , engine]) => ({ loops: [] as ClosedLoopResult[], latencies: [] as number[], before: engine?.stats(), runMs: 0, wallMs: 0 }));
    const sessionRunMs = (engine: Engine | undefined): number | undefined => engine?.stats().backendCounters?.sessionRunMs;
    for (let round = 0; round < rounds; round++) {
      // Each round starts with the next contender, so that none always follows another.
      for (let j = 0; j < contenders.length; j++) {
        const k = (j + round) % contenders.length;
        const p = pooled[k]!;
        const engine = contenders[k]![2];
        const runMs = sessionRunMs(engine);
        const started = performance.now();
        p.loops.push(await closedLoop(contenders[k]![1], loadInputs.length, c, o.seconds / rounds, round === 0 ? 0.5 : 0.2, p.latencies));
        if (runMs !== undefined) {
          p.runMs += sessionRunMs(engine)! - runMs;
          p.wallMs += performance.now() - started;
        }
      }
      if (c === topConcurrency && idleStalls.length < rounds) idleStalls.push(await idleLoop(o.seconds / rounds));
    }
    for (const [k, [name, infer, engine]] of contenders.entries()) {
      const p = pooled[k]!;
      const loop = poolRounds(p.loops, p.latencies);
      const after = engine?.stats();
      const burst = await bursts(infer, loadInputs.length, c, o.burstSeconds);
      const level: LevelResult = { contender: name, ...loop, roundThroughputs: p.loops.map((l) => l.throughput), burst };
      if (p.before && after) {
        const before = p.before;
        const batches = after.batches - before.batches;
        const items = after.inferences - before.inferences;
        level.meanBatchSize = batches ? items / batches : 0;
        const requests = after.succeeded - before.succeeded;
        level.queueUs = requests ? ((after.totalQueueMs - before.totalQueueMs) / requests) * 1000 : 0;
        level.computeUs = batches ? ((after.totalComputeMs - before.totalComputeMs) / batches) * 1000 : 0;
        if (p.wallMs > 0) level.workersBusy = p.runMs / (p.wallMs * engine!.backend.instances);
      }
      levels.push(level);
      log(
        `${name.padEnd(17)} c=${String(c).padStart(2)}  ${loop.throughput.toFixed(1).padStart(8)} req/s  p50 ${loop.latencyMs.p50.toFixed(2)} ms  p99 ${loop.latencyMs.p99.toFixed(2)} ms  ` +
          `TTFR p99 ${burst.firstResultMs.p99.toFixed(2)} ms  stall ${loop.stallMaxMs.toFixed(1)} ms  ELU ${(loop.eventLoopUtilization * 100).toFixed(0)} %${loop.jsThreadCpuUs !== undefined ? `  JS ${loop.jsThreadCpuUs.toFixed(0)} µs/req` : ''}${level.meanBatchSize ? `  batch ${level.meanBatchSize.toFixed(1)}` : ''}` +
          (level.workersBusy !== undefined ? `  workers busy ${(level.workersBusy * 100).toFixed(0)} %` : '') +
          (rounds > 1 ? `  rounds ${level.roundThroughputs.map((t) => t.toFixed(0)).join(' / ')} req/s` : ''),
      );
    }
    if (c === topConcurrency) log(`nothing in flight (after each round)  stall ${Math.max(0, ...idleStalls).toFixed(1)} ms${rounds > 1 ? `  rounds ${idleStalls.map((v) => v.toFixed(1)).join(' / ')} ms` : ''}`);
  }

  // Open loop: at each offered rate every contender meets the same arrivals, taking turns.
  let openLevels: OpenLoopLevel[] | undefined;
  if (o.rates?.length) {
    openLevels = [];
    const distribution = o.distribution ?? 'poisson';
    for (const [r, rate] of o.rates.entries()) {
      for (let j = 0; j < contenders.length; j++) {
        const [name, infer] = contenders[(j + r) % contenders.length]!;
        const res = await openLoop(infer, loadInputs.length, rate, o.seconds, { distribution, seed: r + 1 });
        openLevels.push({ contender: name, ...res });
      }
      for (const [name] of contenders) {
        const l = openLevels.find((x) => x.contender === name && x.rate === rate)!;
        log(
          `${name.padEnd(17)} ${String(rate).padStart(5)} req/s offered (${distribution}): ${l.throughput.toFixed(1).padStart(8)} req/s served  p50 ${l.latencyMs.p50.toFixed(2)} ms  p99 ${l.latencyMs.p99.toFixed(2)} ms  ` +
            `most in flight ${l.maxInFlight}  stall ${l.stallMaxMs.toFixed(1)} ms${l.unfinished ? `  unfinished ${l.unfinished}` : ''}${l.errors ? `  errors ${l.errors}` : ''}`,
        );
      }
    }
  }

  const idleStallMax = Math.max(0, ...idleStalls);
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    machine: { cpus: cores, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: onnxruntimeVersion(), platform: `${process.platform}-${process.arch}` },
    model: { path: modelPath, name: basename(modelPath), input: inputName, shape },
    options: { ...o, log: undefined } as unknown as Omit<BenchOptions, 'log'>,
    engine: {
      backend: fp32.backend.name,
      reason: fp32.backend.reason,
      instances: fp32.backend.instances,
      ...(fp32.backend.threadsPerInstance !== undefined ? { threadsPerInstance: fp32.backend.threadsPerInstance } : {}),
      ...(fp32.backend.threadPolicy !== undefined ? { threadPolicy: fp32.backend.threadPolicy } : {}),
      ...(fp32.backend.graphRewrites ? { graphRewrites: fp32.backend.graphRewrites } : {}),
      ...(fp32.backend.loneRuns ? { loneRuns: fp32.backend.loneRuns } : {}),
      batching: fp32.batching.reason,
      maxBatchSize: fp32.batching.maxBatchSize,
      ...(fp32.batching.probe ? { probeMsPerRow: fp32.batching.probe.perRowMs } : {}),
      peerThreads,
    },
    builds: { fp32Ms, ...(int8Build ? { int8: int8Build } : {}) },
    ...(accuracy ? { accuracy } : {}),
    levels,
    ...(openLevels ? { openLoop: openLevels } : {}),
    overhead,
    idleLoop: { roundStallsMs: idleStalls, stallMaxMs: idleStallMax },
    summary: summarize(levels, o.concurrency, overhead, idleStallMax),
  };
  delete (results.options as { log?: unknown }).log;
  await fp32.dispose();
  await int8?.dispose();
  await peer.release();
  return results;
}

function summarize(levels: LevelResult[], concurrency: number[], overhead: OverheadResult, idleStallMs: number): Summary {
  const top = Math.max(...concurrency);
  const at = (name: Contender, c: number): LevelResult | undefined => levels.find((l) => l.contender === name && l.concurrency === c);
  const fp32 = at('engine-fp32', top);
  const int8 = at('engine-int8', top);
  const peer = at('onnxruntime-node', top);
  const best = int8 && fp32 && int8.throughput > fp32.throughput ? int8 : fp32;
  const ratio = (a?: number, b?: number): number | undefined => (a !== undefined && b ? a / b : undefined);
  const s: Summary = {
    concurrency: top,
    fp32,
    int8,
    peer,
    ...(ratio(fp32?.throughput, peer?.throughput) !== undefined ? { throughputVsPeer: ratio(fp32?.throughput, peer?.throughput)! } : {}),
    ...(ratio(int8?.throughput, peer?.throughput) !== undefined ? { int8ThroughputVsPeer: ratio(int8?.throughput, peer?.throughput)! } : {}),
    ...(ratio(int8?.throughput, fp32?.throughput) !== undefined ? { int8Speedup: ratio(int8?.throughput, fp32?.throughput)! } : {}),
    apiOverheadAt1: overhead.overhead,
    targets: [],
  };
  const bestRatio = ratio(best?.throughput, peer?.throughput);
  if (best && peer && best.roundThroughputs.length === peer.roundThroughputs.length && best.roundThroughputs.length > 1) {
    s.bestVsPeerByRound = best.roundThroughputs.map((t, i) => t / peer.roundThroughputs[i]!);
  }
  const byRound = s.bestVsPeerByRound ? ` (rounds: ${s.bestVsPeerByRound.map((r) => `${r.toFixed(2)}×`).join(', ')})` : '';
  s.targets.push({
    name: `throughput at ${top} in flight ≥ 4× plain onnxruntime-node FP32 (best engine: ${best?.contender ?? '-'})`,
    value: bestRatio !== undefined ? `${bestRatio.toFixed(2)}×${byRound}` : 'n/a',
    pass: bestRatio !== undefined ? bestRatio >= 4 : undefined,
  });
  s.targets.push({
    name: `p99 latency at ${top} in flight ≤ the peer's`,
    value: best && peer ? `${best.latencyMs.p99.toFixed(2)} ms vs ${peer.latencyMs.p99.toFixed(2)} ms` : 'n/a',
    pass: best && peer ? best.latencyMs.p99 <= peer.latencyMs.p99 : undefined,
  });
  s.targets.push({
    name: `event-loop stall at ${top} in flight ≤ 5 ms`,
    value: best && peer ? `${best.stallMaxMs.toFixed(1)} ms (peer ${peer.stallMaxMs.toFixed(1)} ms; nothing in flight, in the same rounds: ${idleStallMs.toFixed(1)} ms)` : 'n/a',
    pass: best ? best.stallMaxMs <= 5 : undefined,
  });
  s.targets.push({
    name: 'API overhead at batch 1, 1 in flight ≤ 10 % over a raw onnxruntime-node call (p50)',
    value: s.apiOverheadAt1 !== undefined
      ? `${(s.apiOverheadAt1 * 100).toFixed(1)} %${overhead.hopOverhead !== undefined ? ` (a bare worker hop: ${(overhead.hopOverhead * 100).toFixed(1)} %)` : ''}`
      : 'n/a',
    pass: s.apiOverheadAt1 !== undefined ? s.apiOverheadAt1 <= 0.1 : undefined,
  });
  return s;
}
