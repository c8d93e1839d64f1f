/**
 * Checks and normalises what a caller hands to `engine.infer()`: a bare Buffer or
 * typed array for a single-input model, or a record of tensors. Every mistake is
 * an EINPUT error naming the tensor, what was expected and what came.
 */
import { inputError } from '../errors.js';
import { ARRAY_OF, type TensorDtype, type TensorInfo, type TensorLike, type TypedArray } from '../tensor.js';
import { bareDims, expectedShape, fmtShape, kindOf, type ShapeRange } from '../shapes.js';

/** An input or a record of inputs as `infer()` takes them. */
export type InferInput = TypedArray | Buffer | Record<string, TensorLike>;

/** A validated request: one tensor per model input, all sharing axis 0 when batched. */
export interface NormalizedFeeds {
  tensors: Record<string, { data: TypedArray; dims: number[]; type: TensorDtype }>;
  /** Size of axis 0 (1 for a model without a batch axis). */
  batch: number;
}

export function elementBytes(dtype: TensorDtype): number {
  return ARRAY_OF[dtype].BYTES_PER_ELEMENT;
}

export function typedArrayFor(dtype: TensorDtype, length: number): TypedArray {
  return new ARRAY_OF[dtype](length);
}

/** A typed array of `dtype` over existing memory. */
export function typedView(dtype: TensorDtype, buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray {
  return new ARRAY_OF[dtype](buffer, byteOffset, length);
}

/** A dim as written in JS, so that 1n or '1' does not read as the number 1. */
function dimText(d: unknown): string {
  if (typeof d === 'bigint') return `${d}n`;
  return typeof d === 'string' ? JSON.stringify(d) : String(d);
}

export function arrayKind(data: unknown): string {
  return Buffer.isBuffer(data) ? 'Buffer' : kindOf(data);
}

/** The runtime's Float16Array, where it has one (Node 24+). */
const Float16ArrayCtor = (globalThis as { Float16Array?: abstract new (...args: never[]) => ArrayBufferView }).Float16Array;

/**
 * A Float16Array's bits in a Uint16Array over the same memory, as the engine carries float16
 * (Node 24+ has Float16Array, and onnxruntime Tensors' float16 data is one there); undefined
 * for other arrays.
 */
function float16Bits(data: unknown): Uint16Array | undefined {
  if (Float16ArrayCtor === undefined || !(data instanceof Float16ArrayCtor)) return undefined;
  return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
}

/** Which dtypes a typed array can carry. Uint8Array also carries bool, and Uint16Array float16's bits. */
export function dtypesOf(data: TypedArray): TensorDtype[] {
  if (data instanceof Float32Array) return ['float32'];
  if (data instanceof Uint16Array) return ['uint16', 'float16'];
  if (float16Bits(data)) return ['float16'];
  if (data instanceof Float64Array) return ['float64'];
  if (data instanceof Int8Array) return ['int8'];
  if (data instanceof Uint8Array) return ['uint8', 'bool'];
  if (data instanceof Int16Array) return ['int16'];
  if (data instanceof Int32Array) return ['int32'];
  if (data instanceof Uint32Array) return ['uint32'];
  if (data instanceof BigInt64Array) return ['int64'];
  if (data instanceof BigUint64Array) return ['uint64'];
  return [];
}

export function isTypedArray(x: unknown): x is TypedArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

export function isDetached(data: TypedArray): boolean {
  // Node 20 has no ArrayBuffer.prototype.detached; constructing a view over a detached buffer throws.
  if (data.byteLength !== 0) return false;
  try {
    new Uint8Array(data.buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

export interface InputSpec {
  info: TensorInfo;
  range: ShapeRange | undefined;
  /** The model's names of the input's symbolic axes (null where unnamed), where known. */
  dimParams?: readonly (string | null)[];
}

/** Axes the model names alike (a sequence length shared by input_ids and attention_mask): their sizes must match. */
interface SharedAxis {
  param: string;
  places: { input: string; axis: number }[];
}

export class InputNormalizer {
  private readonly specs: readonly InputSpec[];
  private readonly byName: Map<string, InputSpec>;
  /** Whether axis 0 of every input is the batch axis. */
  private readonly batched: boolean;

  private readonly sharedAxes: SharedAxis[];
  /** Per input, the shape a request must have (expectedShape): the same for every request. */
  private readonly wants: Map<string, readonly number[]>;
  /** A single input's dims for a bare typed array (bareDims), and its elements after axis 0 (-1 where an axis is open). */
  private readonly bare: { dims: readonly number[]; rest: number } | undefined;

  constructor(specs: readonly InputSpec[], batched: boolean) {
    this.specs = specs;
    this.byName = new Map(specs.map((s) => [s.info.name, s]));
    this.batched = batched;
    // Computed once: per request they were several arrays of the JS thread's allocation.
    this.wants = new Map(specs.map((s) => [s.info.name, expectedShape(s.info, s.range)]));
    if (specs.length === 1) {
      const dims = bareDims(specs[0]!.info, specs[0]!.range, true);
      const rest = dims.slice(1);
      this.bare = { dims, rest: rest.some((d) => d < 0) ? -1 : rest.reduce((a, b) => a * b, 1) };
    }
    const byParam = new Map<string, SharedAxis>();
    for (const spec of specs) {
      spec.dimParams?.forEach((param, axis) => {
        // The batch axis has its own check, with its own message.
        if (param === null || (batched && axis === 0)) return;
        let shared = byParam.get(param);
        if (!shared) byParam.set(param, (shared = { param, places: [] }));
        shared.places.push({ input: spec.info.name, axis });
      });
    }
    this.sharedAxes = [...byParam.values()].filter((a) => a.places.length > 1);
  }

  normalize(input: unknown): NormalizedFeeds {
    if (isTypedArray(input)) return this.fromBare(input);
    if (input instanceof ArrayBuffer) {
      throw inputError(this.specs[0]?.info.name ?? 'input', 'a Buffer, a typed array or a record of tensors', 'an ArrayBuffer (wrap it in a typed array)');
    }
    // A plain array or a DataView would otherwise read as a record whose keys are indices.
    if (input === null || typeof input !== 'object' || Array.isArray(input) || input instanceof DataView) {
      throw inputError(this.specs.length === 1 ? this.specs[0]!.info.name : 'inputs', 'a Buffer, a typed array or a record of tensors', arrayKind(input));
    }
    return this.fromRecord(input as Record<string, unknown>);
  }

  private fromBare(data: TypedArray): NormalizedFeeds {
    if (this.specs.length !== 1) {
      throw inputError(
        'inputs',
        `a record with the model's ${this.specs.length} inputs (${this.specs.map((s) => s.info.name).join(', ')})`,
        `a bare ${arrayKind(data)}`,
      );
    }
    const spec = this.specs[0]!;
    const { name, dtype } = spec.info;
    if (isDetached(data)) throw inputError(name, `${dtype} data`, 'a detached buffer (byteLength 0)');
    const typed = this.reinterpret(name, dtype, data);
    // Shape: the model's, with dynamic axes from `shapes`; an open axis 0 from the length
    // (unbatched too: a model whose outputs have no batch axis still takes any axis 0).
    const { dims: bareDimsOnce, rest } = this.bare!;
    if (rest < 0) {
      throw inputError(name, `a record { ${name}: { data, dims } } or a 'shapes' option fixing ${fmtShape(spec.info.shape)}`, `a bare ${arrayKind(data)} for a dynamic shape`);
    }
    const dims = bareDimsOnce.slice();
    if (dims[0]! < 0) {
      if (typed.length === 0 || typed.length % rest !== 0) {
        throw inputError(name, `a multiple of ${rest * elementBytes(dtype)} bytes (${fmtShape(dims)} ${dtype})`, `${typed.byteLength} bytes`);
      }
      dims[0] = typed.length / rest;
    } else if (typed.length !== dims[0]! * rest) {
      throw inputError(name, `${dims[0]! * rest * elementBytes(dtype)} bytes (${fmtShape(dims)} ${dtype})`, `${typed.byteLength} bytes`);
    }
    this.checkRange(spec, dims);
    return { tensors: { [name]: { data: typed, dims, type: dtype } }, batch: this.batched ? dims[0]! : 1 };
  }

  /** A typed array of the input's dtype; Buffer / Uint8Array bytes are read as that dtype. */
  private reinterpret(name: string, dtype: TensorDtype, data: TypedArray): TypedArray {
    const bits = dtype === 'float16' ? float16Bits(data) : undefined;
    if (bits) return bits;
    if (dtypesOf(data).includes(dtype)) return data;
    if (data instanceof Uint8Array) {
      const size = elementBytes(dtype);
      if (data.byteLength % size !== 0) {
        throw inputError(name, `a byte length that is a multiple of ${size} (${dtype})`, `${data.byteLength} bytes`);
      }
      if (data.byteOffset % size === 0) return new ARRAY_OF[dtype](data.buffer, data.byteOffset, data.byteLength / size);
      // Unaligned Buffer (e.g. from Node's small-buffer pool): copy once into aligned memory.
      const copy = new Uint8Array(data.byteLength);
      copy.set(data);
      return new ARRAY_OF[dtype](copy.buffer, 0, data.byteLength / size);
    }
    const arrays = dtype === 'float16' && Float16ArrayCtor ? 'Uint16Array of its bits, Float16Array' : ARRAY_OF[dtype].name;
    throw inputError(name, `${dtype} (${arrays} or a Buffer of its bytes)`, arrayKind(data));
  }

  private fromRecord(record: Record<string, unknown>): NormalizedFeeds {
    for (const key of Object.keys(record)) {
      if (!this.byName.has(key)) {
        throw inputError(key, `one of the model's inputs (${this.specs.map((s) => s.info.name).join(', ')})`, `an unknown input '${key}'`);
      }
    }
    const tensors: NormalizedFeeds['tensors'] = {};
    let batch: number | undefined;
    let batchFrom = '';
    for (const spec of this.specs) {
      const { name, dtype } = spec.info;
      const t = record[name];
      if (t === undefined) throw inputError(name, `a tensor for input '${name}'`, 'nothing (missing input)');
      if (t === null || typeof t !== 'object') throw inputError(name, '{ data, dims } or an onnxruntime Tensor', arrayKind(t));
      const { data, dims, type } = t as { data?: unknown; dims?: unknown; type?: unknown };
      if (!isTypedArray(data)) throw inputError(name, `${dtype} data in a typed array`, `data of type ${arrayKind(data)}`);
      if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
        throw inputError(name, `dims: an array of non-negative integers, ${fmtShape(this.wants.get(name)!)}`, `dims ${Array.isArray(dims) ? `[${dims.map(dimText).join(',')}]` : arrayKind(dims)}`);
      }
      if (typeof type === 'string' && type !== dtype) throw inputError(name, `dtype ${dtype}`, `dtype ${type}`);
      if (isDetached(data)) throw inputError(name, `${dtype} data`, 'a detached buffer (byteLength 0)');
      const typed = this.reinterpret(name, dtype, data);
      const want = this.wants.get(name)!;
      const shapeOk = dims.length === want.length && want.every((w, i) => w < 0 || w === dims[i]);
      if (!shapeOk) throw inputError(name, `shape ${fmtShape(want)}`, `shape ${fmtShape(dims as number[])}`);
      const count = (dims as number[]).reduce((a, b) => a * b, 1);
      if (typed.length !== count) {
        throw inputError(name, `${count * elementBytes(dtype)} bytes for shape ${fmtShape(dims as number[])} ${dtype}`, `${typed.byteLength} bytes`);
      }
      this.checkRange(spec, dims as number[]);
      if (this.batched) {
        if (batch === undefined) {
          batch = dims[0] as number;
          batchFrom = name;
        } else if (dims[0] !== batch) {
          throw inputError(name, `batch ${batch} on axis 0 (as input '${batchFrom}')`, `batch ${dims[0] as number}`);
        }
      }
      tensors[name] = { data: typed, dims: [...(dims as number[])], type: dtype };
    }
    for (const { param, places } of this.sharedAxes) {
      const [first, ...rest] = places as [SharedAxis['places'][number], ...SharedAxis['places']];
      const size = tensors[first.input]!.dims[first.axis]!;
      for (const { input, axis } of rest) {
        const dims = tensors[input]!.dims;
        if (dims[axis] !== size) {
          const as = input === first.input ? `as its axis ${first.axis}` : `as input '${first.input}' has it`;
          throw inputError(input, `${size} on axis ${axis} (the model's axis '${param}', ${as})`, `shape ${fmtShape(dims)}`);
        }
      }
    }
    return { tensors, batch: this.batched ? batch ?? 1 : 1 };
  }

  private checkRange(spec: InputSpec, dims: readonly number[]): void {
    const r = spec.range;
    if (!r || Array.isArray(r)) return;
    const { min, max } = r as { min: readonly number[]; max: readonly number[] };
    for (let i = 0; i < dims.length; i++) {
      const lo = min[i];
      // The batch axis' max bounds each run, not a request: a longer one runs split.
      const hi = i === 0 && this.batched ? undefined : max[i];
      if ((lo !== undefined && dims[i]! < lo) || (hi !== undefined && hi >= 0 && dims[i]! > hi)) {
        throw inputError(spec.info.name, `shape within ${fmtShape(min)}..${fmtShape(max)}`, `shape ${fmtShape(dims)}`);
      }
    }
  }
}
