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
