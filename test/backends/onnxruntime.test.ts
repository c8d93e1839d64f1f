/**
 * The ONNX Runtime backend on its own: the worker protocol's buffer round trip and
 * the scheduling policy of the inference threads, read back from /proc.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { OnnxruntimeBackend, workerExecArgv } from '../../src/backends/onnxruntime/index.js';
import { CLS_ITEM, CLS_MODEL, clsInput, ort, referenceSession, sameBits } from '../engine/helpers.js';

const backends: OnnxruntimeBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.dispose()));
});

const SCHED_IDLE = 5;

/** Scheduling policy of each thread of this process (field 41 of /proc/self/task/<tid>/stat). */
function threadPolicies(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces: ') S ppid ...' is field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[38]));
  }
  return out;
}

describe('onnxruntime backend', () => {
  it("starts its workers without the parent's preloads and module hooks, keeping other options", () => {
    expect(workerExecArgv(['--import', 'tsx', '--max-old-space-size=4096', '--require=dd-trace/init', '-r', 'ts-node/register', '--loader', 'x.mjs', '--enable-source-maps', '--experimental-loader=y.mjs']))
      .toEqual(['--max-old-space-size=4096', '--enable-source-maps']);
    expect(workerExecArgv([])).toEqual([]);
  });

  it('hands the input buffers back into the feeds after each run, intact and reusable', async () => {
    const backend = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 1 });
    backends.push(backend);
    const input = clsInput(7, 2);
    const feeds = { x: { data: new Float32Array(input), dims: [2, ...CLS_ITEM], type: 'float32' as const } };
    const reference = await referenceSession(CLS_MODEL);
    const expected = (await reference.run({ x: new ort.Tensor('float32', input, [2, ...CLS_ITEM]) }))[reference.outputNames[0]!]!;
    for (let run = 0; run < 3; run++) {
      const { outputs } = await backend.runTimed(feeds);
      expect(feeds.x.data.length).toBe(input.length);
      expect(sameBits(feeds.x.data, input)).toBe(true);
      expect(sameBits(outputs[reference.outputNames[0]!]!.data as Float32Array, expected.data as Float32Array)).toBe(true);
    }
  });

  it.runIf(process.platform === 'linux')('runs its threads under SCHED_IDLE by default, and not with backgroundThreads: false', async () => {
    const before = threadPolicies();
    const background = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 2, threadsPerInstance: 2 });
    backends.push(background);
    expect(background.threadPolicy).toBe('SCHED_IDLE');
    await background.runTimed({ x: { data: clsInput(1), dims: [1, ...CLS_ITEM], type: 'float32' } });
    const added = [...threadPolicies()].filter(([tid]) => !before.has(tid));
    // Each worker thread and ORT's intra-op thread it created (inherited), nothing else.
    const idle = added.filter(([, policy]) => policy === SCHED_IDLE);
    expect(idle.length).toBeGreaterThanOrEqual(4);
    // The threads that were there before (the JS thread among them) keep their policy.
    const now = threadPolicies();
    for (const [tid, policy] of before) if (now.has(tid)) expect(now.get(tid)).toBe(policy);

    const mark = threadPolicies();
    const normal = await OnnxruntimeBackend.create(CLS_MODEL, { instances: 1, threadsPerInstance: 2, backgroundThreads: false });
    backends.push(normal);
    expect(normal.threadPolicy).toMatch(/^normal \(backgroundThreads: false\)/);
    const addedNormal = [...threadPolicies()].filter(([tid]) => !mark.has(tid));
    expect(addedNormal.length).toBeGreaterThan(0);
    expect(addedNormal.every(([, policy]) => policy !== SCHED_IDLE)).toBe(true);
  });
});
