import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createCanvas } from '@napi-rs/canvas';
import { describe, expect, it } from 'vitest';
import { encodeNpy, idxImages, loadSamples, parseIdx, parseNpy } from '../../src/data/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'trtnode-data-'));

function idxBytes(dims: number[], values: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + values.length);
  out.set([0, 0, 0x08, dims.length]);
  const v = new DataView(out.buffer);
  dims.forEach((d, k) => v.setUint32(4 + 4 * k, d));
  out.set(values, 4 + 4 * dims.length);
  return out;
}

describe('idx', () => {
  it('parses plain and gzip idx, with normalization', () => {
    const bytes = idxBytes([2, 2, 2], [0, 255, 10, 20, 1, 2, 3, 4]);
    for (const b of [bytes, gzipSync(bytes)]) {
      const idx = parseIdx(b);
      expect(idx.dims).toEqual([2, 2, 2]);
      expect([...idx.data]).toEqual([0, 255, 10, 20, 1, 2, 3, 4]);
    }
    const imgs = idxImages(parseIdx(bytes), { scale: 255, mean: 0.5, std: 0.5, start: 0, count: 1 });
    expect(imgs.length).toBe(1);
    expect(imgs[0]!.dims).toEqual([1, 1, 2, 2]);
    expect(imgs[0]!.data[0]).toBeCloseTo(-1, 6);
    expect(imgs[0]!.data[1]).toBeCloseTo(1, 6);
  });

  it('rejects truncated and non-idx bytes with EINPUT', () => {
    expect(() => parseIdx(idxBytes([2, 2, 2], [1, 2, 3]))).toThrow(expect.objectContaining({ code: 'EINPUT' }));
    expect(() => parseIdx(Uint8Array.of(1, 2, 3, 4, 5))).toThrow(expect.objectContaining({ code: 'EINPUT' }));
  });
});

describe('npy', () => {
  it('round-trips float32 and reads stacked samples from a folder', async () => {
    const data = Float32Array.from({ length: 24 }, (_, i) => i / 3);
    const t = parseNpy(encodeNpy(data, [2, 3, 4]));
    expect(t.dims).toEqual([2, 3, 4]);
    expect(t.data).toEqual(data);
    const dir = tmp();
    writeFileSync(join(dir, 'a.npy'), encodeNpy(data, [2, 3, 4]));
    writeFileSync(join(dir, 'b.npy'), encodeNpy(data.subarray(0, 12), [3, 4]));
    const samples = await loadSamples(dir, { inputShape: [3, 4] });
    expect(samples.map((s) => s.tensor.dims)).toEqual([[3, 4], [3, 4], [3, 4]]);
    expect(samples[1]!.tensor.data).toEqual(data.subarray(12));
  });

  it('rejects bad files with EINPUT', () => {
    const good = encodeNpy(new Float32Array(4), [4]);
    expect(() => parseNpy(good.subarray(0, good.length - 2))).toThrow(expect.objectContaining({ code: 'EINPUT' }));
    expect(() => parseNpy(new TextEncoder().encode('hello world, not numpy'))).toThrow(expect.objectContaining({ code: 'EINPUT' }));
    // Buffer's latin1 keeps every byte (TextDecoder's 'latin1' is windows-1252 from Node 22 on).
    const fortran = Buffer.from(good).toString('latin1').replace("'fortran_order': False", "'fortran_order': True ");
    expect(() => parseNpy(Buffer.from(fortran, 'latin1'))).toThrow(/Fortran/);
  });
});

describe('image folders', () => {
  it('decodes, resizes, normalizes, and follows layout and channel order; sub-folders are labels', async () => {
    const dir = tmp();
    for (const [label, color] of [['0', [255, 0, 0]], ['1', [0, 0, 255]]] as const) {
      mkdirSync(join(dir, label));
      const cv = createCanvas(8, 4);
      const ctx = cv.getContext('2d');
      ctx.fillStyle = `rgb(${color.join(',')})`;
      ctx.fillRect(0, 0, 8, 4);
      writeFileSync(join(dir, label, 'img.png'), cv.toBuffer('image/png'));
    }
    const nchw = await loadSamples(dir, { inputShape: [1, 3, 2, 4], image: { mean: [0.5], std: [0.5] } });
    expect(nchw.map((s) => s.label)).toEqual([0, 1]);
    expect(nchw[0]!.tensor.dims).toEqual([1, 3, 2, 4]);
    const red = nchw[0]!.tensor.data as Float32Array;
    expect(red[0]).toBeCloseTo(1, 5); // R plane
    expect(red[8]).toBeCloseTo(-1, 5); // G plane
    const bgr = await loadSamples(dir, { inputShape: [1, 2, 4, 3], image: { channelOrder: 'bgr', scale: 1 } });
    expect(bgr[0]!.tensor.dims).toEqual([1, 2, 4, 3]);
    expect([...(bgr[0]!.tensor.data as Float32Array).subarray(0, 3)]).toEqual([0, 0, 255]); // red pixel as B, G, R
    await expect(loadSamples(join(dir, 'missing'), { inputShape: [1, 3, 2, 4] })).rejects.toMatchObject({ code: 'EINPUT' });
  });
});
