/**
 * Concatenating requests along axis 0 into one batch, and splitting the results back;
 * a request larger than a batch as row views, and its parts' results joined again.
 */
import { ARRAY_OF, type TensorDtype, type TensorLike, type TypedArray } from '../tensor.js';
import type { BufferPool } from './pool.js';

export interface BatchTensor {
  data: TypedArray;
  dims: number[];
  type: TensorDtype;
}

/** Whether two requests can share a batch: same dims beyond axis 0 for every input. */
export function sameItemShape(a: Record<string, BatchTensor>, b: Record<string, BatchTensor>): boolean {
  for (const name of Object.keys(a)) {
    const da = a[name]!.dims;
    const db = b[name]!.dims;
    if (da.length !== db.length) return false;
    for (let i = 1; i < da.length; i++) if (da[i] !== db[i]) return false;
  }
  return true;
}

/**
 * One fresh buffer per input holding every request's data in order along axis 0.
 * The buffers belong to the batch, so the backend may transfer them.
 */
export function mergeBatch(requests: readonly Record<string, BatchTensor>[], total: number, pool?: BufferPool): Record<string, BatchTensor> {
  const first = requests[0]!;
  const merged: Record<string, BatchTensor> = {};
  for (const [name, t] of Object.entries(first)) {
    const dims = [total, ...t.dims.slice(1)];
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const out = allocate(t.type, total * per, pool);
    let offset = 0;
    for (const r of requests) {
      const src = r[name]!;
      (out as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(src.data as ArrayLike<number | bigint>, offset);
      offset += src.dims[0]! * per;
    }
    merged[name] = { data: out, dims, type: t.type };
  }
  return merged;
}

/**
 * Views of each output for each request (no copy: `subarray` over the batch's
 * result buffers). `sizes` are the requests' batch sizes in merge order.
 */
export function splitBatch(outputs: Record<string, TensorLike>, sizes: readonly number[]): Record<string, TensorLike>[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const misfit = rowsMisfit(outputs, total);
  if (misfit) throw new Error(misfit);
  const parts: Record<string, TensorLike>[] = sizes.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    const tail = t.dims.slice(1);
    const per = tail.reduce((a, b) => a * b, 1);
    let row = 0;
    for (let i = 0; i < sizes.length; i++) {
      const n = sizes[i]!;
      const data = t.data.subarray(row * per, (row + n) * per) as TypedArray;
      parts[i]![name] = t.type === undefined ? { data, dims: [n, ...tail] } : { data, dims: [n, ...tail], type: t.type };
      row += n;
    }
  }
  return parts;
}

/** Which output does not have the batch's rows on axis 0 (its axis 0 is not a batch axis), or undefined. */
export function rowsMisfit(outputs: Record<string, TensorLike>, rows: number): string | undefined {
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== rows) return `output '${name}' has ${String(t.dims[0])} rows on axis 0 for a batch of ${rows}`;
  }
  return undefined;
}

/** A request's tensors copied into buffers of their own (for a request that runs alone). */
export function ownFeeds(feeds: Record<string, BatchTensor>, pool?: BufferPool): Record<string, BatchTensor> {
  const out: Record<string, BatchTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const data = allocate(t.type, t.data.length, pool);
    (data as unknown as { set(a: ArrayLike<number | bigint>): void }).set(t.data as ArrayLike<number | bigint>);
    out[name] = { data, dims: [...t.dims], type: t.type };
  }
  return out;
}

function allocate(type: TensorDtype, length: number, pool: BufferPool | undefined): TypedArray {
  const Ctor = ARRAY_OF[type];
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  return new Ctor(pool ? pool.take(bytes) : new ArrayBuffer(bytes), 0, length);
}

/** Returns a batch's input buffers to the pool (those the backend gave back attached). */
export function recycle(feeds: Record<string, BatchTensor>, pool: BufferPool): void {
  for (const t of Object.values(feeds)) pool.give(t.data.buffer);
}

/** Views of tensors over `rows` rows from row `start` (axis 0). */
export function rowViews(feeds: Record<string, BatchTensor>, start: number, rows: number): Record<string, BatchTensor> {
  const out: Record<string, BatchTensor> = {};
  for (const name in feeds) {
    const t = feeds[name]!;
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    out[name] = { data: t.data.subarray(start * per, (start + rows) * per) as TypedArray, dims: [rows, ...t.dims.slice(1)], type: t.type };
  }
  return out;
}

/**
 * A split request's results: each part's rows written at its first row, along axis 0, into
 * `into[name]` where given and large enough (a caller's destination), else fresh memory.
 */
export function joinParts(
  parts: readonly { start: number; outputs: Record<string, TensorLike> }[],
  total: number,
  into?: Readonly<Record<string, TypedArray | Buffer>>,
): Record<string, TensorLike> {
  const joined: Record<string, TensorLike> = {};
  for (const name of Object.keys(parts[0]!.outputs)) {
    const first = parts[0]!.outputs[name]!;
    const inner = first.dims.slice(1);
    const per = inner.reduce((a, b) => a * b, 1);
    const dest = into?.[name];
    const data = dest && dest.byteLength >= total * per * first.data.BYTES_PER_ELEMENT
      ? new (first.data.constructor as new (b: ArrayBufferLike, o: number, n: number) => TypedArray)(dest.buffer, dest.byteOffset, total * per)
      : typedLike(first.data, total * per);
    for (const p of parts) {
      const t = p.outputs[name]!;
      if (t.dims.length !== first.dims.length || t.dims.some((d, i) => i > 0 && d !== first.dims[i])) {
        throw new Error(`output '${name}' of a request split over batches has shape ${JSON.stringify(t.dims)} in one part and ${JSON.stringify(first.dims)} in another`);
      }
      (data as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(t.data as ArrayLike<number | bigint>, p.start * per);
    }
    joined[name] = first.type === undefined ? { data, dims: [total, ...inner] } : { data, dims: [total, ...inner], type: first.type };
  }
  return joined;
}

function typedLike(a: TypedArray, length: number): TypedArray {
  return new (a.constructor as new (n: number) => TypedArray)(length);
}
