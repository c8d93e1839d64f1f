#!/usr/bin/env node
import { Command } from 'commander';
import { register as registerDoctor } from './doctor.js';
import { register as registerQuantize } from './quantize.js';
import { register as registerBench } from './bench.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/package-root.js';

const program = new Command('tensorrt-node')
  .description('Run ONNX models fast: TensorRT on NVIDIA GPUs, ONNX Runtime on the CPU.')
  .version((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version, '-v, --version');
registerDoctor(program);
registerQuantize(program);
registerBench(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`tensorrt-node: ${e.code ? `[${e.code}] ` : ''}${e.message ?? String(err)}\n`);
  process.exitCode = 1;
});
