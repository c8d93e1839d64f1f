/** Image files → model input tensors: resize, scale, mean/std, layout and channel order (via @napi-rs/canvas). */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { TensorrtNodeError } from '../errors.js';

export interface ImageOptions {
  width: number;
  height: number;
  /** 3 (color) or 1 (gray). */
  channels?: 1 | 3;
  /** 'nchw' (default) or 'nhwc'. */
  layout?: 'nchw' | 'nhwc';
  /** 'rgb' (default) or 'bgr'. */
  channelOrder?: 'rgb' | 'bgr';
  /** Pixel values are divided by this first (default 255; 1 keeps 0..255). */
  scale?: number;
  /** Per-channel (or one) mean and std applied after scaling: (x / scale − mean) / std. */
  mean?: readonly number[];
  std?: readonly number[];
  /** 'stretch' (default) resizes to width×height; 'pad' keeps the aspect ratio and pads right/bottom with 0. */
  resize?: 'stretch' | 'pad';
}

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.avif']);

type CanvasModule = typeof import('@napi-rs/canvas');
let canvasModule: Promise<CanvasModule> | undefined;
async function canvas(): Promise<CanvasModule> {
  canvasModule ??= import('@napi-rs/canvas').catch((e: unknown) => {
    throw new TensorrtNodeError('EINPUT', `reading images needs the optional package @napi-rs/canvas: ${(e as Error).message}`);
  });
  return canvasModule;
}

/** RGBA pixels (width×height×4) → one sample { data, dims } with batch 1. */
export function pixelsToTensor(rgba: Uint8ClampedArray | Uint8Array, options: ImageOptions): { data: Float32Array; dims: number[] } {
  const { width: w, height: h } = options;
  const c = options.channels ?? 3;
  const scale = options.scale ?? 255;
  const mean = options.mean ?? [0];
  const std = options.std ?? [1];
  const order = options.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const data = new Float32Array(c * h * w);
  const nhwc = options.layout === 'nhwc';
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      for (let k = 0; k < c; k++) {
        const v = c === 1 ? 0.299 * rgba[p]! + 0.587 * rgba[p + 1]! + 0.114 * rgba[p + 2]! : rgba[p + order[k]!]!;
        const m = mean[mean.length === 1 ? 0 : k]!;
        const s = std[std.length === 1 ? 0 : k]!;
        data[nhwc ? (y * w + x) * c + k : (k * h + y) * w + x] = (v / scale - m) / s;
      }
    }
  return { data, dims: nhwc ? [1, h, w, c] : [1, c, h, w] };
}

/** Decode an image file and turn it into a tensor. */
export async function loadImageTensor(path: string, options: ImageOptions): Promise<{ data: Float32Array; dims: number[] }> {
  const { createCanvas, loadImage } = await canvas();
  let img: Awaited<ReturnType<CanvasModule['loadImage']>>;
  try {
    img = await loadImage(path);
  } catch (e) {
    throw new TensorrtNodeError('EINPUT', `cannot decode image '${path}': ${(e as Error).message}`, { tensor: path });
  }
  const cv = createCanvas(options.width, options.height);
  const ctx = cv.getContext('2d');
  ctx.fillStyle = 'black';
  ctx.fillRect(0, 0, options.width, options.height);
  if (options.resize === 'pad') {
    const r = Math.min(options.width / img.width, options.height / img.height);
    ctx.drawImage(img, 0, 0, Math.max(1, Math.round(img.width * r)), Math.max(1, Math.round(img.height * r)));
  } else {
    ctx.drawImage(img, 0, 0, options.width, options.height);
  }
  return pixelsToTensor(ctx.getImageData(0, 0, options.width, options.height).data, options);
}

export interface LabeledFile {
  path: string;
  /** Class index: from the sub-folder name (a number, or the rank of the name among the sub-folders). */
  label?: number;
}

/**
 * Image files of a folder, sorted by name. With sub-folders (`0/`, `1/`, or `cat/`,
 * `dog/`), each image is labeled by its sub-folder: a numeric name is the class index,
 * other names are numbered in sorted order.
 */
export async function listImages(folder: string): Promise<LabeledFile[]> {
  let entries: string[];
  try {
    entries = (await readdir(folder)).sort();
  } catch (e) {
    throw new TensorrtNodeError('EINPUT', `cannot read folder '${folder}': ${(e as Error).message}`, { tensor: folder });
  }
  const files: LabeledFile[] = [];
  const dirs: string[] = [];
  for (const name of entries) {
    const p = join(folder, name);
    const s = await stat(p);
    if (s.isDirectory()) dirs.push(name);
    else if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) files.push({ path: p });
  }
  const numeric = dirs.every((d) => /^\d+$/.test(d));
  for (const [rank, d] of dirs.entries()) {
    const label = numeric ? Number(d) : rank;
    for (const name of (await readdir(join(folder, d))).sort()) {
      if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) files.push({ path: join(folder, d, name), label });
    }
  }
  if (files.length === 0) throw new TensorrtNodeError('EINPUT', `no image files in '${folder}'`, { tensor: folder, expected: [...IMAGE_EXTENSIONS].join(' '), received: 'none' });
  return files;
}
