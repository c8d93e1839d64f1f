#!/usr/bin/env node
// `npm run build:gyp`: builds the addon with node-gyp (binding.gyp, the path
// prebuildify drives) into build-gyp/Release, beside cmake-js's build/Release.
// TENSORRT_NODE_CUDA=0 builds the cpu variant.
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { nodeGyp, root, run, stage } from './gyp-stage.mjs';

const out = join(root, 'build-gyp');
// One staging folder per process: two builds at once (a test run's and yours) must not share one.
const staging = stage(join(out, `stage-${process.pid}`));
const { bin, env } = nodeGyp();
run(process.execPath, [bin, 'rebuild', '--release', '-j', '2'], { cwd: staging, env });

const release = join(out, 'Release');
rmSync(release, { recursive: true, force: true });
mkdirSync(release, { recursive: true });
const built = join(staging, 'build/Release');
for (const f of readdirSync(built)) {
  if (f.endsWith('.node') || f.endsWith('.so')) cpSync(join(built, f), join(release, f));
}
rmSync(staging, { recursive: true, force: true });
process.stderr.write(`built ${readdirSync(release).join(', ')} in ${release}\n`);
