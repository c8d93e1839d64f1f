// One onnxruntime-node InferenceSession on its own thread, so that run() never
// blocks the main event loop (DESIGN.md decision 5). Plain JS on purpose: it is
// loaded as-is from src/ under vitest and copied next to the bundles in dist/.
// Tensors arrive and leave as transferred ArrayBuffers: no copy on either side.
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

const CTORS = {
  float32: Float32Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

function describe(meta) {
  return meta.map((m) => ({
    name: m.name,
    type: m.isTensor ? m.type : 'non-tensor',
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [],
  }));
}

let session;
try {
  const { model, sessionOptions } = workerData;
  session = await ort.InferenceSession.create(model, sessionOptions);
  parentPort.postMessage({
    type: 'ready',
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
  });
} catch (err) {
  parentPort.postMessage({ type: 'error', id: -1, message: String(err?.message ?? err) });
}

parentPort.on('message', async (msg) => {
  if (msg.type === 'close') {
    await session?.release?.();
    parentPort.close();
    return;
  }
  if (msg.type !== 'run') return;
  try {
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) {
      const Ctor = CTORS[t.type];
      const data = new Ctor(t.buffer, t.byteOffset, t.length);
      feeds[name] = new ort.Tensor(t.type, data, t.dims);
    }
    const started = performance.now();
    const result = await session.run(feeds);
    const computeMs = performance.now() - started;
    const outputs = {};
    // The input buffers go back too, for the engine to reuse.
    const inputs = {};
    const transfer = [];
    for (const [name, t] of Object.entries(msg.feeds)) {
      inputs[name] = t.buffer;
      if (!transfer.includes(t.buffer)) transfer.push(t.buffer);
    }
    for (const [name, tensor] of Object.entries(result)) {
      const data = tensor.data;
      outputs[name] = { type: tensor.type, dims: tensor.dims, buffer: data.buffer, byteOffset: data.byteOffset, length: data.length };
      if (!transfer.includes(data.buffer)) transfer.push(data.buffer);
    }

    parentPort.postMessage({ type: 'result', id: msg.id, outputs, inputs, computeMs }, transfer);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: msg.id, message: String(err?.message ?? err) });
  }
});
