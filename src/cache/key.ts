/**
 * The engine cache key (DESIGN.md decision 11): a SHA-256 over the model's bytes,
 * the build options, the backend and its version, and whatever else the backend
 * says its artifact depends on (for TensorRT: the library version and build, the
 * GPU's compute capability and name).
 */
import { createHash, webcrypto } from 'node:crypto';

export interface CacheKeyParts {
  /** SHA-256 (hex) of the model bytes, from `hashBytes`. */
  modelHash: string;
  /** Build options that change the artifact (precision, shapes, quantization settings, data hashes). */
  options: Readonly<Record<string, unknown>>;
  backend: string;
  backendVersion: string;
  /** Backend-specific parts: TensorRT passes library version/build and GPU name/compute capability. */
  backendParts?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * SHA-256 (hex) computed on libuv's thread pool (WebCrypto's digest), not on the JS thread:
 * hashing the 10.8 MB recognizer there held the event loop for milliseconds each time.
 */
export async function hashBytes(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/** JSON with object keys sorted at every level, so equal options give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
}

export function cacheKey(parts: CacheKeyParts): string {
  const text = canonicalJson({
    v: 1,
    model: parts.modelHash,
    options: parts.options,
    backend: parts.backend,
    backendVersion: parts.backendVersion,
    backendParts: parts.backendParts ?? {},
  });
  return createHash('sha256').update(text).digest('hex');
}

/**
 * A hash of a data set given as an array (of typed arrays or records of tensors),
 * or undefined when it is a lazy iterable that cannot be read twice.
 */
export function hashDataset(data: unknown): string | undefined {
  if (data === undefined) return 'none';
  const h = createHash('sha256');
  if (ArrayBuffer.isView(data)) {
    h.update(data.constructor.name);
    return h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
  }
  if (!Array.isArray(data)) return undefined;
  const add = (x: unknown): void => {
    if (ArrayBuffer.isView(x)) {
      h.update(x.constructor.name);
      h.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    } else if (x && typeof x === 'object') {
      for (const k of Object.keys(x).sort()) {
        h.update(`|${k}:`);
        add((x as Record<string, unknown>)[k]);
      }
    } else {
      h.update(`|${String(x)}`);
    }
  };
  h.update(`n=${data.length}`);
  for (const item of data) add(item);
  return h.digest('hex');
}
