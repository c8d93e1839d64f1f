/**
 * onnxruntime-node 1.30's own telemetry (src/backends/onnxruntime/telemetry.ts): a process
 * that makes a session keeps a device id and an event queue under
 * $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime and leaves $TMPDIR/mat-debug-<pid>.log.
 * With tensorrt-node loaded, an engine's workers, the quantizer and plain onnxruntime-node
 * sessions in the same process leave none of it; ORT_DISABLE_TELEMETRY=0 in the environment
 * is the user's choice and stays. Each case in a child process of its own, with its own cache
 * and temporary folders and no CI variable (onnxruntime stays silent under CI by itself).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tsxLoaderUrl } from '../../src/engine/build-thread.js';
import { CLS_MODEL, runScript, srcUrl } from '../engine/helpers.js';

// onnxruntime's list (core/platform/telemetry_environment.h): any of them set turns its telemetry off.
const CI_VARIABLES = [
  'CI', 'TF_BUILD', 'GITHUB_ACTIONS', 'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'CODEBUILD_BUILD_ID',
  'BUILDKITE', 'TEAMCITY_VERSION', 'APPVEYOR', 'BITBUCKET_BUILD_NUMBER', 'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI',
];

const ORT_PATH = createRequire(import.meta.url).resolve('onnxruntime-node');
const TSX_API = tsxLoaderUrl();
const homes = mkdtempSync(join(tmpdir(), 'tnp-telemetry-'));
afterAll(() => rmSync(homes, { recursive: true, force: true }));

/** Runs `body` in a child with a fresh cache and temporary folder; what onnxruntime left there, and the last stdout line. */
function inFreshHome(name: string, body: string, ortDisableTelemetry?: string): { left: string[]; out: string } {
  const home = join(homes, name);
  const cache = join(home, 'cache');
  const tmp = join(home, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const env: NodeJS.ProcessEnv = { XDG_CACHE_HOME: cache, TMPDIR: tmp, ORT_DISABLE_TELEMETRY: ortDisableTelemetry };
  for (const v of CI_VARIABLES) env[v] = undefined;
  const r = runScript(() => body, { env });
  expect(r.status, r.stderr.split('\n').slice(-6).join('\n')).toBe(0);
  const ortDir = join(cache, 'Microsoft/DeveloperTools/.onnxruntime');
  const left = [
    ...(existsSync(ortDir) ? readdirSync(ortDir).map((f) => `cache: ${f}`) : []),
    ...readdirSync(tmp).filter((f) => f.startsWith('mat-debug-')).map(() => 'tmp: mat-debug-<pid>.log'),
  ].sort();
  return { left, out: r.stdout.trim().split('\n').at(-1) ?? '' };
}

const plainSession = `
import { createRequire } from 'node:module';
const ort = createRequire(import.meta.url)(${JSON.stringify(ORT_PATH)});
const s = await ort.InferenceSession.create(${JSON.stringify(CLS_MODEL)});
await s.run({ x: new ort.Tensor('float32', new Float32Array(3 * 48 * 192), [1, 3, 48, 192]) });
`;

const withPackage = `
import { Engine, runtimeInfo } from ${srcUrl('src/index.ts')};
${plainSession}
const e = await Engine.build(${JSON.stringify(CLS_MODEL)}, { backend: 'onnxruntime', instances: 2, threadsPerInstance: 1 });
await e.infer({ x: { data: new Float32Array(3 * 48 * 192), dims: [1, 3, 48, 192] } });
await e.dispose();
console.log(JSON.stringify(runtimeInfo().backends.onnxruntime.telemetry));
`;

// tensorrt-node loaded first on a worker thread, which then makes a session: its process.env is the worker's own copy.
const onWorkerThread = `
import { Worker } from 'node:worker_threads';
const code = \`
  const { parentPort } = require('node:worker_threads');
  // tsx's loader first, for the TypeScript sources (as the build worker starts from src/).
  import(\${JSON.stringify(${JSON.stringify(TSX_API)})}).then((m) => m.register()).then(() => import(\${JSON.stringify(${srcUrl('src/index.ts')})})).then(async ({ runtimeInfo }) => {
    const ort = require(\${JSON.stringify(${JSON.stringify(ORT_PATH)})});
    const s = await ort.InferenceSession.create(\${JSON.stringify(${JSON.stringify(CLS_MODEL)})});
    await s.release();
    parentPort.postMessage(runtimeInfo().backends.onnxruntime.telemetry);
  });
\`;
const w = new Worker(code, { eval: true });
const [telemetry] = await Promise.all([new Promise((r) => w.once('message', r)), new Promise((r) => w.once('exit', r))]);
console.log(JSON.stringify(telemetry));
`;

describe("onnxruntime-node's telemetry", () => {
  it('is on in a plain onnxruntime-node process (the control: what the package turns off)', () => {
    const { left } = inFreshHome('plain', plainSession);
    expect(left).toEqual(['cache: deviceid', 'cache: onnxruntime.db', 'tmp: mat-debug-<pid>.log']);
  });

  it('is off once tensorrt-node is loaded: engines, workers and plain sessions leave nothing', () => {
    const { left, out } = inFreshHome('package', withPackage);
    expect(left).toEqual([]);
    expect(JSON.parse(out)).toEqual({ enabled: false, reason: expect.stringMatching(/^off: tensorrt-node set ORT_DISABLE_TELEMETRY=1/) });
  });

  it('stays on where the environment says ORT_DISABLE_TELEMETRY=0, and runtimeInfo says so', () => {
    const { left, out } = inFreshHome('opted-in', withPackage, '0');
    expect(left).toContain('cache: deviceid');
    expect(JSON.parse(out)).toEqual({ enabled: true, reason: expect.stringMatching(/^on: ORT_DISABLE_TELEMETRY=0 in the environment/) });
  });

  it('says it is on where tensorrt-node was first loaded on a worker thread, as it is', () => {
    const { left, out } = inFreshHome('worker-thread', onWorkerThread);
    expect(left).toContain('cache: deviceid');
    expect(JSON.parse(out)).toEqual({ enabled: true, reason: expect.stringMatching(/^on: tensorrt-node was first loaded on a worker thread/) });
  });

  it("takes the environment's own opt-out as it is", () => {
    const { left, out } = inFreshHome('opted-out', withPackage, 'TRUE');
    expect(left).toEqual([]);
    expect(JSON.parse(out)).toEqual({ enabled: false, reason: 'off: ORT_DISABLE_TELEMETRY=TRUE in the environment' });
  });
});
