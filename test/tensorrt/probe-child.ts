/**
 * Run in a child process by loader.test.ts (the loader decides once per process,
 * from the environment): prints what the TensorRT backend sees as one JSON line.
 */
import { addonState } from '../../src/native/index.js';
import { createTensorrtBackend, tensorrtAvailability } from '../../src/backends/tensorrt/index.js';
import { hasTensorrtModule } from '../../src/backends/tensorrt/native.js';

const state = addonState();
if (!state.loaded) {
  console.log(JSON.stringify({ addon: false, error: state.error.message }));
  process.exit(0);
}
const binding = state.addon.binding;
const out: Record<string, unknown> = {
  addon: true,
  loader: binding.tensorrtInfo(),
  availability: tensorrtAvailability(),
  provider: hasTensorrtModule(binding) ? binding.tensorrtProvider() : null,
};
try {
  await createTensorrtBackend(new Uint8Array([1, 2, 3]));
  out.create = 'resolved';
} catch (e) {
  out.create = { code: (e as { code?: string }).code, message: (e as Error).message };
}
if (process.env.PROBE_BUILD && hasTensorrtModule(binding)) {
  const progress: unknown[] = [];
  try {
    const r = await binding.tensorrtBuild(
      new Uint8Array([1, 2, 3, 4]),
      {
        shapes: [{ name: 'x', min: [1, 3], opt: [4, 3], max: [8, 3] }],
        // PROBE_CANCEL: the flag already set, as after an abort, for the builder's first step to read.
        ...(process.env.PROBE_CANCEL ? { cancel: new Int32Array(new SharedArrayBuffer(4)).fill(1) } : {}),
      },
      (e) => progress.push(e),
    );
    out.build = { plan: [...r.plan], timingCache: r.timingCache };
  } catch (e) {
    const n = e as { code?: string; message?: string; node?: number; nodeName?: string; opType?: string };
    out.build = { code: n.code, message: n.message, node: n.node, nodeName: n.nodeName, opType: n.opType };
  }
  out.progress = progress;
}
console.log(JSON.stringify(out));
