/** IDX files (the MNIST format): big-endian header, then the values; gzip handled with zlib. */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { TensorrtNodeError } from '../errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { size: number; read: (v: DataView, o: number) => number; make: (n: number) => IdxArray['data'] }> = {
  0x08: { size: 1, read: (v, o) => v.getUint8(o), make: (n) => new Uint8Array(n) },
  0x09: { size: 1, read: (v, o) => v.getInt8(o), make: (n) => new Int8Array(n) },
  0x0b: { size: 2, read: (v, o) => v.getInt16(o), make: (n) => new Int16Array(n) },
  0x0c: { size: 4, read: (v, o) => v.getInt32(o), make: (n) => new Int32Array(n) },
  0x0d: { size: 4, read: (v, o) => v.getFloat32(o), make: (n) => new Float32Array(n) },
  0x0e: { size: 8, read: (v, o) => v.getFloat64(o), make: (n) => new Float64Array(n) },
};

function idxError(path: string, message: string): TensorrtNodeError {
  return new TensorrtNodeError('EINPUT', `idx file '${path}': ${message}`, { tensor: path, expected: 'an IDX file', received: message });
}

export function parseIdx(bytes: Uint8Array, path = '(bytes)'): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw idxError(path, 'bad magic number');
  const type = TYPES[bytes[2]!];
  if (!type) throw idxError(path, `unknown element type 0x${bytes[2]!.toString(16)}`);
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw idxError(path, 'truncated header');
  const dims = Array.from({ length: rank }, (_, k) => view.getUint32(4 + 4 * k));
  const count = dims.reduce((a, d) => a * d, 1);
  const offset = 4 + 4 * rank;
  if (bytes.length < offset + count * type.size) throw idxError(path, `truncated: ${bytes.length - offset} bytes of data for ${count} values`);
  let data: IdxArray['data'];
  if (type.size === 1) {
    data = type.make(count);
    (data as Uint8Array).set(bytes.subarray(offset, offset + count));
  } else {
    data = type.make(count);
    for (let i = 0; i < count; i++) data[i] = type.read(view, offset + i * type.size);
  }
  return { dims, data };
}

export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new TensorrtNodeError('EINPUT', `cannot read '${path}': ${(e as Error).message}`, { tensor: path });
  }
  return parseIdx(bytes, path);
}

export interface IdxImageOptions {
  /** Pixel transform: x → (x / scale − mean) / std. Defaults give raw 0..255 values. */
  scale?: number;
  mean?: number;
  std?: number;
  /** Shape of one sample (default [1, 1, rows, cols]). */
  dims?: number[];
  /** First sample and how many. */
  start?: number;
  count?: number;
}

/** Images of an IDX file as float32 samples { data, dims } (one per image). */
export function idxImages(idx: IdxArray, options: IdxImageOptions = {}): { data: Float32Array; dims: number[] }[] {
  const [n = 0, ...rest] = idx.dims;
  const size = rest.reduce((a, d) => a * d, 1);
  const dims = options.dims ?? [1, 1, ...rest];
  if (dims.reduce((a, d) => a * d, 1) !== size) throw idxError('(images)', `dims [${dims}] do not hold ${size} values`);
  const scale = options.scale ?? 1;
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  const start = options.start ?? 0;
  const end = Math.min(n, start + (options.count ?? n));
  const out: { data: Float32Array; dims: number[] }[] = [];
  for (let i = start; i < end; i++) {
    const data = new Float32Array(size);
    for (let j = 0; j < size; j++) data[j] = (idx.data[i * size + j]! / scale - mean) / std;
    out.push({ data, dims: [...dims] });
  }
  return out;
}
