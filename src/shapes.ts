/**
 * The `shapes` option: what it fixes of an input's dims, for the engine's input checks,
 * the quantizer's samples and the batch probe alike.
 */

import { inputError } from './errors.js';

/** A shape as messages print it: ? for a dynamic axis. */
export function fmtShape(dims: readonly number[]): string {
  return `[${dims.map((d) => (d < 0 ? '?' : String(d))).join(',')}]`;
}

/** What a value is, for messages: null, its typeof, or its constructor's name. */
export function kindOf(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return (x as object).constructor?.name ?? 'object';
}

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

/**
 * Checks the `shapes` option against the model's inputs, so that a mistake in it is an
 * EINPUT naming the entry rather than a request or a calibration sample failing later:
 * every name is an input, every shape has the input's rank, its dims are integers ≥ 1 or
 * -1 (open), equal to the model's where the model fixes an axis, and a range has
 * min ≤ opt ≤ max on every axis.
 */
export function checkShapes(
  inputs: readonly { readonly name: string; readonly shape: readonly number[] }[],
  shapes: unknown,
  dimParams?: Readonly<Record<string, readonly (string | null)[]>>,
): void {
  if (shapes === undefined) return;
  if (shapes === null || typeof shapes !== 'object' || Array.isArray(shapes)) {
    throw inputError('shapes', 'an object of shapes or ranges by input name', String(shapes), 'option');
  }
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const [name, range] of Object.entries(shapes)) {
    const where = `shapes.${name}`;
    const input = byName.get(name);
    if (!input) throw inputError(where, `one of the model's inputs (${inputs.map((i) => i.name).join(', ')})`, `an input the model does not have`, 'option');
    const model = input.shape;
    const checkDims = (dims: unknown, part: string, open: boolean): readonly number[] => {
      const label = part ? `${part} ` : '';
      if (!Array.isArray(dims)) throw inputError(where, `${label}an array of ${model.length} dims`, kindOf(dims), 'option');
      if (dims.length !== model.length) {
        throw inputError(where, `${label}${model.length} dims, the rank of ${fmtShape(model)}`, `${dims.length} dims [${dims.map(String).join(',')}]`, 'option');
      }
      dims.forEach((d: unknown, i) => {
        const ok = Number.isInteger(d) && ((d as number) >= 1 || (open && d === -1));
        if (!ok) throw inputError(where, `${label}integers ≥ 1${open ? ' or -1' : ''} on every axis`, `${String(d)} on axis ${i}`, 'option');
        if (model[i]! >= 0 && d !== model[i] && d !== -1) {
          throw inputError(where, `${label}${model[i]} on axis ${i}, as the model fixes it (${fmtShape(model)})`, String(d), 'option');
        }
      });
      return dims as number[];
    };
    if (Array.isArray(range)) {
      checkDims(range, '', true);
      continue;
    }
    if (range === null || typeof range !== 'object') {
      throw inputError(where, 'a shape (an array of dims) or { min, opt, max }', kindOf(range), 'option');
    }
    const { min, opt, max } = range as { min?: unknown; opt?: unknown; max?: unknown };
    const missing = Object.entries({ min, opt, max }).filter(([, v]) => v === undefined).map(([k]) => k);
    if (missing.length) {
      throw inputError(where, `{ min, opt, max }, all three, or one shape of ${model.length} dims (-1 where any size goes)`, `no ${missing.join(', ')}`, 'option');
    }
    const lo = checkDims(min, 'min', false);
    const mid = checkDims(opt, 'opt', false);
    const hi = checkDims(max, 'max', false);
    lo.forEach((d, i) => {
      if (!(d <= mid[i]! && mid[i]! <= hi[i]!)) {
        throw inputError(where, `min ≤ opt ≤ max on every axis`, `${d}, ${mid[i]}, ${hi[i]} on axis ${i}`, 'option');
      }
    });
  }
  if (dimParams) checkSharedAxes(shapes as Record<string, ShapeRange>, dimParams);
}

/** Axes the model names alike must get the same sizes from `shapes` (min, opt and max alike). */
function checkSharedAxes(shapes: Readonly<Record<string, ShapeRange>>, dimParams: Readonly<Record<string, readonly (string | null)[]>>): void {
  const seen = new Map<string, { input: string; axis: number; sizes: string }>();
  for (const [input, range] of Object.entries(shapes)) {
    dimParams[input]?.forEach((param, axis) => {
      if (param === null) return;
      const sizes = Array.isArray(range)
        ? String((range as readonly number[])[axis])
        : ['min', 'opt', 'max'].map((k) => (range as Record<string, readonly number[]>)[k]![axis]).join('/');
      if (sizes === '-1') return; // left open
      const first = seen.get(param);
      if (!first) seen.set(param, { input, axis, sizes });
      else if (first.sizes !== sizes) {
        throw inputError(`shapes.${input}`, `${first.sizes} on axis ${axis} (the model's axis '${param}', as shapes.${first.input} has it)`, sizes, 'option');
      }
    });
  }
}
