import { describe, expect, it } from 'vitest';
import { AbsHistogram } from '../../src/quantize/histogram.js';
import { computeAmax, entropyBins, mseAmax, percentileAmax } from '../../src/quantize/methods.js';
import { random } from './graphs.js';

describe('entropy calibration (TensorRT, GTC 2017)', () => {
  it('matches a histogram worked by hand', () => {
    // bins [4, 2, 0, 1], merged to 2 levels, thresholds i = 2..4.
    // i=2: P = [4, 2+0+1]/7; Q = [4, 2]/6            → KL = 4/7 ln((4/7)/(4/6)) + 3/7 ln((3/7)/(2/6))
    // i=3: P = [4, 2, 0+1]/7; Q = levels {0,1}|{2}: [3, 3, 0]/6 → P has mass where Q is 0: ∞
    // i=4: P = [4, 2, 0, 1]/7; Q = levels {0,1}|{2,3}: [3, 3, 0, 1]/7 (bin 2 empty stays 0)
    //      → KL = 4/7 ln(4/3) + 2/7 ln(2/3) + 1/7 ln(1)
    const kl2 = (4 / 7) * Math.log(4 / 7 / (4 / 6)) + (3 / 7) * Math.log(3 / 7 / (2 / 6));
    const kl4 = (4 / 7) * Math.log(4 / 3) + (2 / 7) * Math.log(2 / 3);
    const { bins, divergences } = entropyBins([4, 2, 0, 1], { levels: 2, startBin: 2 });
    expect(divergences[0]).toBeCloseTo(kl2, 12);
    expect(divergences[1]).toBe(Infinity);
    expect(divergences[2]).toBeCloseTo(kl4, 12);
    expect(kl2).toBeCloseTo(0.019617, 5);
    expect(kl4).toBeCloseTo(0.048542, 5);
    expect(bins).toBe(2); // threshold = (2 + 0.5) * width
  });

  it("expands merged levels only over non-empty bins (the slides' example)", () => {
    // P = [1 0 2 3 5 3 1 7] → 2 levels [6, 16] → Q = [2 0 2 2 4 4 4 4]
    const p = [1, 0, 2, 3, 5, 3, 1, 7];
    const q = [2, 0, 2, 2, 4, 4, 4, 4];
    let kl = 0;
    for (let j = 0; j < 8; j++) if (p[j]! > 0) kl += (p[j]! / 22) * Math.log(p[j]! / 22 / (q[j]! / 22));
    const { divergences } = entropyBins(p, { levels: 2, startBin: 8 });
    expect(divergences[0]).toBeCloseTo(kl, 12);
  });

  it('agrees with a direct bin-by-bin computation on a 2048-bin histogram', () => {
    const rand = random(21);
    // Sparse, spiky histogram: many empty bins, a long tail.
    const bins = Float64Array.from({ length: 2048 }, (_, j) => (rand() > 0.3 ? Math.floor(5000 * Math.exp(-j / 300) * (1 + rand())) : 0));
    bins[2047] = 3;
    const direct = (i: number): number => {
      const total = bins.reduce((a, b) => a + b, 0);
      const q = new Float64Array(i);
      for (let l = 0; l < 128; l++) {
        const members = [...Array(i).keys()].filter((j) => Math.floor((j * 128) / i) === l);
        const sum = members.reduce((a, j) => a + bins[j]!, 0);
        const nz = members.filter((j) => bins[j]! > 0).length;
        for (const j of members) if (bins[j]! > 0) q[j] = sum / nz;
      }
      const qTotal = q.reduce((a, b) => a + b, 0);
      let kl = 0;
      for (let j = 0; j < i; j++) {
        const p = (j === i - 1 ? bins.slice(j).reduce((a, b) => a + b, 0) : bins[j]!) / total;
        if (p === 0) continue;
        if (q[j] === 0) return Infinity;
        kl += p * Math.log(p / (q[j]! / qTotal));
      }
      return kl;
    };
    const { divergences } = entropyBins(bins);
    for (const i of [128, 129, 200, 511, 777, 1024, 1500, 2047, 2048]) {
      const d = direct(i);
      if (d === Infinity) expect(divergences[i - 128]).toBe(Infinity);
      else expect(divergences[i - 128]).toBeCloseTo(d, 9);
    }
  });

  it('threshold is (i + 0.5) × bin width, capped at the largest value seen', () => {
    const h = new AbsHistogram();
    const rand = random(11);
    // Gaussian-ish values (sum of uniforms) with a few far outliers.
    const values = Float32Array.from({ length: 200_000 }, () => rand() + rand() + rand() + rand());
    values[0] = 40;
    h.add(values);
    const { bins } = entropyBins(h.bins, { flattenZeroBin: true });
    const amax = computeAmax(h, 'entropy');
    expect(amax).toBeCloseTo(Math.min((bins + 0.5) * h.width, h.amax), 10);
    expect(amax).toBeLessThan(10); // the outlier is clipped
    expect(amax).toBeGreaterThan(1.5);
    expect(computeAmax(h, 'max')).toBe(40);
  });
});

describe('streaming histogram', () => {
  it('re-bins exactly when the range grows', () => {
    const rand = random(3);
    const batches = [0.5, 3, 1, 17].map((s) => Float32Array.from({ length: 5000 }, () => rand() * s));
    const h = new AbsHistogram(64);
    for (const b of batches) h.add(b);
    // Direct histogram of every value at the final width.
    const direct = new Float64Array(64);
    let amax = 0;
    for (const b of batches) for (const v of b) {
      direct[Math.min(63, Math.floor(Math.abs(v) / h.width))]! += 1;
      amax = Math.max(amax, Math.abs(v));
    }
    expect([...h.bins]).toEqual([...direct]);
    expect(h.amax).toBe(amax);
    expect(h.count).toBe(20000);
    expect(h.width * 64).toBeGreaterThanOrEqual(amax);
  });

  it('widens mid-batch exactly: values binned before a spike land where binning them after it would', () => {
    const rand = random(9);
    const first = Float32Array.from({ length: 3000 }, () => rand() * 0.2);
    const second = Float32Array.from({ length: 3000 }, (_, i) => (i === 1500 ? 250 : i === 2900 ? NaN : rand() * 0.3));
    const h = new AbsHistogram(128);
    h.add(first);
    const width = h.width;
    h.add(second);
    expect(h.width).toBeGreaterThan(width); // it widened within the second batch
    const direct = new Float64Array(128);
    for (const b of [first, second]) for (const v of b) if (Number.isFinite(v)) direct[Math.min(127, Math.floor(Math.abs(v) / h.width))]! += 1;
    expect([...h.bins]).toEqual([...direct]);
    expect(h.amax).toBe(250);
    expect(h.count).toBe(5999);
    expect(h.nonFinite).toBe(1);
  });

  it('counts NaN and Inf apart and keeps them out of the range', () => {
    const h = new AbsHistogram(16);
    h.add(Float32Array.of(1, NaN, -2, Infinity, -Infinity, 0));
    expect(h.nonFinite).toBe(3);
    expect(h.count).toBe(3);
    expect(h.amax).toBe(2);
    expect(h.bins.reduce((a, b) => a + b, 0)).toBe(3);
  });
});

describe('percentile and mse', () => {
  it('percentile: upper edge of the bin reaching the share', () => {
    const bins = [50, 30, 15, 4, 1];
    expect(percentileAmax(bins, 0.5, 80)).toBe(1.0); // 50+30 = 80 % at bin 1
    expect(percentileAmax(bins, 0.5, 99)).toBe(2.0); // 99 % reached at bin 3
    expect(percentileAmax(bins, 0.5, 100)).toBe(2.5);
  });

  it('mse: the candidate with the least squared error, checked by brute force', () => {
    const rand = random(5);
    const h = new AbsHistogram(256);
    h.add(Float32Array.from({ length: 20000 }, () => rand() * rand() * 3));
    const best = mseAmax(h.bins, h.width, 128);
    let bestErr = Infinity;
    let bestAmax = 0;
    for (let i = 128; i <= 256; i++) {
      const s = (i * h.width) / 127;
      let e = 0;
      h.bins.forEach((c, j) => {
        const x = (j + 0.5) * h.width;
        e += c * (x - Math.min(127, Math.round(x / s)) * s) ** 2;
      });
      if (e < bestErr) [bestErr, bestAmax] = [e, i * h.width];
    }
    expect(best).toBeCloseTo(bestAmax, 12);
  });
});
