/**
 * Streaming histogram of |x| with a fixed number of bins (2048, as TensorRT's and
 * ModelOpt's histogram calibrators use). When a batch holds a value beyond the current
 * range, the range doubles (adjacent bins merge pairwise, which re-bins exactly) until
 * it covers the value, so memory stays fixed whatever the calibration set's size.
 */
export const HISTOGRAM_BINS = 2048;

export class AbsHistogram {
  readonly bins: Float64Array;
  /** Width of one bin; 0 until a non-zero value has been seen. */
  width = 0;
  /** Largest finite |x| seen. */
  amax = 0;
  /** Finite values counted. */
  count = 0;
  /** NaN and ±Inf values seen (excluded from the histogram and amax). */
  nonFinite = 0;
  /** Zeros seen while width was still 0; they go to bin 0 once the range is known. */
  private pendingZeros = 0;

  constructor(bins = HISTOGRAM_BINS) {
    this.bins = new Float64Array(bins);
  }

  add(data: ArrayLike<number>): void {
    if (this.width === 0 && !this.startRange(data)) return;
    // One pass bins and widens as it goes: merging bins pairwise puts a value where binning
    // it at the wider range would (see doubleRange), so the bins equal those of a max pass
    // followed by a binning pass, at half the reads.
    const bins = this.bins;
    const n = bins.length;
    let width = this.width;
    let localMax = 0;
    let bad = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) {
        bad++;
        continue;
      }
      const a = v < 0 ? -v : v;
      if (a > localMax) localMax = a;
      // Divide (not multiply by 1/width): widths change by powers of two, so bins stay exact under re-binning.
      let idx = Math.floor(a / width);
      while (idx >= n) {
        this.doubleRange();
        width = this.width;
        idx = Math.floor(a / width);
      }
      bins[idx]! += 1;
    }
    this.nonFinite += bad;
    this.count += data.length - bad;
    if (localMax > this.amax) this.amax = localMax;
  }

  /**
   * Sets the range from the first batch with a non-zero value: slightly wider than its
   * max / bins, so that the max falls inside the last bin. An all-zero batch only counts
   * (its zeros go to bin 0 once the range is known); returns whether the range is set.
   */
  private startRange(data: ArrayLike<number>): boolean {
    let localMax = 0;
    let finite = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) continue;
      finite++;
      const a = v < 0 ? -v : v;
      if (a > localMax) localMax = a;
    }
    if (localMax === 0) {
      this.pendingZeros += finite;
      this.count += finite;
      this.nonFinite += data.length - finite;
      return false;
    }
    this.width = (localMax / this.bins.length) * (1 + 2 ** -20);
    this.bins[0]! += this.pendingZeros;
    this.pendingZeros = 0;
    return true;
  }

  /** Merge bins pairwise: the histogram now spans twice the range. */
  private doubleRange(): void {
    const n = this.bins.length;
    for (let i = 0; i < n / 2; i++) this.bins[i] = this.bins[2 * i]! + this.bins[2 * i + 1]!;
    this.bins.fill(0, n / 2);
    this.width *= 2;
  }

  /** All values seen were finite zeros (width never set). */
  get allZero(): boolean {
    return this.width === 0;
  }
}
