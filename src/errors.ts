/** Error codes every module of the package throws with (DESIGN.md decision 12). */
export type ErrorCode =
  | 'ENOTENSORRT'
  | 'ENODEVICE'
  | 'ECUDAVERSION'
  | 'ENOBINARY'
  | 'EBUILDFAILED'
  | 'EQUEUEFULL'
  | 'ETIMEOUT'
  | 'EABORTED'
  | 'EDISPOSED'
  | 'EINPUT'
  | 'EMODEL'
  | 'ECALIBRATION'
  | 'ECACHE'
  /** An inference backend failed outside the model: an ONNX Runtime worker thread exited. */
  | 'EBACKEND';

export interface ErrorDetails {
  /** Tensor name, for EINPUT. */
  tensor?: string;
  expected?: string;
  received?: string;
  [key: string]: unknown;
}

export class TensorrtNodeError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TensorrtNodeError';
    this.code = code;
    this.details = details;
  }
}

/** EINPUT with the tensor's name, what was expected and what came. */
export function inputError(tensor: string, expected: string, received: string, what = 'input'): TensorrtNodeError {
  return new TensorrtNodeError(
    'EINPUT',
    `${what} '${tensor}': expected ${expected}, received ${received}`,
    { tensor, expected, received },
  );
}

export function isTensorrtNodeError(e: unknown, code?: ErrorCode): e is TensorrtNodeError {
  return e instanceof TensorrtNodeError && (code === undefined || e.code === code);
}

/** EABORTED where `signal` has been aborted (its reason as the cause); `what` names the step. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new TensorrtNodeError('EABORTED', `${what} was aborted`, {}, { cause: signal.reason });
}

/**
 * EINPUT for a key of `given` that is not among `known` (a typo such as `timeout` would
 * otherwise be ignored), naming the option it is near. A plain loop: infer() runs it per request.
 */
export function checkOptionNames(given: object, known: readonly string[], of: string): void {
  for (const key in given) {
    if (known.includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase()) ?? known.find((k) => editDistance(k, key) <= 2);
    throw inputError(key, near ? `an option of ${of} (did you mean '${near}'?)` : `an option of ${of}`, 'an unknown option', 'option');
  }
}

/** Levenshtein distance, for the did-you-mean of an unknown option. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
