/** `tensorrt-node quantize model.onnx --out model.int8.onnx --calib <data> [--val <data>]` */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import { loadSamples, type DataSourceOptions, type Sample } from '../data/index.js';
import type { ImageOptions } from '../data/images.js';
import { TensorrtNodeError } from '../errors.js';
import { GraphView } from '../onnx/graph.js';
import { readModel } from '../onnx/model.js';
import { modelInputs } from '../quantize/feeds.js';
import { quantize, type CalibrationMethod, type QuantizeProgress, type QuantizeReport } from '../quantize/index.js';

interface CliOptions {
  out: string;
  calib: string;
  calibCount?: number;
  val?: string;
  valLabels?: string;
  valCount?: number;
  method: CalibrationMethod;
  percentile?: number;
  exclude?: string;
  maxDrop?: number;
  metric?: 'top1' | 'agreement';
  batchSize?: number;
  width?: number;
  height?: number;
  mean?: string;
  std?: string;
  scale?: number;
  layout?: 'nchw' | 'nhwc';
  channelOrder?: 'rgb' | 'bgr';
  resize?: 'stretch' | 'pad';
  report?: string;
  progress: boolean;
}

const numbers = (s: string | undefined): number[] | undefined => (s === undefined ? undefined : s.split(',').map((v) => Number(v.trim())));
const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new TensorrtNodeError('EINPUT', `expected a whole number, got '${v}'`);
  return n;
};
const float = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TensorrtNodeError('EINPUT', `expected a number, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('quantize')
    .description('INT8-quantize an ONNX model (Q/DQ, TensorRT rules) from calibration data; validate and fall back where accuracy drops')
    .argument('<model>', 'float ONNX model')
    .requiredOption('-o, --out <file>', 'where to write the Q/DQ model')
    .requiredOption('-c, --calib <path>', 'calibration data: image folder, .npy file or folder, or idx images file')
    .option('--calib-count <n>', 'use at most n calibration samples', int)
    .option('-v, --val <path>', 'validation data (same kinds; image sub-folders or --val-labels give labels)')
    .option('--val-labels <file>', 'idx labels file for idx validation images')
    .option('--val-count <n>', 'use at most n validation samples', int)
    .addOption(new Option('-m, --method <method>', 'calibration method').choices(['entropy', 'max', 'percentile', 'mse']).default('entropy'))
    .option('--percentile <p>', "percentile for --method percentile (default 99.99)", float)
    .option('--exclude <list>', 'comma-separated node names or op types kept in float')
    .option('--max-drop <d>', 'largest allowed metric drop, e.g. 0.003 for 0.3 pt of top-1', float)
    .addOption(new Option('--metric <metric>', 'validation metric (default top1 with labels, else agreement)').choices(['top1', 'agreement']))
    .option('--batch-size <n>', 'calibration samples per run for models with a dynamic batch axis', int)
    .option('--width <n>', 'image width (default: from the model input)', int)
    .option('--height <n>', 'image height (default: from the model input)', int)
    .option('--mean <list>', 'mean per channel after scaling, e.g. 0.485,0.456,0.406')
    .option('--std <list>', 'std per channel after scaling, e.g. 0.229,0.224,0.225')
    .option('--scale <s>', 'divide pixel values by s first (images default 255, idx default 1)', float)
    .addOption(new Option('--layout <layout>', 'image tensor layout').choices(['nchw', 'nhwc']))
    .addOption(new Option('--channel-order <order>', 'image channel order').choices(['rgb', 'bgr']))
    .addOption(new Option('--resize <mode>', 'stretch to size, or keep aspect and pad').choices(['stretch', 'pad']))
    .option('--report <file>', 'write the full report as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (modelPath: string, opts: CliOptions) => {
      await runQuantize(modelPath, opts);
    });
}

async function runQuantize(modelPath: string, opts: CliOptions): Promise<void> {
  const model = await readModel(modelPath);
  const inputs = modelInputs(GraphView.of(model));
  if (inputs.length !== 1) {
    throw new TensorrtNodeError('EINPUT', `the CLI feeds single-input models; '${basename(modelPath)}' has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): use quantize() from the API`);
  }
  const input = inputs[0]!;
  const mean = numbers(opts.mean);
  const std = numbers(opts.std);
  const image: Partial<ImageOptions> = {
    ...(opts.width ? { width: opts.width } : {}),
    ...(opts.height ? { height: opts.height } : {}),
    ...(mean ? { mean } : {}),
    ...(std ? { std } : {}),
    ...(opts.scale !== undefined ? { scale: opts.scale } : {}),
    ...(opts.layout ? { layout: opts.layout } : {}),
    ...(opts.channelOrder ? { channelOrder: opts.channelOrder } : {}),
    ...(opts.resize ? { resize: opts.resize } : {}),
  };
  const source = (count: number | undefined, labels?: string): DataSourceOptions => ({
    inputShape: input.shape,
    image,
    ...(opts.scale !== undefined ? { scale: opts.scale } : {}),
    ...(mean ? { mean: mean[0]! } : {}),
    ...(std ? { std: std[0]! } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(labels ? { labels } : {}),
  });
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const calib = await loadSamples(opts.calib, source(opts.calibCount));
  log(`calibration: ${calib.length} samples from ${opts.calib}`);
  let val: Sample[] | undefined;
  if (opts.val) {
    val = await loadSamples(opts.val, source(opts.valCount, opts.valLabels));
    log(`validation: ${val.length} samples from ${opts.val}${val.every((s) => s.label !== undefined) ? ' (labeled)' : ''}`);
  }

  const bar = opts.progress && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: '{phase} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted}', hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic)
    : undefined;
  let phase = '';
  const onProgress = (e: QuantizeProgress): void => {
    if (e.phase === 'warning') {
      if (bar) bar.stop();
      log(`warning: ${e.message}`);
      phase = '';
      return;
    }
    if (!bar) return;
    if (e.phase === 'done') return void bar.stop();
    if (e.phase !== phase) {
      if (phase) bar.stop();
      phase = e.phase;
      bar.start(e.total ?? e.done, 0, { phase: e.phase.padEnd(11) });
    }
    if (e.total !== undefined) bar.setTotal(e.total);
    bar.update(e.done, { phase: e.phase.padEnd(11) });
  };

  const { model: out, report } = await quantize(modelPath, {
    calibration: calib.map((s) => ({ [input.name]: s.tensor })),
    method: opts.method,
    ...(opts.percentile !== undefined ? { percentile: opts.percentile } : {}),
    ...(opts.exclude ? { exclude: opts.exclude.split(',').map((s) => s.trim()) } : {}),
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    ...(val
      ? {
          validation: {
            data: val.map((s) => ({ feeds: { [input.name]: s.tensor }, ...(s.label !== undefined ? { label: s.label } : {}) })),
            ...(opts.metric ? { metric: opts.metric } : {}),
          },
        }
      : {}),
    ...(opts.maxDrop !== undefined ? { maxAccuracyDrop: opts.maxDrop } : {}),
    onProgress,
  });
  bar?.stop();
  await writeFile(opts.out, out);
  if (opts.report) await writeFile(opts.report, JSON.stringify(report, null, 2));
  process.stdout.write(formatSummary(report, opts.out, out.length));
}

const pct = (v: number): string => `${(v * 100).toFixed(2)} %`;

/** The summary table printed at the end. */
export function formatSummary(report: QuantizeReport, outPath: string, bytes: number): string {
  const lines: string[] = [];
  const row = (k: string, v: string): number => lines.push(`  ${k.padEnd(22)} ${v}`);
  lines.push('', 'tensorrt-node quantize: summary');
  row('output', `${outPath} (${(bytes / 1024).toFixed(1)} KiB)`);
  row('method', report.method + (report.percentile !== undefined ? ` (${report.percentile})` : ''));
  row('opset', report.opset.from === report.opset.to ? String(report.opset.to) : `${report.opset.from} → ${report.opset.to}`);
  row('calibration', `${report.calibration.samples} samples, ${report.calibration.batches} runs, ${report.calibration.nonFinite} NaN/Inf`);
  row('quantized nodes', String(report.quantizedNodes.length));
  row('kept in float', report.keptInFloat.length === 0 ? '0' : report.keptInFloat.map((k) => `${k.node} (${k.reason})`).join(', '));
  if (report.residualAdds.length) row('residual Adds', String(report.residualAdds.length));
  if (report.validation) {
    const v = report.validation;
    const fmt = v.metric === 'top1' || v.metric === 'agreement' ? pct : (x: number) => x.toPrecision(5);
    row(`${v.metric} float`, fmt(v.float));
    row(`${v.metric} int8`, fmt(v.int8));
    row('drop', `${fmt(v.drop)}${v.maxAccuracyDrop !== undefined ? ` (budget ${fmt(v.maxAccuracyDrop)}: ${v.withinBudget ? 'met' : 'NOT met'})` : ''}`);
  }
  row('time', `${(report.timeMs.total / 1000).toFixed(2)} s (calibration ${(report.timeMs.calibration / 1000).toFixed(2)} s, validation ${(report.timeMs.validation / 1000).toFixed(2)} s)`);
  lines.push('', '  activations (per tensor)');
  lines.push(`  ${'tensor'.padEnd(40)} ${'amax'.padStart(12)} ${'scale'.padStart(12)}  consumers`);
  for (const t of report.tensors.filter((t) => t.kind === 'activation')) {
    lines.push(`  ${t.name.slice(0, 40).padEnd(40)} ${(t.amax as number).toPrecision(6).padStart(12)} ${(t.scale as number).toExponential(4).padStart(12)}  ${t.consumers.join(', ')}`);
  }
  const weights = report.tensors.filter((t) => t.kind === 'weight');
  lines.push('', `  weights: ${weights.length} (per channel: ${weights.filter((w) => w.axis !== undefined).length})`);
  for (const w of report.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
