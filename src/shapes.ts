/**
 * The `shapes` option: what it fixes of an input's dims, for the engine's input checks,
 * the quantizer's samples and the batch probe alike.
 */

/** A shape range for one input; a plain array fixes the shape (-1 on axis 0: any batch). */
export type ShapeRange = readonly number[] | { readonly min: readonly number[]; readonly opt: readonly number[]; readonly max: readonly number[] };

/**
 * The shape an input must have: the model's, with dynamic axes filled from the
 * `shapes` option where it fixes them. -1 remains where anything goes (within range).
 */
export function expectedShape(info: { readonly shape: readonly number[] }, range: ShapeRange | undefined): number[] {
  const model = [...info.shape];
  if (!range) return model;
  const fixed = Array.isArray(range) ? (range as readonly number[]) : undefined;
  const r = fixed ? undefined : (range as { min: readonly number[]; max: readonly number[] });
  return model.map((d, i) => {
    if (d >= 0) return d;
    if (fixed) return fixed[i] ?? -1;
    if (r && r.min[i] === r.max[i]) return r.min[i] ?? -1;
    return -1;
  });
}

/**
 * The dims of a bare typed array for an input: its expected shape, the axes still open
 * from the range's opt, and -1 left on axis 0 where it is a batch axis (`batched`), for
 * the caller to read from the data's length. -1 elsewhere: nothing fixes that axis.
 */
export function bareDims(info: { readonly shape: readonly number[] }, range: ShapeRange | undefined, batched: boolean): number[] {
  const opt = range ? (Array.isArray(range) ? (range as readonly number[]) : (range as { opt: readonly number[] }).opt) : undefined;
  return expectedShape(info, range).map((d, i) => (d >= 0 ? d : i === 0 && batched ? -1 : opt?.[i] ?? -1));
}
