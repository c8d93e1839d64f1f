// The addon builds the tests run against; test/native/global-setup.ts makes them.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export const builds = {
  /** cmake-js (npm run build:native): CUDA where the toolkit is found. */
  cmake: join(repoRoot, 'build/Release/tensorrt_node.node'),
  /** node-gyp (npm run build:gyp), same sources and settings. */
  gyp: join(repoRoot, 'build-gyp/Release/tensorrt_node.node'),
  /** cmake-js with TNP_CUDA=OFF: the cpu variant. */
  cpu: join(repoRoot, 'build-cpu/Release/tensorrt_node.node'),
} as const;
