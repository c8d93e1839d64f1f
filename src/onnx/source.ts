/** What Engine.build() and quantize() take as a model, as Node's fs takes a file. */
import { fileURLToPath } from 'node:url';
import { inputError } from '../errors.js';
import { kindOf } from '../shapes.js';

/** A path, a file: URL (`new URL('./model.onnx', import.meta.url)`), or the model's bytes. */
export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

const EXPECTED = 'a path, a file: URL or the bytes of an ONNX model';

/** A path for a path or a file: URL, a Uint8Array for bytes; anything else is EINPUT. */
export function modelSource(model: unknown): string | Uint8Array {
  if (typeof model === 'string' || model instanceof Uint8Array) return model;
  if (model instanceof ArrayBuffer) return new Uint8Array(model);
  if (model instanceof URL) {
    if (model.protocol !== 'file:') throw inputError('model', EXPECTED, `a ${model.protocol} URL (models are read from files, never fetched)`, 'argument');
    return fileURLToPath(model);
  }
  throw inputError('model', EXPECTED, kindOf(model), 'argument');
}
