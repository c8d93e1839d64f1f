/**
 * Calibration and validation data from files: a folder of images, .npy files, or
 * MNIST-style idx files. Each sample is one model input tensor, with a label where the
 * source carries one (image sub-folders, an idx labels file).
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { TensorrtNodeError } from '../errors.js';
import type { TensorLike } from '../tensor.js';
import { idxImages, readIdx } from './idx.js';
import { IMAGE_EXTENSIONS, listImages, loadImageTensor, type ImageOptions } from './images.js';
import { readNpy } from './npy.js';

export { parseIdx, readIdx, idxImages, type IdxArray, type IdxImageOptions } from './idx.js';
export { parseNpy, readNpy, encodeNpy } from './npy.js';
export { listImages, loadImageTensor, pixelsToTensor, type ImageOptions } from './images.js';

export interface Sample {
  tensor: TensorLike;
  label?: number;
}

export interface DataSourceOptions {
  /** The model input's shape (-1 for dynamic axes): sets image size, channels and layout defaults. */
  inputShape: readonly number[];
  /** Image preprocessing (size defaults from inputShape). */
  image?: Partial<ImageOptions>;
  /** For idx images: (x / scale − mean) / std with scalars. */
  scale?: number;
  mean?: number;
  std?: number;
  /** idx labels file for idx images. */
  labels?: string;
  /** First sample and how many. */
  start?: number;
  count?: number;
}

export type DataKind = 'images' | 'npy' | 'idx';

export async function detectKind(path: string): Promise<DataKind> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    throw new TensorrtNodeError('EINPUT', `data path '${path}' not found`, { tensor: path, expected: 'an image folder, .npy file/folder or idx file', received: (e as Error).message });
  }
  if (s.isDirectory()) {
    const names = await readdir(path);
    if (names.some((n) => extname(n).toLowerCase() === '.npy')) return 'npy';
    return 'images';
  }
  if (path.toLowerCase().endsWith('.npy')) return 'npy';
  if (IMAGE_EXTENSIONS.has(extname(path).toLowerCase())) return 'images';
  return 'idx';
}

/** Image size and layout implied by a 4-D model input shape. */
function imageDefaults(shape: readonly number[]): Partial<ImageOptions> {
  if (shape.length !== 4) return {};
  const nhwc = (shape[3] === 1 || shape[3] === 3) && !(shape[1] === 1 || shape[1] === 3);
  const [h, w, c] = nhwc ? [shape[1]!, shape[2]!, shape[3]!] : [shape[2]!, shape[3]!, shape[1]!];
  return { ...(h > 0 ? { height: h } : {}), ...(w > 0 ? { width: w } : {}), channels: c === 1 ? 1 : 3, layout: nhwc ? 'nhwc' : 'nchw' };
}

/** Load samples from a path (see DataSourceOptions). */
export async function loadSamples(path: string, options: DataSourceOptions): Promise<Sample[]> {
  const kind = await detectKind(path);
  const start = options.start ?? 0;
  const count = options.count ?? Infinity;
  if (kind === 'idx') {
    const idx = await readIdx(path);
    const sampleDims = options.inputShape.length > 0 ? options.inputShape.map((d) => (d < 0 ? 1 : d)) : undefined;
    const images = idxImages(idx, { scale: options.scale ?? 1, mean: options.mean ?? 0, std: options.std ?? 1, start, count: Number.isFinite(count) ? count : undefined, ...(sampleDims ? { dims: sampleDims } : {}) });
    const labels = options.labels ? (await readIdx(options.labels)).data : undefined;
    if (labels && labels.length < start + images.length) throw new TensorrtNodeError('EINPUT', `labels file '${options.labels}' has ${labels.length} labels for ${start + images.length} images`, { tensor: options.labels! });
    return images.map((t, i) => ({ tensor: t, ...(labels ? { label: Number(labels[start + i]) } : {}) }));
  }
  if (kind === 'npy') {
    const files = (await stat(path)).isDirectory()
      ? (await readdir(path)).filter((n) => n.toLowerCase().endsWith('.npy')).sort().map((n) => join(path, n))
      : [path];
    const out: Sample[] = [];
    const rank = options.inputShape.length;
    for (const f of files) {
      const t = await readNpy(f);
      // One sample per file, or a stack of samples along a leading extra axis.
      if (rank > 0 && t.dims.length === rank + 1) {
        const size = t.dims.slice(1).reduce((a, d) => a * d, 1);
        for (let k = 0; k < t.dims[0]!; k++) out.push({ tensor: { data: t.data.subarray(k * size, (k + 1) * size) as TensorLike['data'], dims: t.dims.slice(1), type: t.type } });
      } else out.push({ tensor: t });
    }
    return out.slice(start, start + count);
  }
  const files = (await stat(path)).isDirectory() ? await listImages(path) : [{ path }];
  const image = { ...imageDefaults(options.inputShape), ...options.image } as ImageOptions;
  if (!(image.width > 0 && image.height > 0)) {
    throw new TensorrtNodeError('EINPUT', 'image size unknown: the model input has dynamic height/width; give --width and --height', { tensor: path });
  }
  const chosen = files.slice(start, start + count);
  const out: Sample[] = [];
  for (const f of chosen) out.push({ tensor: await loadImageTensor(f.path, image), ...('label' in f && f.label !== undefined ? { label: f.label } : {}) });
  return out;
}
