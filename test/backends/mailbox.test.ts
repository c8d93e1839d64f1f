/**
 * The mailbox (src/backends/onnxruntime/mailbox.mjs): a run that finds its worker polling
 * for the next one is written into shared memory instead of sent as a message. Each case
 * checks the results against plain onnxruntime-node, and `stats()` for which path ran.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OnnxruntimeBackend } from '../../src/backends/onnxruntime/index.js';
import { POLLING, layout } from '../../src/backends/onnxruntime/mailbox.mjs';
import type { TensorLike } from '../../src/tensor.js';
import { CLS_ITEM, CLS_MODEL, clsInput, ort, referenceSession, sameBits } from '../engine/helpers.js';
import { embeddingModel, embeddingRequest } from '../engine/multi-input.js';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { writeModel } from '../../src/onnx/model.js';
import { DataType, onnx } from '../../src/onnx/proto.js';

const backends: OnnxruntimeBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.dispose()));
});

async function backend(model: string | Uint8Array, options: { spinning?: boolean } = {}): Promise<OnnxruntimeBackend> {
  const b = await OnnxruntimeBackend.create(model, { instances: 1, threadsPerInstance: 1, ...options });
  backends.push(b);
  return b;
}

const clsFeeds = (seed: number, rows = 1) => ({ x: { data: clsInput(seed, rows), dims: [rows, ...CLS_ITEM], type: 'float32' as const } });

function bitsOf(t: TensorLike): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

describe('the mailbox', () => {
  it('takes the runs that find the worker polling; results equal onnxruntime-node bit for bit, and the inputs stay the caller’s', async () => {
    const b = await backend(CLS_MODEL);
    const reference = await referenceSession(CLS_MODEL);
    const name = reference.outputNames[0]!;
    // Back to back (the reference runs after: a run here takes longer than the worker polls).
    const got: { seed: number; data: Float32Array; out: TensorLike }[] = [];
    let untouched = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const feeds = clsFeeds(seed);
      const data = feeds.x.data;
      const { outputs } = await b.runTimed(feeds);
      // The mailbox and the request slots copy the input into shared memory and leave the
      // caller's array as it was (a message would transfer it and hand it back in a new view).
      if (feeds.x.data === data) untouched++;
      got.push({ seed, data: feeds.x.data, out: outputs[name]! });
    }
    try {
      for (const { seed, data, out } of got) {
        const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[name]!.data as Float32Array;
        expect(sameBits(out.data as Float32Array, want), `seed ${seed}`).toBe(true);
        expect(sameBits(data, clsInput(seed)), `input of seed ${seed}`).toBe(true);
      }
    } finally {
      await reference.release();
    }
    const { runs, mailboxRuns, mailboxRunsInPlace, slotRuns, boxResults } = b.stats();
    expect(runs).toBe(20);
    // The addon is built here: the worker hands onnxruntime the mailbox's bytes, no copy.
    expect(mailboxRunsInPlace).toBe(mailboxRuns);
    // The first run goes through a request slot (its message brings the mailbox); later ones
    // find the worker polling for 1 ms after each result, unless this thread was held up
    // longer than that. The worker rings the addon's doorbell: no run goes by plain message.
    expect(mailboxRuns).toBeGreaterThan(0);
    expect(slotRuns).toBeGreaterThan(0);
    expect(mailboxRuns + slotRuns).toBe(20);
    // Each result (8 bytes) came back through the result box, read before the next run.
    expect(boxResults).toBe(20);
    expect(untouched).toBe(20);
  });

  it('carries several inputs of other dtypes and new shapes, growing where a request needs more memory', async () => {
    const model = embeddingModel();
    const b = await backend(model);
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    // Growing requests: each larger one goes by message with a larger mailbox, the next of its size by the mailbox.
    const shapes: [number, number][] = [[1, 5], [2, 7], [8, 64], [1, 3], [3, 200]].flatMap((shape) => [shape, shape, shape] as [number, number][]);
    const requests = shapes.map(([rows, length], k) => embeddingRequest(k, rows, length, k % 2));
    const results: Record<string, TensorLike>[] = [];
    for (const req of requests) {
      // Copies: a run by message transfers its inputs' memory.
      const feeds = {
        input_ids: { data: req.input_ids.data.slice(), dims: req.input_ids.dims, type: 'int64' as const },
        attention_mask: { data: req.attention_mask.data.slice(), dims: req.attention_mask.dims, type: 'int64' as const },
        scale: { data: req.scale.data.slice(), dims: req.scale.dims, type: 'float32' as const },
      };
      results.push((await b.runTimed(feeds)).outputs);
    }
    try {
      for (const [k, req] of requests.entries()) {
        const want = await session.run({
          input_ids: new ort.Tensor('int64', req.input_ids.data as BigInt64Array, req.input_ids.dims),
          attention_mask: new ort.Tensor('int64', req.attention_mask.data as BigInt64Array, req.attention_mask.dims),
          scale: new ort.Tensor('float32', req.scale.data as Float32Array, req.scale.dims),
        });
        for (const out of ['embedding', 'top']) {
          expect(results[k]![out]!.dims, `${out} of request ${k}`).toEqual(want[out]!.dims);
          const expected = want[out]!.data as Float32Array | BigInt64Array;
          expect(bitsOf(results[k]![out]!), `${out} of request ${k}`).toEqual(new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength));
        }
      }
    } finally {
      await session.release();
    }
    const { mailboxRuns, mailboxRunsInPlace, slotRuns, boxResults } = b.stats();
    expect(mailboxRuns).toBeGreaterThan(0);
    expect(mailboxRunsInPlace).toBe(mailboxRuns);
    expect(mailboxRuns + slotRuns).toBe(requests.length);
    // Results of two dtypes (float32, int64) through the result box.
    expect(boxResults).toBe(requests.length);
  });

  it('brings a result back through shared memory where it fits, by message where not, each bit for bit', async () => {
    // Identity: the result is the input, so its size is chosen; a 64 KiB result does not fit the box.
    const model = writeModel(onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'identity',
        node: [makeNode('Identity', ['x'], ['y'], 'identity')],
        input: [makeValueInfo('x', DataType.FLOAT, ['N'])],
        output: [makeValueInfo('y', DataType.FLOAT, ['N'])],
      },
    }));
    const b = await backend(model);
    // Back to back, each size until one of its requests found the worker polling. Inputs made
    // first, so that nothing but the backend sits between a result and the next run (made in
    // the loop, 16384 sines outlasted the worker's 1 ms poll once in CI: no mailbox run).
    const seen = new Map<number, { runs: number; mailbox: number; box: number }>();
    const sent: Float32Array[] = [];
    const got: TensorLike[] = [];
    for (const n of [4, 16384, 100]) {
      const inputs = Array.from({ length: 40 }, (_, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(k * 1000 + i)));
      for (let k = 0; k < 40 && !(seen.get(n)?.mailbox); k++) {
        const x = inputs[k]!;
        sent.push(x.slice()); // a run by message transfers x
        const before = b.stats();
        got.push((await b.runTimed({ x: { data: x, dims: [n], type: 'float32' } })).outputs.y!);
        const after = b.stats();
        const s = seen.get(n) ?? { runs: 0, mailbox: 0, box: 0 };
        s.runs++;
        s.mailbox += after.mailboxRuns - before.mailboxRuns;
        s.box += after.boxResults - before.boxResults;
        seen.set(n, s);
      }
    }
    got.forEach((y, k) => {
      expect(y.dims, `request ${k}`).toEqual([sent[k]!.length]);
      expect(sameBits(y.data as Float32Array, sent[k]!), `request ${k}`).toBe(true);
      expect(y.data.buffer).toBeInstanceOf(ArrayBuffer);
    });
    // Every 16-byte and 400-byte result through the box, whichever way the run went; no 64 KiB one.
    const [small, large, medium] = [seen.get(4)!, seen.get(16384)!, seen.get(100)!];
    expect([small.mailbox, large.mailbox, medium.mailbox]).toEqual([1, 1, 1]);
    expect([small.box, large.box, medium.box]).toEqual([small.runs, 0, medium.runs]);
  });

  it('merges a batch’s parts in the mailbox itself: no merge on the JS thread, results as onnxruntime-node on the concatenation', async () => {
    const b = await backend(CLS_MODEL);
    const reference = await referenceSession(CLS_MODEL);
    const name = reference.outputNames[0]!;
    const item = CLS_ITEM.reduce((x, y) => x * y, 1);
    // Parts of 1, 3 and 2 rows; views at an offset into a larger buffer, as callers' slices are.
    const partsOf = (seed: number) => [1, 3, 2].map((rows, k) => {
      const backing = new Float32Array(item * (rows + 1));
      backing.set(clsInput(seed + k, rows), item);
      return { x: { data: backing.subarray(item), dims: [rows, ...CLS_ITEM], type: 'float32' as const } };
    });
    let merges = 0;
    const got: { seed: number; out: TensorLike }[] = [];
    // Made first, so that the runs come back to back, within the worker's polling.
    const seeds = Array.from({ length: 10 }, (_, k) => 1 + 4 * k);
    const batches = seeds.map(partsOf);
    for (const [k, seed] of seeds.entries()) {
      const parts = batches[k]!;
      const merged = () => {
        merges++;
        const data = new Float32Array(6 * item);
        let at = 0;
        for (const p of parts) {
          data.set(p.x.data, at);
          at += p.x.data.length;
        }
        return { x: { data, dims: [6, ...CLS_ITEM], type: 'float32' as const } };
      };
      const outputs = await b.runBatch({ parts, rows: 6, merged }, { alone: false });
      got.push({ seed, out: outputs[name]! });
    }
    try {
      for (const { seed, out } of got) {
        const want = new Float32Array(6 * item);
        let at = 0;
        partsOf(seed).forEach((p) => {
          want.set(p.x.data, at);
          at += p.x.data.length;
        });
        const ref = (await reference.run({ x: new ort.Tensor('float32', want, [6, ...CLS_ITEM]) }))[name]!.data as Float32Array;
        expect(out.dims).toEqual([6, 2]);
        expect(sameBits(out.data as Float32Array, ref), `seed ${seed}`).toBe(true);
      }
    } finally {
      await reference.release();
    }
    const { runs, mailboxRuns, slotRuns } = b.stats();
    expect(runs).toBe(10);
    expect(mailboxRuns).toBeGreaterThan(0);
    // Runs through a request slot are merged there too: none went by plain message, none merged here.
    expect(mailboxRuns + slotRuns).toBe(10);
    expect(merges).toBe(0);
  });

  it('gives results memory of their own even where an output is an input read in place (Identity, a graph input as output)', async () => {
    const model = writeModel(onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'passthrough',
        node: [makeNode('Identity', ['x'], ['y'], 'identity'), makeNode('Reshape', ['x', 'shape'], ['r'], 'reshape')],
        initializer: [onnx.TensorProto.create({ name: 'shape', dataType: DataType.INT64, dims: [2], int64Data: [-1, 4] })],
        input: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
        output: [makeValueInfo('y', DataType.FLOAT, ['N', 4]), makeValueInfo('x', DataType.FLOAT, ['N', 4]), makeValueInfo('r', DataType.FLOAT, ['N', 4])],
      },
    }));
    const b = await backend(model);
    const got: Record<string, TensorLike>[] = [];
    for (let k = 0; k < 30; k++) got.push((await b.runTimed({ x: { data: new Float32Array(4).fill(k), dims: [1, 4], type: 'float32' } })).outputs);
    // Later requests were written over the same mailbox: each result still holds its own values.
    got.forEach((outputs, k) => {
      for (const name of ['y', 'x', 'r']) {
        expect(Array.from(outputs[name]!.data as Float32Array), `${name} of request ${k}`).toEqual([k, k, k, k]);
        expect(outputs[name]!.data.buffer).toBeInstanceOf(ArrayBuffer);
      }
    });
    const { mailboxRuns, mailboxRunsInPlace, boxResults } = b.stats();
    expect(mailboxRuns).toBeGreaterThan(0);
    expect(mailboxRunsInPlace).toBe(mailboxRuns);
    expect(boxResults).toBe(30);
  });

  it('carries which session a run asked for: the wide one runs what asked for it, as the worker reports', async () => {
    const b = await backend(CLS_MODEL);
    await b.addWide(2);
    const reference = await referenceSession(CLS_MODEL);
    const name = reference.outputNames[0]!;
    const got: { seed: number; wide: boolean; out: TensorLike }[] = [];
    for (let seed = 1; seed <= 12; seed++) {
      const r = await b.runTimed(clsFeeds(seed), { wide: seed % 2 === 0 });
      got.push({ seed, wide: r.wide, out: r.outputs[name]! });
    }
    try {
      for (const { seed, wide, out } of got) {
        expect(wide, `seed ${seed}`).toBe(seed % 2 === 0);
        const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[name]!.data as Float32Array;
        expect(sameBits(out.data as Float32Array, want), `seed ${seed}`).toBe(true);
      }
    } finally {
      await reference.release();
    }
    expect(b.stats().mailboxRuns).toBeGreaterThan(0);
  });

  it('is not used without spinning (the worker never polls), nor for a request over 1 MiB', async () => {
    const quiet = await backend(CLS_MODEL, { spinning: false });
    for (let seed = 1; seed <= 5; seed++) await quiet.runTimed(clsFeeds(seed));
    expect(quiet.stats()).toMatchObject({ runs: 5, mailboxRuns: 0, mailboxRunsInPlace: 0 });
    // Nor is its memory made.
    expect((quiet as unknown as { workers: { mailbox?: SharedArrayBuffer }[] }).workers[0]!.mailbox).toBeUndefined();

    const b = await backend(CLS_MODEL);
    const reference = await referenceSession(CLS_MODEL);
    try {
      const name = reference.outputNames[0]!;
      // 10 rows: 1.1 MB of input.
      for (let k = 0; k < 3; k++) {
        const { outputs } = await b.runTimed(clsFeeds(50 + k, 10));
        const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(50 + k, 10), [10, ...CLS_ITEM]) }))[name]!.data as Float32Array;
        expect(sameBits(outputs[name]!.data as Float32Array, want)).toBe(true);
      }
    } finally {
      await reference.release();
    }
    expect(b.stats()).toMatchObject({ runs: 3, mailboxRuns: 0, mailboxRunsInPlace: 0 });
  });

  it('refuses an input it cannot read before claiming the mailbox, so the polling worker is not left waiting', async () => {
    const b = await backend(CLS_MODEL);
    const reference = await referenceSession(CLS_MODEL);
    const name = reference.outputNames[0]!;
    const state = (b as unknown as { workers: { state: Int32Array }[] }).workers[0]!.state;
    const detached = clsFeeds(3);
    structuredClone(detached.x.data.buffer, { transfer: [detached.x.data.buffer as ArrayBuffer] });
    // Runs back to back until the worker is seen polling (it polls 1 ms after each result;
    // a busy machine may hold this thread longer), then the unreadable request at once.
    let polling = false;
    for (let k = 0; k < 40 && !polling; k++) {
      await b.runTimed(clsFeeds(1)); // the first by message, bringing the mailbox
      polling = Atomics.load(state, 0) === POLLING;
      if (polling) expect(() => b.runTimed(detached)).toThrow(/detached/);
    }
    expect(polling, 'the worker was never seen polling').toBe(true);
    // Within the worker's polling window: a claim left unposted would leave it waiting for good.
    const { outputs } = await b.runTimed(clsFeeds(4));
    try {
      const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(4), [1, ...CLS_ITEM]) }))[name]!.data as Float32Array;
      expect(sameBits(outputs[name]!.data as Float32Array, want)).toBe(true);
    } finally {
      await reference.release();
    }
  });

  it('leaves a request whose header would not fit to a message', () => {
    const index = new Map([['a', 0]]);
    const small = { a: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } };
    expect(layout([small], 1, index)?.bytes).toBe(2048 + 16);
    // 3 + 5 + rank slots of 256: rank 248 is the most that fits.
    const dims = (rank: number): number[] => Array.from({ length: rank }, () => 1);
    expect(layout([{ a: { type: 'float32', dims: dims(248), data: new Float32Array(1) } }], 1, index)).toBeDefined();
    expect(layout([{ a: { type: 'float32', dims: dims(249), data: new Float32Array(1) } }], 1, index)).toBeUndefined();
    // An input the session does not have, or a dtype the mailbox cannot name.
    expect(layout([{ b: small.a }], 1, index)).toBeUndefined();
    expect(layout([{ a: { ...small.a, type: 'string' } }], 1, index)).toBeUndefined();
  });
});

describe('request slots', () => {
  it('carry the runs of a busy worker in shared memory; a result that finds the box unread comes by message; each bit for bit', async () => {
    const b = await backend(CLS_MODEL);
    const reference = await referenceSession(CLS_MODEL);
    const name = reference.outputNames[0]!;
    const got: { seed: number; out: TensorLike }[] = [];
    let pairsWithOneBoxed = 0;
    try {
      for (let k = 0; k < 5; k++) {
        const before = b.stats();
        // Two runs at once on the one worker: the second goes through a slot while the first runs.
        const runs = [1, 2].map((j) => b.runTimed(clsFeeds(10 * k + j)).then((r) => got.push({ seed: 10 * k + j, out: r.outputs[name]! })));
        // This thread busy while both finish: the first result waits unread in the box, so the second comes by message.
        const until = performance.now() + 300;
        while (performance.now() < until);
        await Promise.all(runs);
        const after = b.stats();
        expect(after.slotRuns - before.slotRuns, `pair ${k}`).toBeGreaterThanOrEqual(1);
        if (after.boxResults - before.boxResults === 1) pairsWithOneBoxed++;
      }
      for (const { seed, out } of got) {
        const want = (await reference.run({ x: new ort.Tensor('float32', clsInput(seed), [1, ...CLS_ITEM]) }))[name]!.data as Float32Array;
        expect(sameBits(out.data as Float32Array, want), `seed ${seed}`).toBe(true);
      }
    } finally {
      await reference.release();
    }
    expect(got).toHaveLength(10);
    expect(pairsWithOneBoxed).toBe(5);
  });
});
