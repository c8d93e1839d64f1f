/** Calibration methods: pick an activation's clipping threshold (amax) from its statistics. */
import type { AbsHistogram } from './histogram.js';

export type CalibrationMethod = 'entropy' | 'max' | 'percentile' | 'mse';

export interface EntropyOptions {
  /** Quantized levels on one side of zero: 128 for INT8. */
  levels?: number;
  /** Smallest number of bins tried as threshold (TensorRT: 128). */
  startBin?: number;
  /**
   * Count bin 0 as bin 1's count (pytorch-quantization's `_compute_amax_entropy` does
   * this): the exact zeros a ReLU produces otherwise dominate the divergence and drag
   * the threshold down. Default false here; computeAmax turns it on.
   */
  flattenZeroBin?: boolean;
}

/**
 * TensorRT's entropy calibration (GTC 2017, "8-bit Inference with TensorRT"):
 * for each i from startBin to bins.length, P = bins[0..i) with the outliers
 * sum(bins[i..]) added to bin i-1; Q = bins[0..i) merged into `levels` levels, each
 * level's count spread evenly over the level's non-empty bins (empty bins stay 0);
 * both normalized; the i with the smallest KL(P||Q) wins (the first on ties) and the
 * threshold is (i + 0.5) * width. No smoothing is applied: where P has mass that Q
 * cannot represent (outliers folded into an empty bin i-1) the divergence is infinite
 * and that i is never chosen. Bin j belongs to level floor(j * levels / i).
 * Returns the winning i (bins kept) and the divergence per i.
 */
export function entropyBins(histogram: ArrayLike<number>, options: EntropyOptions = {}): { bins: number; divergences: Float64Array } {
  let bins = histogram;
  if (options.flattenZeroBin && histogram.length > 1) {
    const copy = Float64Array.from(histogram);
    copy[0] = copy[1]!;
    bins = copy;
  }
  const levels = options.levels ?? 128;
  const start = options.startBin ?? 128;
  const n = bins.length;
  if (n < start) return { bins: n, divergences: new Float64Array(0) };
  // Prefix sums over bins: counts, non-empty bins, and b·ln(b). Within a level, Q is one
  // value q_l on every non-empty bin, so the level's share of KL(P||Q) is
  // (1/T)·[Σ b ln b − Σb·ln T − Σb·ln q_l]: each threshold costs O(levels), not O(i).
  const sumB = new Float64Array(n + 1);
  const sumNz = new Float64Array(n + 1);
  const sumBlnB = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) {
    const b = bins[j]!;
    sumB[j + 1] = sumB[j]! + b;
    sumNz[j + 1] = sumNz[j]! + (b > 0 ? 1 : 0);
    sumBlnB[j + 1] = sumBlnB[j]! + (b > 0 ? b * Math.log(b) : 0);
  }
  const total = sumB[n]!;
  const lnTotal = Math.log(total);
  const divergences = new Float64Array(n - start + 1);
  let best = n;
  let bestKl = Infinity;
  for (let i = start; i <= n; i++) {
    const outliers = total - sumB[i]!;
    const qTotal = sumB[i]!; // Q's total: bins[0..i) without the outliers
    const last = i - 1;
    const bLast = bins[last]!;
    let kl = 0;
    if (qTotal === 0 || (bLast === 0 && outliers > 0)) kl = Infinity;
    else {
      for (let l = 0; l < levels; l++) {
        const s0 = Math.floor((l * i + levels - 1) / levels);
        const s1 = Math.min(i, Math.floor(((l + 1) * i + levels - 1) / levels));
        if (s1 <= s0) continue;
        const levelSum = sumB[s1]! - sumB[s0]!;
        if (levelSum === 0) continue;
        const q = levelSum / (sumNz[s1]! - sumNz[s0]!) / qTotal;
        // Bins of this level other than the last bin, which carries the outliers.
        const e = s1 > last ? last : s1;
        const b = sumB[e]! - sumB[s0]!;
        if (b > 0) kl += (sumBlnB[e]! - sumBlnB[s0]! - b * lnTotal - b * Math.log(q)) / total;
        if (s1 > last && bLast > 0) {
          const p = (bLast + outliers) / total;
          kl += p * Math.log(p / q);
        }
      }
    }
    divergences[i - start] = kl;
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return { bins: best, divergences };
}

/** Threshold from the histogram by the given method; never above the observed amax. */
export function computeAmax(h: AbsHistogram, method: CalibrationMethod, percentile = 99.99): number {
  if (h.allZero) return 0;
  const cap = (v: number): number => Math.min(v, h.amax);
  switch (method) {
    case 'max':
      return h.amax;
    case 'entropy': {
      const { bins } = entropyBins(h.bins, { flattenZeroBin: true });
      return cap((bins + 0.5) * h.width);
    }
    case 'percentile':
      return cap(percentileAmax(h.bins, h.width, percentile));
    case 'mse':
      return cap(mseAmax(h.bins, h.width));
  }
}

/** Upper edge of the bin where the cumulative count reaches `percentile` % of all values. */
export function percentileAmax(bins: ArrayLike<number>, width: number, percentile: number): number {
  let total = 0;
  for (let j = 0; j < bins.length; j++) total += bins[j]!;
  const target = (percentile / 100) * total;
  let cum = 0;
  for (let j = 0; j < bins.length; j++) {
    cum += bins[j]!;
    if (cum >= target) return (j + 1) * width;
  }
  return bins.length * width;
}

/**
 * The threshold, among bin edges from bin 128 up, that minimizes the mean squared
 * error of symmetric INT8 fake-quantization over the histogram (bin centers stand
 * for their values), as ModelOpt's MSE calibrator does.
 */
export function mseAmax(bins: ArrayLike<number>, width: number, startBin = 128): number {
  const n = bins.length;
  let best = n * width;
  let bestErr = Infinity;
  for (let i = Math.min(startBin, n); i <= n; i++) {
    const amax = i * width;
    const scale = amax / 127;
    let err = 0;
    for (let j = 0; j < n; j++) {
      const c = bins[j]!;
      if (c === 0) continue;
      const x = (j + 0.5) * width;
      const q = Math.min(Math.round(x / scale), 127) * scale;
      err += c * (x - q) * (x - q);
    }
    if (err < bestErr) {
      bestErr = err;
      best = amax;
    }
  }
  return best;
}
