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
    // Once the range is known, one pass bins and widens as it goes; merging bins pairwise
    // puts a value where binning it at the wider range would (see doubleRange), so the
    // bins equal those of a max pass followed by a binning pass, at half the reads.
    if (this.width > 0) {
      this.addInRange(data);
      return;
    }
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
    }
    this.nonFinite += bad;
    this.count += data.length - bad;
    if (localMax > this.amax) this.amax = localMax;
    const n = this.bins.length;
    if (localMax === 0) {
      if (this.width === 0) this.pendingZeros += data.length - bad;
      else this.bins[0]! += data.length - bad;
      return;
    }
    if (this.width === 0) {
      // Slightly wider than max/n so the max falls inside the last bin (no clamping).
      this.width = (localMax / n) * (1 + 2 ** -20);
      this.bins[0]! += this.pendingZeros;
      this.pendingZeros = 0;
    }
    while (localMax / this.width >= n) this.doubleRange();
    // Divide (not multiply by 1/width): widths change by powers of two, so bins stay exact under re-binning.
    const width = this.width;
    const bins = this.bins;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) continue;
      const idx = Math.floor((v < 0 ? -v : v) / width);
      bins[idx < n ? idx : n - 1]! += 1;
    }
  }

  private addInRange(data: ArrayLike<number>): void {
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
