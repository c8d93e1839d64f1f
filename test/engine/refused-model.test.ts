/**
 * A model that parses but that ONNX Runtime refuses (an operator it does not know) fails
 * Engine.build with EMODEL and leaves nothing behind: its workers' threads end and the
 * process exits by itself. Before, each worker whose session failed kept listening, so a
 * service that retried such a build leaked a thread per worker per try and never exited.
 * So too a model ONNX Runtime loads but whose tensors the engine cannot carry (strings):
 * its workers had started, and kept the process alive after the build's error.
 * In a child process, which must end on its own.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { writeModel } from '../../src/onnx/model.js';
import { onnx } from '../../src/onnx/proto.js';
import { buildModel, node } from '../quantize/graphs.js';
import { runScript, srcUrl } from './helpers.js';

/** TensorProto.DataType STRING. */
const STRING = 8;

const script = (model: string): string => `
import { readdirSync } from 'node:fs';
import { Engine } from ${srcUrl('src/index.ts')};
const threads = () => readdirSync('/proc/self/task').length;
const before = threads();
const codes = [];
for (let i = 0; i < 3; i++) {
  try {
    await Engine.build(${JSON.stringify(model)}, { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1 });
    codes.push('built');
  } catch (e) {
    codes.push(e.code + ': ' + e.message);
  }
}
await new Promise((r) => setTimeout(r, 500));
console.log(JSON.stringify({ codes, before, after: threads() }));
`;

describe('a model ONNX Runtime refuses', () => {
  it('fails the build with EMODEL, ends its workers, and lets the process exit', () => {
    const model = buildModel({ nodes: [node('NoSuchOp', ['x'], ['y'], 'bad')], initializers: [], inputs: [{ name: 'x', dims: [1, 4] }], outputs: [{ name: 'y', dims: [1, 4] }] });
    const r = runScript((dir) => script(join(dir, 'unknown-op.onnx')), { files: { 'unknown-op.onnx': model } });
    // A hang is killed at the timeout: status null, signal SIGTERM.
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.split('\n').slice(-4).join('\n') }).toMatchObject({ status: 0, signal: null });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { codes: string[]; before: number; after: number };
    expect(out.codes).toHaveLength(3);
    for (const c of out.codes) expect(c).toMatch(/^EMODEL: onnxruntime could not load the model: .*NoSuchOp/);
    // Three failed builds of two workers each leave no thread of theirs.
    expect(out.after).toBeLessThanOrEqual(out.before + 1);
  });

  it('a model whose input is a string tensor: EMODEL naming the input, and the process exits', () => {
    const model = writeModel(onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'strings', node: [makeNode('Identity', ['text'], ['same'], 'id')], input: [makeValueInfo('text', STRING, ['N'])], output: [makeValueInfo('same', STRING, ['N'])] },
    }));
    const r = runScript((dir) => script(join(dir, 'strings.onnx')), { files: { 'strings.onnx': model } });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.split('\n').slice(-4).join('\n') }).toMatchObject({ status: 0, signal: null });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { codes: string[]; before: number; after: number };
    expect(out.codes).toEqual(Array(3).fill("EMODEL: input 'text': tensor type 'string' is not supported by the engine"));
    expect(out.after).toBeLessThanOrEqual(out.before + 1);
  });
});
