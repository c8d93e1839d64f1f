/**
 * Whether a batch that finds every worker idle runs on every core (ONNX Runtime backend).
 * One single-threaded session per core serves load best, but leaves a lone request of a
 * large model on one core: the PP-OCRv4 detector at 320 × 320 served 32 req/s at 1 in
 * flight that way, against 45 with two threads a worker (bench/engine-threads.ts), while
 * the classifier, a row of ~1.5 ms, lost on two threads. So where the batch probe
 * timed a lone row at WIDE_MIN_ROW_MS or more, the first worker gets a second session with
 * every thread of the engine (spinning within a run as the others do: without, a lone row
 * gained 9 %), timed against a single-threaded one at this build; it is kept
 * where it ran faster by WIDE_GAIN and gave the same bits (a batch's rows must equal the
 * same rows run alone, whichever session ran them).
 */
import type { OnnxruntimeBackend } from '../backends/onnxruntime/index.js';
import type { Feeds, TensorLike } from '../tensor.js';
import { syntheticFeeds } from './batch-probe.js';

/** A lone row shorter than this (ms, the probe's time at batch 1) stays on one thread. */
export const WIDE_MIN_ROW_MS = 5;
/** The wide session is kept where its fastest lone run took at most this share of one thread's. */
export const WIDE_GAIN = 0.85;
/** Lone runs of each session, taking turns. */
const ROUNDS = 3;

export interface LoneRuns {
  /** Threads a batch that finds every worker idle runs on. */
  threads: number;
  reason: string;
  /** Fastest lone run on one thread and on the wide session, ms (where timed). */
  oneThreadMs?: number;
  wideMs?: number;
}

function sameBits(a: Record<string, TensorLike>, b: Record<string, TensorLike>): boolean {
  for (const name in a) {
    const x = a[name]!.data;
    const y = b[name]?.data;
    if (!y || x.byteLength !== y.byteLength) return false;
    if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
  }
  return true;
}

/** `rowMs`: the batch probe's time of a lone row, where it ran; `item`: each input's dims after the batch (or why there are none). */
export async function chooseLoneRuns(backend: OnnxruntimeBackend, rowMs: number | undefined, item: Record<string, number[]> | string): Promise<LoneRuns> {
  const threads = backend.instances * backend.threadsPerInstance;
  const one = { threads: backend.threadsPerInstance };
  if (backend.instances < 2 || backend.threadsPerInstance !== 1) return { ...one, reason: 'each instance runs on its own threads' };
  if (rowMs === undefined || typeof item === 'string') return { ...one, reason: 'a lone row was not timed (no batch probe)' };
  if (rowMs < WIDE_MIN_ROW_MS) return { ...one, reason: `a lone row takes ${rowMs.toFixed(2)} ms, too short to share between threads` };
  try {
    await backend.addWide(threads);
  } catch (e) {
    return { ...one, reason: `the ${threads}-thread session could not be made: ${(e as Error).message}` };
  }
  const feeds: Feeds = syntheticFeeds(backend.inputs, item, 1, new Map());
  let oneThreadMs = Number.POSITIVE_INFINITY;
  let wideMs = Number.POSITIVE_INFINITY;
  let same = true;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const a = await backend.runTimed(feeds, { wide: false });
      const b = await backend.runTimed(feeds, { wide: true });
      oneThreadMs = Math.min(oneThreadMs, a.computeMs);
      wideMs = Math.min(wideMs, b.computeMs);
      same &&= sameBits(a.outputs, b.outputs);
    }
  } catch (e) {
    await backend.dropWide();
    return { ...one, reason: `the ${threads}-thread session's run failed: ${(e as Error).message}` };
  }
  const times = `${wideMs.toFixed(2)} ms on ${threads} threads against ${oneThreadMs.toFixed(2)} ms on one`;
  if (!same) {
    await backend.dropWide();
    return { ...one, reason: `results differ in their bits between ${threads} threads and one`, oneThreadMs, wideMs };
  }
  if (wideMs > oneThreadMs * WIDE_GAIN) {
    await backend.dropWide();
    return { ...one, reason: `a lone row ran ${times}: not worth a second session`, oneThreadMs, wideMs };
  }
  return { threads, reason: `a batch that finds every worker idle runs on ${threads} threads: a lone row ran ${times}, the same bits`, oneThreadMs, wideMs };
}

/** A choice as stored in the engine cache, or undefined where the payload is not one. */
export function parseLoneRuns(payload: Uint8Array): LoneRuns | undefined {
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as Partial<LoneRuns>;
    const ms = (x: unknown): boolean => typeof x === 'number' && x > 0;
    if (!Number.isInteger(v.threads) || v.threads! < 1 || typeof v.reason !== 'string' || !ms(v.oneThreadMs) || !ms(v.wideMs)) return undefined;
    return { threads: v.threads!, reason: v.reason, oneThreadMs: v.oneThreadMs!, wideMs: v.wideMs! };
  } catch {
    return undefined;
  }
}
