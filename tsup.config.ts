import { copyFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  // build-worker: Engine.build's quantization and rewrites run on it (src/engine/build-thread.ts), loaded beside the bundles.
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts', 'build-worker': 'src/engine/build-worker.ts' },
  format: ['esm', 'cjs'],
  // onnx-proto's declarations (ModelProto is public) name protobufjs 6's global `Long`
  // without referencing it: a consumer whose tsconfig lists `types` and checks libraries
  // failed on them (scripts/check-install.mjs). This brings @types/long, a dependency, in.
  dts: { banner: '/// <reference types="long" />' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  shims: true,
  // Dependencies load from node_modules at run time (native ones cannot be bundled).
  skipNodeModulesBundle: true,
  // The ONNX Runtime worker is plain JS loaded by path at run time: it sits beside the bundles,
  // with the modules it imports.
  onSuccess: async () => {
    for (const file of ['onnxruntime-worker.mjs', 'native-calls.mjs', 'mailbox.mjs', 'ort-tensor.mjs']) copyFileSync(`src/backends/onnxruntime/${file}`, `dist/${file}`);
  },
});
