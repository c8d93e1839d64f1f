export { TensorrtNodeError, inputError, isTensorrtNodeError } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
