/**
 * Text-line images with known text and orientation, for the PaddleOCR text-direction
 * classifier (x [N,3,48,192], classes 0° and 180°) and recognizer (x [N,3,48,W]): words
 * drawn with the system's DejaVu fonts by @napi-rs/canvas, optionally half of them turned
 * 180°, preprocessed as PaddleOCR does (ClsResizeImg: height 48, width ≤ 192 at the aspect
 * ratio, zero padding; resize_norm_img for rec: width max(320, 48·ratio)); both
 * (v/255 − 0.5)/0.5 on BGR planes, as PaddleOCR reads images with OpenCV.
 * The one renderer of the engine bench and the quantizer's accuracy bench.
 */
import { createRequire } from 'node:module';

export const CLS_HEIGHT = 48;
export const CLS_WIDTH = 192;
export const CLS_SAMPLE = 3 * CLS_HEIGHT * CLS_WIDTH;

const WORDS = (
  'the of and to in is for on that by this with you it not or be are from at as your all have new more an was we will home ' +
  'can us about if page my has search free but our one other do no information time they site he up may what which their ' +
  'news out use any there see only so his when contact here business who web also now help get view online first am been ' +
  'would how were me services some these click its like service than find price date back top people had list name just ' +
  'over state year day into email two health world next used go work last most products music buy data make them should ' +
  'product system post her city add policy number such please available copyright support message after best software then ' +
  'jan good video well where info rights public books high school through each links she review years order very privacy ' +
  'book items company read group need many user said does set under general research university january mail full map ' +
  'reviews program life know games way days management part could great united hotel real item international center ebay ' +
  'must store travel comments made development report off member details line terms before hotels did send right type ' +
  'because local those using results office education national car design take posted internet address community within ' +
  'states area want phone shipping reserved subject between forum family long based code show even black check special ' +
  'prices website index being women much sign file link open today technology south case project same pages uk version ' +
  'section own found sports house related security both county american photo game members power while care network down ' +
  'computer systems three total place end following download him without per access think north resources current posts ' +
  '2024 1999 42 7 365 100% A4 No.5 OK PDF USB'
).split(' ');

const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono', 'DejaVu Sans Condensed'];

export interface TextLine {
  text: string;
  /** 0: upright, 1: turned 180°. */
  label: 0 | 1;
  /** [3,48,192] float32, normalised as the classifier expects. */
  data: Float32Array;
}

/** A small seeded generator (mulberry32), so a seed always gives the same lines. */
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

type CanvasModule = typeof import('@napi-rs/canvas');

function loadCanvas(): CanvasModule {
  const require = createRequire(import.meta.url);
  try {
    return require('@napi-rs/canvas') as CanvasModule;
  } catch (e) {
    throw new Error(`text-line rendering needs @napi-rs/canvas (npm install @napi-rs/canvas): ${(e as Error).message}`);
  }
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
  const { createCanvas } = loadCanvas();
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
export function lineTensor(line: RenderedLine, maxWidth: number, padWidth: number): { data: Float32Array; dims: number[] } {
  const { createCanvas } = loadCanvas();
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

export const clsTensor = (line: RenderedLine): { data: Float32Array; dims: number[] } => lineTensor(line, CLS_WIDTH, CLS_WIDTH);

export function recTensor(line: RenderedLine): { data: Float32Array; dims: number[] } {
  const w = Math.max(320, Math.ceil(48 * (line.width / line.height)));
  return lineTensor(line, w, w);
}

/**
 * `count` classifier samples from `seed`, half turned 180°; keep calibration and
 * evaluation on different seeds (the bench uses 1 000 000+ for evaluation).
 */
export function renderTextLines(count: number, seed: number): TextLine[] {
  return renderLines(count, seed, WORDS, true).map((line) => ({ text: line.text, label: line.rotated, data: clsTensor(line).data }));
}
