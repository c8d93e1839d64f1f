/** The GPU check's result and its one table (scripts/test-gpu.sh prints it last). */

export interface Row {
  check: string;
  result: string;
  /** 'ok', 'FAIL', 'info', 'skipped', 'pending' */
  status: string;
}

export interface GpuResults {
  mode: 'gpu' | 'dry-run';
  rows: Row[];
  raw: Record<string, unknown>;
}

export function formatTable(r: GpuResults): string {
  const head: Row = { check: 'check', result: 'result', status: 'status' };
  const rows = [head, ...r.rows];
  const w0 = Math.max(...rows.map((x) => x.check.length));
  const w1 = Math.min(110, Math.max(...rows.map((x) => x.result.length)));
  const w2 = Math.max(...rows.map((x) => x.status.length));
  const line = (x: Row): string => `| ${x.check.padEnd(w0)} | ${x.result.padEnd(w1)} | ${x.status.padEnd(w2)} |`;
  const sep = `|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|${'-'.repeat(w2 + 2)}|`;
  const title = r.mode === 'dry-run' ? 'tensorrt-node GPU check (DRY RUN: nothing measured, no GPU here)' : 'tensorrt-node GPU check';
  return [title, line(head), sep, ...r.rows.map(line)].join('\n');
}

/** Every check the GPU run reports, in order, as pending rows (the dry run prints these). */
export const CHECKS = [
  'device and driver',
  'pinned H2D GB/s: addon vs bare cudaMemcpyAsync',
  'pinned D2H GB/s: addon vs bare cudaMemcpyAsync',
  'overlap: 2 instances vs 1 (copy+kernel)',
  'infer path us/call, 1 in flight',
  'infer path us/call, 64 in flight',
  'CUDA graphs (static shapes)',
  'zero-copy Buffers round trip',
  'staged (non-pinned) input and output round trip',
  'RSS and device memory over 2 x 100000 calls',
  'Engine.infer us/call, 1 in flight',
  'Engine.infer at 64 in flight (dynamic batching)',
  'TensorRT: MNIST FP32 and INT8 (Q/DQ) vs ONNX Runtime',
  'completion: poll the event, then block (1 instance, a slow kernel)',
  'Engine.build with cudaGraphs and spinWaitUs 0',
  'process.exit() with runs in flight (child process)',
] as const;

export function failed(r: GpuResults): boolean {
  return r.rows.some((x) => x.status === 'FAIL');
}
