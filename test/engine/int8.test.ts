/**
 * INT8 through the quantizer on a real model (MNIST, PyTorch export, opset 17):
 * accuracy against the labels, and the engine cache skipping calibration.
 */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { HAVE_MNIST, MNIST_DIR, MNIST_SKIP_REASON, mnistImages, sameBits } from './helpers.js';

const MODEL = resolve(MNIST_DIR, 'mnist-pytorch-onjackay.onnx');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function normalize(raw: Float32Array): Float32Array {
  return raw.map((v) => (v / 255 - 0.1307) / 0.3081);
}

describe.skipIf(!HAVE_MNIST)('INT8 engine on MNIST', () => {
  it('quantizes, keeps accuracy, and loads the second build from the cache without calibrating', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-int8-'));
    dirs.push(cacheDir);
    const images = (await mnistImages(800)).map(normalize);
    const labels = gunzipSync(readFileSync(resolve(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'))).subarray(8, 8 + 800);
    // Evaluate on images 0-499, calibrate on 500-599, validate on 600-799: disjoint.
    const calibration = images.slice(500, 600).map((data) => ({ input: { data, dims: [1, 1, 28, 28] } }));
    const validation = {
      data: images.slice(600, 800).map((data, i) => ({ feeds: { input: { data, dims: [1, 1, 28, 28] } }, label: labels[600 + i]! })),
      metric: 'top1' as const,
    };
    const evalImages = images.slice(0, 500);
    const options = {
      backend: 'onnxruntime' as const, precision: 'int8' as const, calibration, validation, maxAccuracyDrop: 0.005,
      cacheDir, instances: 1, threadsPerInstance: 1,
    };

    const first = await Engine.build(MODEL, options);
    expect(first.cache.status).toBe('miss');
    expect(first.quantization?.quantizedNodes.length).toBeGreaterThan(0);
    // The validation budget reached the quantizer: it measured float against INT8.
    expect(first.quantization?.validation?.samples).toBe(200);
    const fp32 = await Engine.build(MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1 });
    const top1 = async (e: Engine): Promise<{ acc: number; outs: Float32Array[] }> => {
      const outs = await Promise.all(evalImages.map((img) => e.infer({ input: { data: img, dims: [1, 1, 28, 28] } })));
      const logits = outs.map((o) => o.output!.data as Float32Array);
      const ok = logits.filter((l, i) => l.indexOf(Math.max(...l)) === labels[i]).length;
      return { acc: ok / evalImages.length, outs: logits };
    };
    const a8 = await top1(first);
    const a32 = await top1(fp32);
    expect(a32.acc).toBeGreaterThan(0.95);
    // Held-out drop (the validation budget was 0.5 pt on other images).
    expect(a32.acc - a8.acc).toBeLessThan(0.02);
    // The INT8 model really differs from the float one.
    expect(a8.outs.some((o, i) => !sameBits(o, a32.outs[i]!))).toBe(true);
    await fp32.dispose();
    await first.dispose();

    const second = await Engine.build(MODEL, options);
    expect(second.cache).toMatchObject({ status: 'hit', key: first.cache.key });
    // A cache hit skips the quantizer: no report.
    expect(second.quantization).toBeUndefined();
    const again = await top1(second);
    for (let i = 0; i < a8.outs.length; i++) expect(sameBits(again.outs[i]!, a8.outs[i]!)).toBe(true);
    await second.dispose();

    // Different calibration data, different key.
    const other = await Engine.build(MODEL, { ...options, calibration: calibration.slice(0, 50) });
    expect(other.cache.status).toBe('miss');
    expect(other.cache.key).not.toBe(first.cache.key);
    await other.dispose();
  });

  it('does not cache INT8 built from a lazy iterable without a cacheKey', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'trtn-int8-'));
    dirs.push(cacheDir);
    const images = (await mnistImages(32)).map(normalize);
    function* calibration() {
      for (const data of images) yield { input: { data, dims: [1, 1, 28, 28] } };
    }
    const e = await Engine.build(MODEL, { backend: 'onnxruntime', precision: 'int8', calibration: calibration(), cacheDir, instances: 1, threadsPerInstance: 1 });
    expect(e.cache.status).toBe('uncacheable');
    await e.dispose();
  });

  it('needs calibration data for int8', async () => {
    await expect(Engine.build(MODEL, { backend: 'onnxruntime', precision: 'int8' })).rejects.toMatchObject({ code: 'ECALIBRATION' });
  });
});
if (!HAVE_MNIST) console.warn(MNIST_SKIP_REASON);
