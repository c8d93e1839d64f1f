import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheKey, hashBytes, hashDataset, type CacheKeyParts } from '../../src/cache/key.js';
import { loadEntry, storeEntry } from '../../src/cache/store.js';
import { Engine } from '../../src/engine/engine.js';
import { CLS_ITEM, CLS_MODEL, clsInput, withWarnings } from '../engine/helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'trtn-cache-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const hash123 = await hashBytes(new Uint8Array([1, 2, 3]));
const hash124 = await hashBytes(new Uint8Array([1, 2, 4]));

describe('cache key', () => {
  const base: CacheKeyParts = {
    modelHash: hash123,
    options: { precision: 'int8', shapes: { x: [1, 3, 48, 192] } },
    backend: 'tensorrt',
    backendVersion: '10.16.0',
    backendParts: { libraryVersion: '10.16.0', libraryBuild: 'b7', computeCapability: '9.0', gpu: 'NVIDIA H200' },
  };

  it('hashes model bytes off the JS thread to the same SHA-256 as node:crypto', async () => {
    const bytes = new Uint8Array(3_000_001).map((_, i) => (i * 31) & 255);
    expect(await hashBytes(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(await hashBytes(bytes.subarray(5, 1005))).toBe(createHash('sha256').update(bytes.subarray(5, 1005)).digest('hex'));
    expect(hash123).toBe(createHash('sha256').update(new Uint8Array([1, 2, 3])).digest('hex'));
  });

  it('changes with each of its parts', () => {
    const k = cacheKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    const variants: CacheKeyParts[] = [
      { ...base, modelHash: hash124 },
      { ...base, options: { ...base.options, precision: 'fp32' } },
      { ...base, options: { ...base.options, shapes: { x: [2, 3, 48, 192] } } },
      { ...base, backend: 'onnxruntime' },
      { ...base, backendVersion: '10.16.1' },
      ...Object.keys(base.backendParts!).map((p) => ({ ...base, backendParts: { ...base.backendParts, [p]: 'other' } })),
    ];
    const keys = new Set(variants.map(cacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(k)).toBe(false);
  });

  it('does not depend on the order of option keys', () => {
    const reordered = { ...base, options: { shapes: { x: [1, 3, 48, 192] }, precision: 'int8' } };
    expect(cacheKey(reordered)).toBe(cacheKey(base));
  });

  it('hashes array data sets by content and refuses lazy iterables', () => {
    const a = [new Float32Array([1, 2]), new Float32Array([3, 4])];
    expect(hashDataset(a)).toBe(hashDataset([new Float32Array([1, 2]), new Float32Array([3, 4])]));
    expect(hashDataset(a)).not.toBe(hashDataset([new Float32Array([1, 2]), new Float32Array([3, 5])]));
    expect(hashDataset((function* () { yield a[0]; })())).toBeUndefined();
  });
});

describe('cache store', () => {
  it('round-trips, reports a miss, and leaves no temporary file', async () => {
    const dir = tempDir();
    const payload = new Uint8Array(1000).map((_, i) => i & 255);
    expect((await loadEntry(dir, 'k1')).status).toBe('miss');
    await storeEntry(dir, 'k1', payload, { note: 'x' });
    const got = await loadEntry(dir, 'k1');
    expect(got.status).toBe('hit');
    if (got.status === 'hit') {
      expect(Buffer.from(got.payload).equals(Buffer.from(payload))).toBe(true);
      expect(got.meta).toEqual({ note: 'x' });
    }
    expect(readdirSync(dir)).toEqual(['k1.bin']);
  });

  it('detects a flipped byte, a truncated file, a bad magic and a foreign key', async () => {
    const dir = tempDir();
    const payload = new Uint8Array(256).fill(7);
    const path = await storeEntry(dir, 'k2', payload);
    const good = readFileSync(path);

    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] ^= 1;
    writeFileSync(path, flipped);
    expect(await loadEntry(dir, 'k2')).toMatchObject({ status: 'corrupt', reason: 'checksum mismatch' });

    writeFileSync(path, good.subarray(0, good.length - 10));
    expect(await loadEntry(dir, 'k2')).toMatchObject({ status: 'corrupt', reason: expect.stringContaining('length') });

    writeFileSync(path, Buffer.concat([Buffer.from('garbage'), good]));
    expect(await loadEntry(dir, 'k2')).toMatchObject({ status: 'corrupt', reason: 'bad magic' });

    writeFileSync(join(dir, 'k3.bin'), good);
    expect(await loadEntry(dir, 'k3')).toMatchObject({ status: 'corrupt', reason: expect.stringContaining('key mismatch') });
  });
});

describe('engine cache', () => {
  it('misses, then hits, then rebuilds a corrupt entry and reports it', async () => {
    const dir = tempDir();
    const options = { backend: 'onnxruntime' as const, cacheDir: dir, instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } };
    const first = await Engine.build(CLS_MODEL, options);
    expect(first.cache.status).toBe('miss');
    const want = (await first.infer(clsInput(1)))['softmax_0.tmp_0']!.data;
    await first.dispose();

    const second = await Engine.build(CLS_MODEL, options);
    expect(second.cache).toMatchObject({ status: 'hit', key: first.cache.key });
    expect((await second.infer(clsInput(1)))['softmax_0.tmp_0']!.data).toEqual(want);
    // The entry holds the rewritten model and its counts: a hit rewrites nothing.
    expect(first.buildThreads.graphRewrites).toBeDefined();
    expect(second.buildThreads).toEqual({});
    expect(second.backend.graphRewrites).toEqual(first.backend.graphRewrites);
    expect(second.backend.graphRewrites!.hardSwish).toBeGreaterThan(0);
    await second.dispose();

    // Without the rewrites, another entry: the model as given.
    const plain = await Engine.build(CLS_MODEL, { ...options, graphRewrites: false });
    expect(plain.cache.status).toBe('miss');
    expect(plain.cache.key).not.toBe(first.cache.key);
    expect(plain.backend.graphRewrites).toBeUndefined();
    await plain.dispose();
    const entry = await loadEntry(dir, plain.cache.key!, 'onnx.bin');
    expect(entry.status === 'hit' && Buffer.from(entry.payload).equals(readFileSync(CLS_MODEL))).toBe(true);

    // A different build option gives a different entry.
    const other = await Engine.build(CLS_MODEL, { ...options, cacheKey: 'another' });
    expect(other.cache.status).toBe('miss');
    expect(other.cache.key).not.toBe(first.cache.key);
    await other.dispose();

    const path = first.cache.path!;
    const bytes = readFileSync(path);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(path, bytes);
    const { value: third, warnings } = await withWarnings('ECACHE', () => Engine.build(CLS_MODEL, options));
    expect(third.cache).toMatchObject({ status: 'rebuilt', reason: 'checksum mismatch' });
    expect(third.stats().cache.status).toBe('rebuilt');
    expect(warnings.join('\n')).toContain('corrupt engine cache entry');
    expect((await third.infer(clsInput(1)))['softmax_0.tmp_0']!.data).toEqual(want);
    await third.dispose();

    const fourth = await Engine.build(CLS_MODEL, options);
    expect(fourth.cache.status).toBe('hit');
    await fourth.dispose();

    // An entry without the rewrites' counts is not trusted: rebuilt.
    const good = await loadEntry(dir, first.cache.key!, 'onnx.bin');
    if (good.status !== 'hit') throw new Error(good.status);
    await storeEntry(dir, first.cache.key!, good.payload, {}, 'onnx.bin');
    const { value: fifth } = await withWarnings('ECACHE', () => Engine.build(CLS_MODEL, options));
    expect(fifth.cache).toMatchObject({ status: 'rebuilt', reason: 'no graph rewrite counts in the entry' });
    expect(fifth.backend.graphRewrites).toEqual(first.backend.graphRewrites);
    await fifth.dispose();
  });

  it('a cache it cannot write costs no build: the engine serves, warns ECACHE and says why', async () => {
    const options = { backend: 'onnxruntime' as const, instances: 1, threadsPerInstance: 1, shapes: { x: [-1, ...CLS_ITEM] } };
    // A file where a folder of the path should be: unwritable for root too.
    const file = join(tempDir(), 'file');
    writeFileSync(file, 'not a folder');
    const cacheDir = join(file, 'cache');
    for (let build = 0; build < 2; build++) {
      const { value: engine, warnings } = await withWarnings('ECACHE', () => Engine.build(CLS_MODEL, { ...options, cacheDir }));
      expect(engine.cache).toMatchObject({ status: 'miss', storeError: expect.stringContaining('ENOTDIR') });
      expect(warnings.join('\n')).toContain('the engine cache failed storing the model (ENOTDIR');
      expect((await engine.infer(clsInput(1)))['softmax_0.tmp_0']!.dims).toEqual([1, 2]);
      await engine.dispose();
    }
  });

  it.runIf(process.platform === 'linux')("a folder the kernel will not make (/proc/x), where Node's recursive mkdir loops forever", async () => {
    const { value: engine } = await withWarnings('ECACHE', () => Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, cacheDir: '/proc/tensorrt-node-cache' }));
    expect(engine.cache).toMatchObject({ status: 'miss', storeError: expect.stringContaining('ENOENT') });
    await engine.dispose();
  });
});
