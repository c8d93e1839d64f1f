/**
 * maxBatchSize from the model's measured cost on this machine. On a CPU a larger batch
 * runs each row faster only while its activations stay in the caches: the PaddleOCR
 * classifier (48 × 192) gains up to 8 rows on one thread, while one row of a batch of 8
 * of the recognizer (48 × 320) took 1.4× the time of a row alone, and of the detector
 * (320 × 320) 1.5× (docs/engine.md). So at build the engine times batches of 1, 2, 4, ...
 * rows on every instance at once and takes the largest whose time per row is within
 * `TOLERANCE` of the best. Before that, checkBatchAxis makes sure axis 0 is a batch axis.
 */
import type { Feeds, TensorInfo, TensorLike } from '../tensor.js';
import { typedArrayFor } from './inputs.js';
import { bareDims, type ShapeRange } from '../shapes.js';

export interface BatchProbe {
  /** Each batch size probed: its fastest round's compute time per row (the mean over the instances), ms. */
  perRowMs: Record<number, number>;
  /** The maxBatchSize taken from it. */
  chosen: number;
  /**
   * The first batch size whose run failed, where one did after a smaller one ran (a model
   * whose axis 0 is open but that only runs one row, e.g. an LSTM whose initial state was
   * traced at batch 1): the sizes from it on are not taken.
   */
  failed?: { rows: number; message: string };
  /** 'measured' at this build, or read from the engine cache (measured by an earlier build). */
  source: 'measured' | 'cache';
}

/** A size is kept while its time per row is within 5 % of the best: batching also saves hops. */
const TOLERANCE = 0.05;
/**
 * Rounds over the sizes: at least MIN_ROUNDS within BUDGET_MS, more while under MIN_MS in
 * all (cheap for a small model), at most MAX_ROUNDS.
 */
const MIN_ROUNDS = 4;
const MAX_ROUNDS = 10;
const MIN_MS = 100;
const BUDGET_MS = 250;
/** A warm run at least this long that is slower per row than the best ends the probe's sizes. */
const COSTLY_MS = 10;
/**
 * A larger size than the one chosen, within this factor of the best time a row, is close
 * enough that a slow spell on its rounds may have decided against it: the chosen size and
 * those run again, in turn, up to CONFIRM_ROUNDS passes within CONFIRM_MS, until none is.
 */
const CONTESTED = 1.25;
const CONFIRM_ROUNDS = 12;
const CONFIRM_MS = 250;

/** 1, 2, 4, ... up to `cap`, with `cap` itself last. */
export function probeSizes(cap: number): number[] {
  const sizes: number[] = [];
  for (let s = 1; s < cap; s *= 2) sizes.push(s);
  sizes.push(cap);
  return sizes;
}

/** The largest size whose time per row is within TOLERANCE of the best. */
export function chooseBatchSize(perRowMs: Readonly<Record<number, number>>): number {
  const sizes = Object.keys(perRowMs).map(Number);
  if (sizes.length === 0) throw new RangeError('no batch size was probed');
  const best = Math.min(...sizes.map((s) => perRowMs[s]!));
  return Math.max(...sizes.filter((s) => perRowMs[s]! <= best * (1 + TOLERANCE)));
}

/**
 * Each input's dims for one row: the model's fixed dims, the dynamic ones from `shapes`
 * (a fixed shape, or a range's opt). A string says which input has an axis left open.
 */
export function probeItemDims(inputs: readonly TensorInfo[], shapes: Readonly<Record<string, ShapeRange>>): Record<string, number[]> | string {
  const out: Record<string, number[]> = {};
  for (const info of inputs) {
    const dims = bareDims(info, shapes[info.name], true).slice(1);
    if (dims.some((d) => d < 0)) return `input '${info.name}' has a dynamic axis beyond the batch (shape ${JSON.stringify(info.shape)}) and no 'shapes' entry to fix it`;
    out[info.name] = dims;
  }
  return out;
}

/**
 * Inputs of `rows` rows: zeros for other types (valid ids, masks), and each row of a float
 * input the same sine wave, computed once per input (`waves`) and copied: only the time of
 * a run matters here, and computing every element of every batch kept the JS thread busy
 * 34.9 ms in a build of the PP-OCRv4 recognizer (a CPU profile).
 */
export function syntheticFeeds(inputs: readonly TensorInfo[], item: Record<string, number[]>, rows: number, waves: Map<string, Float32Array>): Feeds {
  const feeds: Feeds = {};
  for (const info of inputs) {
    const dims = [rows, ...item[info.name]!];
    const data = typedArrayFor(info.dtype, dims.reduce((a, b) => a * b, 1));
    if (data instanceof Float32Array || data instanceof Float64Array) {
      const size = data.length / rows;
      let wave = waves.get(info.name);
      if (!wave) {
        wave = new Float32Array(size);
        for (let i = 0; i < size; i++) wave[i] = Math.sin(i * 0.001);
        waves.set(info.name, wave);
      }
      for (let r = 0; r < rows; r++) data.set(wave, r * size);
    }
    feeds[info.name] = { data, dims, type: info.dtype };
  }
  return feeds;
}

/** Two rows, distinct where the input is float (each a sine wave of its own phase), zeros elsewhere: `rows` 0, 1 or both. */
function distinctRows(inputs: readonly TensorInfo[], item: Record<string, number[]>, which: readonly number[]): Feeds {
  const feeds: Feeds = {};
  for (const info of inputs) {
    const dims = [which.length, ...item[info.name]!];
    const data = typedArrayFor(info.dtype, dims.reduce((a, b) => a * b, 1));
    if (data instanceof Float32Array || data instanceof Float64Array) {
      const size = data.length / which.length;
      which.forEach((r, k) => {
        for (let i = 0; i < size; i++) data[k * size + i] = Math.sin(i * 0.001 + 0.5 + 1.3 * r);
      });
    }
    feeds[info.name] = { data, dims, type: info.dtype };
  }
  return feeds;
}

/** Merged rows within this share of the largest magnitude of the rows alone: batches of other sizes take other kernels' float rounding. */
const ROW_TOLERANCE = 1e-4;

/**
 * Whether the open axis 0 is a batch axis: two distinct rows, run alone and then merged,
 * must come back as they went, each output with one row per input row and each merged row
 * within float rounding of the same row alone. An axis 0 that is a sequence (a signal
 * filtered along it, tokens attending to each other) would mix merged requests' rows
 * silently, and outputs that are not per row (boxes kept by NMS) cannot be split. Returns
 * why it is not one, or undefined. Where the merged run fails, undefined: the probe says it.
 */
export async function checkBatchAxis(
  run: (feeds: Feeds) => Promise<{ outputs?: Record<string, TensorLike> }>,
  inputs: readonly TensorInfo[],
  item: Record<string, number[]>,
): Promise<string | undefined> {
  // Side by side, on instances of their own where there are several. Copied: a backend
  // may reuse its result memory for the next run.
  const alone = (await Promise.all([0, 1].map((r) => run(distinctRows(inputs, item, [r]))))).map(({ outputs }) =>
    outputs && Object.fromEntries(Object.entries(outputs).map(([n, t]) => [n, { ...t, data: t.data.slice() }])));
  if (!alone[0] || !alone[1]) return undefined;
  let merged: Record<string, TensorLike> | undefined;
  try {
    merged = (await run(distinctRows(inputs, item, [0, 1]))).outputs;
  } catch {
    return undefined;
  }
  if (!merged) return undefined;
  for (const [name, t] of Object.entries(merged)) {
    const a = alone[0]![name];
    const b = alone[1]![name];
    if (!a || !b) continue;
    for (const [rows, got] of [[1, a], [1, b], [2, t]] as const) {
      if (got.dims[0] !== rows) return `output '${name}' has ${String(got.dims[0])} rows on axis 0 for ${rows} input row${rows > 1 ? 's' : ''}`;
    }
    if (t.data.length !== a.data.length + b.data.length) return `output '${name}' has ${JSON.stringify(t.dims)} for two rows, and ${JSON.stringify(a.dims)} for one`;
    for (const [k, row] of [a, b].entries()) {
      const offset = k * row.data.length;
      let scale = 0;
      for (let i = 0; i < row.data.length; i++) {
        const v = Math.abs(Number(row.data[i]));
        if (Number.isFinite(v)) scale = Math.max(scale, v);
      }
      for (let i = 0; i < row.data.length; i++) {
        const want = Number(row.data[i]);
        const got = Number(t.data[offset + i]);
        // Equal, infinities and NaN (a mask of zeros, as the probe's integer inputs are) included.
        if (got === want || (Number.isNaN(want) && Number.isNaN(got))) continue;
        if (!(Math.abs(got - want) <= ROW_TOLERANCE * scale)) {
          return `row ${k} of output '${name}' changes when another row runs beside it (${want} alone, ${got} merged, at element ${i})`;
        }
      }
    }
  }
  return undefined;
}

/**
 * Times batches of 1, 2, 4, ... rows up to `cap`, the same batch on `instances` instances
 * at once: batches only form under load, when every instance is busy and they share the
 * machine's caches and memory bandwidth. After one unmeasured round (which also warms the
 * instances), each size's time is the mean of its concurrent runs, and the fastest round
 * is kept: `run` gives the backend's own compute time, which the host's thread wake-ups
 * do not blur, or better its CPU time (`cpuMs`), which other work on the machine does not
 * lengthen either. The first pass stops at a costly size slower per row than the best on a
 * warm round (past the caches, larger batches only get slower); the next rounds take the
 * sizes left in turn, so that the machine's drift falls on all of them; then a larger size
 * that came within CONTESTED of the best is run again beside the chosen one until it wins or
 * the passes run out. A size whose run
 * fails ends the sizes too (`failed`), where a smaller one ran: a model may declare an open
 * axis 0 and still run one row only. A failure at one row is the probe's own.
 */
export async function probeBatchSize(
  run: (feeds: Feeds) => Promise<{ computeMs: number; cpuMs?: number }>,
  inputs: readonly TensorInfo[],
  item: Record<string, number[]>,
  cap: number,
  instances = 1,
): Promise<Omit<BatchProbe, 'source'>> {
  // A backend may transfer a run's buffers away until it settles: each run its own.
  const waves = new Map<string, Float32Array>();
  const feedsFor = (rows: number): Feeds[] => Array.from({ length: instances }, () => syntheticFeeds(inputs, item, rows, waves));
  const round = async (all: Feeds[]): Promise<number> => {
    const times = await Promise.all(all.map(async (f) => {
      const r = await run(f);
      return r.cpuMs ?? r.computeMs;
    }));
    return times.reduce((a, b) => a + b, 0) / times.length;
  };
  await round(feedsFor(1));
  const fastest = new Map<number, number>();
  const feeds = new Map<number, Feeds[]>();
  const started = performance.now();
  let best = Number.POSITIVE_INFINITY;
  let failed: BatchProbe['failed'];
  for (const rows of probeSizes(cap)) {
    const all = feedsFor(rows);
    let ms: number;
    try {
      ms = await round(all);
    } catch (e) {
      if (rows === 1) throw e;
      failed = { rows, message: (e as Error).message };
      break;
    }
    feeds.set(rows, all);
    const slower = (): boolean => ms / rows > best * (1 + TOLERANCE);
    // A size's first run pays for its memory: judge it on a second run.
    if (slower()) ms = Math.min(ms, await round(all));
    fastest.set(rows, ms);
    best = Math.min(best, ms / rows);
    if (ms >= COSTLY_MS && slower()) break;
  }
  const again = async (sizes: Iterable<number>): Promise<void> => {
    for (const rows of sizes) fastest.set(rows, Math.min(fastest.get(rows)!, await round(feeds.get(rows)!)));
  };
  for (let pass = 1; pass < MAX_ROUNDS; pass++) {
    const spent = performance.now() - started;
    if (spent >= MIN_MS && (pass >= MIN_ROUNDS || spent >= BUDGET_MS)) break;
    await again(feeds.keys());
  }
  // The choice is kept in the engine cache for every later build on this machine, so a near
  // miss by a larger size is measured again before it stands. Without this, 6 of 44 INT8
  // classifier builds on a 2-core VM chose 2 or 4 rows (8, usually the fastest, read 7-17 %
  // slower a row than the size chosen), and the bench's INT8 engine served 1437-1536 req/s
  // at 64 in flight on batches of 2 or 4 against 1495-1917 on batches of 8; with it, 44
  // of 44 chose 8 (docs/engine.md).
  const confirmStarted = performance.now();
  for (let pass = 0; pass < CONFIRM_ROUNDS && performance.now() - confirmStarted < CONFIRM_MS; pass++) {
    const perRow = perRowOf(fastest);
    const chosen = chooseBatchSize(perRow);
    const best = Math.min(...Object.values(perRow));
    const contested = [...feeds.keys()].filter((rows) => rows > chosen && perRow[rows]! <= best * CONTESTED);
    if (contested.length === 0) break;
    await again([chosen, ...contested]);
  }
  const perRowMs = perRowOf(fastest);
  return { perRowMs, chosen: chooseBatchSize(perRowMs), ...(failed && { failed }) };
}

function perRowOf(fastest: ReadonlyMap<number, number>): Record<number, number> {
  const perRowMs: Record<number, number> = {};
  for (const [rows, ms] of fastest) perRowMs[rows] = ms / rows;
  return perRowMs;
}

/** checkBatchAxis's finding as stored in the engine cache (null: a batch axis), or undefined where the payload is not one. */
export function parseAxisCheck(payload: Uint8Array): { notBatch: string | null } | undefined {
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as { notBatch?: unknown };
    return v.notBatch === null || typeof v.notBatch === 'string' ? { notBatch: v.notBatch } : undefined;
  } catch {
    return undefined;
  }
}

/** The probe as stored in the engine cache, or undefined where the payload is not one. */
export function parseProbe(payload: Uint8Array): Omit<BatchProbe, 'source'> | undefined {
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as { perRowMs?: unknown; chosen?: unknown; failed?: { rows?: unknown; message?: unknown } };
    const perRowMs = v.perRowMs as Record<string, unknown> | undefined;
    if (!perRowMs || typeof perRowMs !== 'object' || !Number.isInteger(v.chosen) || (v.chosen as number) < 1) return undefined;
    const out: Record<number, number> = {};
    for (const [k, ms] of Object.entries(perRowMs)) {
      if (!Number.isInteger(Number(k)) || typeof ms !== 'number' || !(ms > 0)) return undefined;
      out[Number(k)] = ms;
    }
    if (!((v.chosen as number) in out)) return undefined;
    if (v.failed === undefined) return { perRowMs: out, chosen: v.chosen as number };
    const { rows, message } = v.failed;
    if (!Number.isInteger(rows) || (rows as number) < 2 || typeof message !== 'string') return undefined;
    return { perRowMs: out, chosen: v.chosen as number, failed: { rows: rows as number, message } };
  } catch {
    return undefined;
  }
}
