/** NumPy .npy files (format versions 1-3), little-endian, C order. */
import { readFile } from 'node:fs/promises';
import { TensorrtNodeError } from '../errors.js';
import type { TensorLike, TypedArray } from '../tensor.js';

function npyError(path: string, message: string): TensorrtNodeError {
  return new TensorrtNodeError('EINPUT', `npy file '${path}': ${message}`, { tensor: path, expected: 'a little-endian C-order .npy array', received: message });
}

const DESCR: Record<string, { size: number; make: (b: ArrayBuffer, o: number, n: number) => TypedArray | Float64Array; type: string }> = {
  '<f4': { size: 4, make: (b, o, n) => new Float32Array(b, o, n), type: 'float32' },
  '<f8': { size: 8, make: (b, o, n) => new Float64Array(b, o, n), type: 'float64' },
  '|u1': { size: 1, make: (b, o, n) => new Uint8Array(b, o, n), type: 'uint8' },
  '|i1': { size: 1, make: (b, o, n) => new Int8Array(b, o, n), type: 'int8' },
  '<i4': { size: 4, make: (b, o, n) => new Int32Array(b, o, n), type: 'int32' },
  '<i8': { size: 8, make: (b, o, n) => new BigInt64Array(b, o, n), type: 'int64' },
  '<f2': { size: 2, make: (b, o, n) => new Uint16Array(b, o, n), type: 'float16' },
};

/** Parse .npy bytes. float64 arrays are converted to float32 (what models take). */
export function parseNpy(bytes: Uint8Array, path = '(bytes)'): TensorLike {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw npyError(path, 'bad magic (not a .npy file)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start + headerLen) throw npyError(path, 'truncated header');
  // Buffer's latin1, not TextDecoder's: WHATWG's 'latin1' is windows-1252 (Node 22 and later).
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + start, headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw npyError(path, `unreadable header ${header.trim()}`);
  if (fortran === 'True') throw npyError(path, 'Fortran-order arrays are not supported (save with np.ascontiguousarray)');
  const kind = DESCR[descr === '<u1' ? '|u1' : descr === '<i1' ? '|i1' : descr];
  if (!kind) throw npyError(path, `dtype ${descr} is not supported (use float32, float64, uint8, int8, int32, int64 or float16, little-endian)`);
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const count = dims.reduce((a, d) => a * d, 1);
  const offset = start + headerLen;
  if (bytes.length - offset < count * kind.size) throw npyError(path, `truncated: ${bytes.length - offset} bytes of data for ${count} values`);
  const copy = new Uint8Array(bytes.subarray(offset, offset + count * kind.size)); // a copy (Buffer.slice would share)
  const data = kind.make(copy.buffer, 0, count);
  if (data instanceof Float64Array) return { data: Float32Array.from(data), dims, type: 'float32' };
  return { data, dims, type: kind.type };
}

export async function readNpy(path: string): Promise<TensorLike> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new TensorrtNodeError('EINPUT', `cannot read '${path}': ${(e as Error).message}`, { tensor: path });
  }
  return parseNpy(bytes, path);
}

/** Write a float32 array as .npy (version 1), for tests and tooling. */
export function encodeNpy(data: Float32Array, dims: readonly number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
