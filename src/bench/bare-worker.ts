/**
 * The floor of any design that takes run() off the JS thread: a plain worker thread with
 * its own onnxruntime-node session, one postMessage there and one back per request, and
 * nothing else (no batching, no checks, no statistics). The bench times it beside the
 * engine and the raw call, so that the engine's overhead at 1 in flight reads against what
 * leaving the JS thread alone costs on the machine.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

// CommonJS, evaluated: no file to ship beside the bundles. It loads onnxruntime-node by
// the path this module resolved, so that it runs the same copy as the engine and the peer.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
ort.InferenceSession.create(workerData.model, workerData.sessionOptions).then((session) => {
  parentPort.on('message', async ({ id, data, dims }) => {
    try {
      await session.run({ [workerData.input]: new ort.Tensor('float32', data, dims) });
      parentPort.postMessage({ id });
    } catch (err) {
      parentPort.postMessage({ id, error: String(err && err.message || err) });
    }
  });
  parentPort.postMessage({ ready: true });
}, (err) => parentPort.postMessage({ error: String(err && err.message || err) }));
`;

export interface BareWorker {
  /** One run of `data` (shape `dims`) on the worker's session; the input is cloned there, the outputs stay there. */
  infer(data: Float32Array, dims: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

export async function startBareWorker(model: Uint8Array, input: string, sessionOptions: object): Promise<BareWorker> {
  const ort = createRequire(import.meta.url).resolve('onnxruntime-node');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ort, model, input, sessionOptions } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new Error(`bare worker: ${m.error}`))));
    worker.once('error', reject);
  });
  const pending = new Map<number, { resolve(): void; reject(e: Error): void }>();
  worker.on('message', (m: { id: number; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error === undefined) p?.resolve();
    else p?.reject(new Error(`bare worker: ${m.error}`));
  });
  let nextId = 0;
  return {
    infer(data, dims) {
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, data, dims });
      });
    },
    async close() {
      await worker.terminate();
    },
  };
}
