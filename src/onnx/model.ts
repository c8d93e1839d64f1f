/** Read and write ONNX ModelProto, with tensors stored as external data beside the model. */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { TensorrtNodeError } from '../errors.js';
import { DataType, onnx, toNumber, type GraphProto, type ModelProto, type TensorProto } from './proto.js';
import { modelSource, type ModelSource } from './source.js';

export interface ReadModelOptions {
  /** Folder that external-data paths are relative to (default: the model file's folder). */
  baseDir?: string;
}

/** Highest ai.onnx opset the bundled onnxruntime-node runs. */
export const MAX_SUPPORTED_OPSET = 23;

function modelError(message: string, cause?: unknown): TensorrtNodeError {
  return new TensorrtNodeError('EMODEL', message, {}, cause === undefined ? undefined : { cause });
}

/**
 * Decode a model from a path, a file: URL or bytes. External tensors are loaded into raw_data so
 * the returned model is self-contained. Throws EMODEL for bytes that are not a model.
 */
export async function readModel(given: ModelSource, options: ReadModelOptions = {}): Promise<ModelProto> {
  const source = modelSource(given);
  let bytes: Uint8Array;
  let baseDir = options.baseDir;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (e) {
      throw modelError(`cannot read model file '${source}': ${(e as Error).message}`, e);
    }
    baseDir ??= dirname(source);
  } else {
    bytes = source;
  }
  const model = decodeModel(bytes);
  await loadExternalData(model, baseDir);
  return model;
}

/** Protobuf's limit on one message: a model past it keeps its weights outside. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/**
 * The model's bytes with its external tensors (weights in files beside it, as large exports
 * keep them) read in from `baseDir`, or the bytes as they are where it has none. The engine
 * hands a model on as bytes (to its workers, the cache, TensorRT's parser), where paths
 * relative to the model's folder no longer resolve; and its cache key then covers the weights.
 */
export async function inlineExternalData(bytes: Uint8Array, baseDir: string | undefined): Promise<Uint8Array> {
  // An external tensor names its file under the key 'location': without the word, none is.
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf('location') < 0) return bytes;
  const model = decodeModel(bytes);
  const external = allTensors(model).filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  if (external.length === 0) return bytes;
  if (baseDir === undefined) {
    const location = external[0]!.externalData?.find((e) => e.key === 'location')?.value;
    throw modelError(`tensor '${external[0]!.name}' is stored in external file '${location}', which model bytes cannot point to: pass the model as a path (its folder holds that file)`);
  }
  await loadExternalData(model, baseDir);
  const size = bytes.byteLength + external.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
  if (size > PROTOBUF_LIMIT) {
    throw modelError(`the model with its external data is ${(size / 2 ** 30).toFixed(1)} GiB, past protobuf's 2 GiB: tensorrt-node hands models on whole and does not run models this large yet`);
  }
  return writeModel(model);
}

/** Decode and check that the bytes hold a model with a graph. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw modelError(`not a valid ONNX model (protobuf decode failed: ${(e as Error).message})`, e);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw modelError('ONNX model has no graph (or an empty one)');
  }
  if (toNumber(model.irVersion) <= 0) {
    throw modelError('ONNX model has no ir_version: the bytes are probably not an ONNX model');
  }
  checkOpsets(model);
  return model;
}

/** Opset of the default domain; EMODEL when missing or newer than the runtime knows. */
export function checkOpsets(model: ModelProto): number {
  const imports = model.opsetImport ?? [];
  const main = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!main) throw modelError('ONNX model imports no ai.onnx opset');
  const version = toNumber(main.version);
  if (!Number.isInteger(version) || version < 1 || version > MAX_SUPPORTED_OPSET) {
    throw modelError(`unknown ai.onnx opset ${version} (supported: 1..${MAX_SUPPORTED_OPSET})`);
  }
  return version;
}

/** The model's ai.onnx opset version. */
export function mainOpset(model: ModelProto): number {
  const main = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return main ? toNumber(main.version) : 0;
}

async function loadExternalData(model: ModelProto, baseDir: string | undefined): Promise<void> {
  const tensors = allTensors(model);
  const files = new Map<string, Buffer>();
  for (const t of tensors) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw modelError(`tensor '${t.name}' is external but names no location`);
    if (baseDir === undefined) {
      throw modelError(`tensor '${t.name}' is stored in external file '${location}': pass the model as a path or give baseDir`);
    }
    // External paths are relative and must stay inside the model's folder (ONNX's rule).
    const rel = normalize(location);
    if (isAbsolute(rel) || rel.split(sep).includes('..')) {
      throw modelError(`tensor '${t.name}': external data path '${location}' leaves the model's folder`);
    }
    const path = join(baseDir, rel);
    let file = files.get(path);
    if (!file) {
      try {
        file = await readFile(path);
      } catch (e) {
        throw modelError(`tensor '${t.name}': cannot read external data '${path}': ${(e as Error).message}`, e);
      }
      files.set(path, file);
    }
    const offset = Number(entries.get('offset') ?? 0);
    const length = entries.has('length') ? Number(entries.get('length')) : file.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= file.length)) {
      throw modelError(`tensor '${t.name}': external data range ${offset}+${length} outside '${path}' (${file.length} bytes)`);
    }
    t.rawData = new Uint8Array(file.subarray(offset, offset + length));
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
  }
}

/** Initializers of the main graph and of subgraphs (If/Loop bodies). */
function allTensors(model: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visit = (g: GraphProto | null | undefined): void => {
    if (!g) return;
    out.push(...(g.initializer ?? []));
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) out.push(a.t);
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(model.graph);
  return out;
}

/** Encode a model to bytes. */
export function writeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export type TensorArray = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Float64Array;

/** A TensorProto's values as a typed array (a copy). Float16 and other types: EMODEL. */
export function tensorValues(t: TensorProto): TensorArray {
  const type = t.dataType ?? 0;
  const count = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const fromRaw = <T>(ctor: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number }): T => {
    const copy = new Uint8Array(raw!.length);
    copy.set(raw!);
    if (copy.length !== count * ctor.BYTES_PER_ELEMENT) {
      throw modelError(`tensor '${t.name}': raw_data has ${copy.length} bytes, dims need ${count * ctor.BYTES_PER_ELEMENT}`);
    }
    return new ctor(copy.buffer, 0, count);
  };
  switch (type) {
    case DataType.FLOAT:
      return raw ? fromRaw(Float32Array) : Float32Array.from(t.floatData ?? []);
    case DataType.DOUBLE:
      return raw ? fromRaw(Float64Array) : Float64Array.from(t.doubleData ?? []);
    case DataType.INT8:
      return raw ? fromRaw(Int8Array) : Int8Array.from(t.int32Data ?? []);
    case DataType.UINT8:
      return raw ? fromRaw(Uint8Array) : Uint8Array.from(t.int32Data ?? []);
    case DataType.INT32:
      return raw ? fromRaw(Int32Array) : Int32Array.from(t.int32Data ?? []);
    case DataType.INT64:
      return raw ? fromRaw(BigInt64Array) : BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNumber(v))));
    default:
      throw modelError(`tensor '${t.name}': data type ${type} is not supported here`);
  }
}

const dataTypeOf = (a: TensorArray): number =>
  a instanceof Float32Array
    ? DataType.FLOAT
    : a instanceof Int8Array
      ? DataType.INT8
      : a instanceof Uint8Array
        ? DataType.UINT8
        : a instanceof Int32Array
          ? DataType.INT32
          : a instanceof BigInt64Array
            ? DataType.INT64
            : DataType.DOUBLE;

/** A TensorProto holding `values` in raw_data. */
export function makeTensor(name: string, values: TensorArray, dims: readonly number[]): TensorProto {
  const count = dims.reduce((a, d) => a * d, 1);
  if (count !== values.length) throw modelError(`tensor '${name}': ${values.length} values for dims [${dims.join(',')}]`);
  return onnx.TensorProto.create({
    name,
    dataType: dataTypeOf(values),
    dims: [...dims],
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
  });
}
