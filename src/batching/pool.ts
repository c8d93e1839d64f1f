/**
 * Reusable batch buffers. Fresh memory costs a page fault per 4 KiB on first touch
 * (measured here: ~10 ms to fill a new 7 MiB batch against ~1.5 ms for a used one),
 * paid on the JS thread; so batch buffers come back after each run and are reused.
 * Sizes round up to powers of two so batches of different sizes share buffers.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  /** `exactSizes`: keep buffers by their own size, not rounded to a size class (for memory made elsewhere). */
  constructor(private readonly perClass = 8, private readonly exactSizes = false) {}

  static sizeClass(bytes: number): number {
    return bytes <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(bytes));
  }

  private key(bytes: number): number {
    return this.exactSizes ? bytes : BufferPool.sizeClass(bytes);
  }

  take(bytes: number): ArrayBuffer {
    return this.reuse(bytes) ?? new ArrayBuffer(this.key(bytes));
  }

  /** A free buffer of `bytes`' size (class), if there is one. */
  reuse(bytes: number): ArrayBuffer | undefined {
    return this.free.get(this.key(bytes))?.pop();
  }

  /** Lets go of the free buffers of `bytes`' size (class). */
  drop(bytes: number): void {
    this.free.delete(this.key(bytes));
  }

  /** Gives a buffer back; detached buffers, odd sizes and one already here are ignored. */
  give(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return;
    const size = buffer.byteLength;
    if (size !== this.key(size)) return;
    const list = this.free.get(size) ?? [];
    if (list.length < this.perClass && !list.includes(buffer)) list.push(buffer);
    this.free.set(size, list);
  }
}
