/**
 * Prepares, on the CPU machine, what the GPU check's TensorRT part needs and
 * the device machine cannot make (no onnxruntime-node there): MNIST test
 * images, the quantizer's Q/DQ INT8 model, and ONNX Runtime's FP32 and INT8
 * logits as references. Run by `npm run test:gpu -- --prepare` where
 * ../shared/data/mnist exists. Calibration (images 5000-5199) and evaluation
 * (images 0-999) are disjoint.
 *
 *   node --import tsx test/gpu/prepare.ts <mnist dir> <out dir>
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readIdx, idxImages } from '../../src/data/idx.js';
import { quantize } from '../../src/quantize/index.js';

const [src, out] = process.argv.slice(2);
if (!src || !out) throw new Error('usage: prepare.ts <mnist dir> <out dir>');
mkdirSync(out, { recursive: true });
const COUNT = 1000;
const images = await readIdx(join(src, 't10k-images-idx3-ubyte.gz'));
const labels = await readIdx(join(src, 't10k-labels-idx1-ubyte.gz'));
const evalSet = idxImages(images, { start: 0, count: COUNT });
const calibration = idxImages(images, { start: 5000, count: 200 }).map((s) => s.data);

const flat = new Float32Array(COUNT * 784);
evalSet.forEach((s, i) => flat.set(s.data, i * 784));
writeFileSync(join(out, 'images.f32'), flat);
writeFileSync(join(out, 'labels.u8'), Uint8Array.from(labels.data.subarray(0, COUNT)));

const fp32 = new Uint8Array(readFileSync(join(src, 'mnist-12.onnx')));
const { model: int8, report } = await quantize(fp32, { calibration, method: 'entropy' });
writeFileSync(join(out, 'mnist-12.onnx'), fp32);
writeFileSync(join(out, 'mnist-12.int8.onnx'), int8);

async function reference(model: Uint8Array, file: string): Promise<number> {
  const session = await ort.InferenceSession.create(model);
  const logits = new Float32Array(COUNT * 10);
  let correct = 0;
  for (let i = 0; i < COUNT; i++) {
    const r = await session.run({ Input3: new ort.Tensor('float32', evalSet[i]!.data, [1, 1, 28, 28]) });
    const y = r.Plus214_Output_0!.data as Float32Array;
    logits.set(y, i * 10);
    let k = 0;
    for (let j = 1; j < 10; j++) if (y[j]! > y[k]!) k = j;
    if (k === labels.data[i]) correct++;
  }
  writeFileSync(join(out, file), logits);
  return correct / COUNT;
}
const accFp32 = await reference(fp32, 'ref-fp32.f32');
const accInt8 = await reference(int8, 'ref-int8.f32');
writeFileSync(
  join(out, 'meta.json'),
  JSON.stringify({
    count: COUNT,
    ortTop1: { fp32: accFp32, int8: accInt8 },
    quantizedNodes: report.quantizedNodes.length,
    models: [
      { name: 'FP32', file: 'mnist-12.onnx', ref: 'ref-fp32.f32', input: 'Input3', output: 'Plus214_Output_0' },
      { name: 'INT8', file: 'mnist-12.int8.onnx', ref: 'ref-int8.f32', input: 'Input3', output: 'Plus214_Output_0' },
    ],
  }, null, 2),
);
console.log(`prepared ${out}: ORT top-1 on ${COUNT} images: fp32 ${(accFp32 * 100).toFixed(2)}%, int8 ${(accInt8 * 100).toFixed(2)}%`);
