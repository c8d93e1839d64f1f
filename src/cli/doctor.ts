import type { Command } from 'commander';
import { type RuntimeInfo, runtimeInfo } from '../runtime.js';

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(18)} ${value}`;
}

/** runtimeInfo() for a person: what is there, what is missing, and what to do. */
export function formatRuntimeInfo(info: RuntimeInfo): string {
  const lines: string[] = ['tensorrt-node doctor', ''];
  const a = info.addon;
  lines.push('Addon');
  if (a.loaded) {
    lines.push(row('variant', `${a.variant} (${a.choice})`));
    lines.push(row('file', `${a.path} [${a.buildSystem}]`));
    lines.push(row('CUDA runtime', a.cudaRuntime ? `${a.cudaRuntime} (linked statically)` : 'none (cpu variant)'));
    lines.push(row('doorbell', a.doorbell ? 'yes (results wake the JS thread without a lock)' : 'no (built without uv.h: results wake the JS thread by Atomics.notify)'));
  } else {
    lines.push(row('status', 'not loaded'));
  }
  for (const s of a.skipped) lines.push(row('skipped', s));

  lines.push('', 'NVIDIA driver');
  lines.push(row('driver', info.driver.found ? `supports CUDA ${info.driver.cudaVersion ?? '?'}` : 'not found'));
  if (info.driver.kernelModule) lines.push(row('kernel module', info.driver.kernelModule));

  lines.push('', 'Devices');
  if (info.devices.length === 0) lines.push(row('', 'none'));
  for (const d of info.devices) {
    lines.push(
      row(`#${d.index}`, `${d.name}, sm_${d.computeCapability.replace('.', '')}, ${gib(d.totalMemory)}, ${d.multiProcessorCount} SMs, PCI ${d.pciBusId}`),
    );
  }

  lines.push('', 'TensorRT');
  const t = info.tensorrt;
  lines.push(row('library', t.found ? `${t.version} (${t.libraryPath})` : `not found [${t.code}]`));
  if (t.parserPath) lines.push(row('ONNX parser', t.parserPath));
  lines.push(row('providers', t.providersCompiled.length ? t.providersCompiled.map((m) => `trt${m}`).join(', ') : 'none compiled'));
  lines.push(row('pinned host memory', info.hostMemory.pinned ? 'yes' : 'no (page-aligned pageable memory)'));

  lines.push('', 'Backends');
  lines.push(row('tensorrt', `${info.backends.tensorrt.usable ? 'usable' : 'not usable'}: ${info.backends.tensorrt.reason}`));
  lines.push(row('onnxruntime', `${info.backends.onnxruntime.usable ? 'usable' : 'not usable'}: ${info.backends.onnxruntime.reason}`));
  lines.push(row('ORT telemetry', info.backends.onnxruntime.telemetry.reason));
  lines.push(row('usable now', info.backends.usable.join(', ') || 'none'));

  if (info.problems.length > 0) {
    lines.push('', 'What is missing, and what to do');
    for (const p of info.problems) {
      lines.push(`  - [${p.component}/${p.code}] ${p.message}`);
      lines.push(`      ${p.action}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('show the addon variant, NVIDIA driver, devices, TensorRT and usable backends, with what to do about missing pieces')
    .option('--json', 'print runtimeInfo() as JSON')
    .action((opts: { json?: boolean }) => {
      const info = runtimeInfo();
      process.stdout.write(opts.json ? `${JSON.stringify(info, null, 2)}\n` : formatRuntimeInfo(info));
    });
}
