import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheKey, hashBytes, hashDataset, type CacheKeyParts } from '../../src/cache/key.js';
import { STALE_MS, buildOnce, type LockHolder } from '../../src/cache/lock.js';
import { cachePath, loadEntry, storeEntry } from '../../src/cache/store.js';
import { Engine, type CacheInfo } from '../../src/engine/engine.js';
import { CLS_ITEM, CLS_MODEL, clsInput, quietBuild, srcUrl, withWarnings } from '../engine/helpers.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

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

describe('one build per entry across processes (buildOnce)', () => {
  /** An entry whose build takes `ms` and counts itself; load() reads what was stored. */
  function entry(dir: string, ms = 100) {
    const path = join(dir, 'entry.bin');
    let builds = 0;
    return {
      path,
      get builds() {
        return builds;
      },
      load: async () => (existsSync(path) ? readFileSync(path, 'utf8') : undefined),
      build: async () => {
        builds++;
        await new Promise((r) => setTimeout(r, ms));
        await storeEntry(dir, 'unused', new Uint8Array(1)); // any real write on the way
        writeFileSync(`${path}.tmp`, 'built');
        renameSync(`${path}.tmp`, path);
        return 'built';
      },
    };
  }

  it('several callers at once: one builds, the others wait for its entry and load it', async () => {
    const e = entry(tempDir());
    const results = await Promise.all(Array.from({ length: 4 }, () => buildOnce(e.path, e.load, e.build)));
    expect(e.builds).toBe(1);
    expect(results.filter((r) => r.built)).toHaveLength(1);
    for (const r of results.filter((x) => !x.built)) {
      expect(r.value).toBe('built');
      expect(r.waited).toMatchObject({ holder: { pid: process.pid, host: hostname() } });
    }
    expect(existsSync(`${e.path}.lock`)).toBe(false);
  });

  it('waits while the holder lives, loads what it stored, and says whose build it waited for', async () => {
    const e = entry(tempDir());
    writeFileSync(`${e.path}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: 'test' }));
    let waitedFor: LockHolder | undefined;
    const pending = buildOnce(e.path, e.load, e.build, { onWait: (h) => (waitedFor = h) });
    await new Promise((r) => setTimeout(r, 600));
    expect(e.builds).toBe(0);
    expect(waitedFor).toMatchObject({ pid: process.pid });
    writeFileSync(e.path, 'from the holder');
    rmSync(`${e.path}.lock`);
    const r = await pending;
    expect(r).toMatchObject({ value: 'from the holder', built: false, waited: { ms: expect.any(Number), holder: { pid: process.pid } } });
    expect(r.waited!.ms).toBeGreaterThanOrEqual(500);
    expect(e.builds).toBe(0);
  });

  it('takes over a lock whose process is gone on this host, or that no one touched for STALE_MS', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const here = { bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), pidNamespace: readlinkSync('/proc/self/ns/pid') };
    for (const lock of [
      { holder: { pid: gone, host: hostname(), ...here }, ageMs: 0 },
      { holder: { pid: gone, host: hostname() }, ageMs: 0 }, // made by an earlier version, off Linux: judged by its host
      { holder: { pid: process.pid, host: 'another-host' }, ageMs: STALE_MS + 1000 },
      { holder: undefined, ageMs: STALE_MS + 1000 }, // made, never filled
    ]) {
      const e = entry(tempDir(), 0);
      writeFileSync(`${e.path}.lock`, lock.holder ? JSON.stringify({ ...lock.holder, startedAt: 'then', token: 'old' }) : '');
      const then = new Date(Date.now() - lock.ageMs);
      utimesSync(`${e.path}.lock`, then, then);
      const r = await buildOnce(e.path, e.load, e.build);
      expect(r).toMatchObject({ value: 'built', built: true });
      expect(r.waited).toBeUndefined();
      expect(existsSync(`${e.path}.lock`)).toBe(false);
    }
    // Waited for, touched lately: a lock on another host; and one on a host of this name
    // whose pid names no process here but may elsewhere (another kernel, or a container of
    // its own pid namespace that shares the host name).
    for (const holder of [
      { pid: 1, host: 'another-host' },
      { pid: gone, host: hostname(), ...here, bootId: '00000000-0000-0000-0000-000000000000' },
      { pid: gone, host: hostname(), ...here, pidNamespace: 'pid:[1]' },
    ]) {
      const e = entry(tempDir(), 0);
      writeFileSync(`${e.path}.lock`, JSON.stringify({ ...holder, startedAt: 'now', token: 'live' }));
      const ac = new AbortController();
      const waiting = buildOnce(e.path, e.load, e.build, { signal: ac.signal });
      await new Promise((r) => setTimeout(r, 300));
      ac.abort();
      await expect(waiting).rejects.toMatchObject({ code: 'EABORTED' });
      expect(e.builds).toBe(0);
    }
  });

  it('a build that fails frees the lock: a waiter builds in its place; a lock that cannot be made costs no build', async () => {
    const dir = tempDir();
    const e = entry(dir);
    const failing = buildOnce(e.path, e.load, async () => {
      await new Promise((r) => setTimeout(r, 200));
      throw new Error('quantization failed');
    });
    // The failing build holds the lock before the waiter looks.
    while (!existsSync(`${e.path}.lock`)) await new Promise((r) => setTimeout(r, 5));
    const waiter = buildOnce(e.path, e.load, e.build);
    await expect(failing).rejects.toThrow('quantization failed');
    expect(await waiter).toMatchObject({ value: 'built', built: true });
    expect(existsSync(`${e.path}.lock`)).toBe(false);
    // A file where the folder should be: no lock, the build still runs.
    writeFileSync(join(dir, 'file'), '');
    const r = await buildOnce(join(dir, 'file', 'entry.bin'), async () => undefined, async () => 'unlocked');
    expect(r).toMatchObject({ value: 'unlocked', built: true });
  });

  it('Engine.build in three processes at once: one builds the artifact, two wait for it and load it', async () => {
    const cacheDir = tempDir();
    const key = await (async () => {
      // The lock the builds will meet: held by this process until all three wait on it.
      const probe = await Engine.build(CLS_MODEL, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 8, wideLoneRuns: false, cacheDir: tempDir() });
      const k = probe.cache.key!;
      await probe.dispose();
      return k;
    })();
    const lock = `${cachePath(cacheDir, key, 'onnx.bin')}.lock`;
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: 'test' }));
    const script = `
      import { Engine } from ${srcUrl('src/engine/engine.ts')};
      const e = await Engine.build(${JSON.stringify(CLS_MODEL)}, { backend: 'onnxruntime', instances: 1, threadsPerInstance: 1, maxBatchSize: 8, wideLoneRuns: false,
        shapes: { x: [-1, 3, 48, 192] }, cacheDir: ${JSON.stringify(cacheDir)}, onProgress: (p) => { if (p.stage === 'cache:wait') console.log('waiting') } });
      const out = await e.infer(new Float32Array(3 * 48 * 192));
      console.log(JSON.stringify({ cache: e.cache, dims: out['softmax_0.tmp_0'].dims }));
      await e.dispose();
    `;
    const children = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      const waiting = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('waiting')) resolve();
      }));
      const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
      return { waiting, done };
    });
    await Promise.all(children.map((c) => c.waiting));
    rmSync(lock);
    const reports = (await Promise.all(children.map((c) => c.done))).map((o) => JSON.parse(o.trim().split('\n').pop()!) as { cache: CacheInfo; dims: number[] });
    for (const r of reports) expect(r.dims).toEqual([1, 2]);
    const statuses = reports.map((r) => r.cache.status).sort();
    expect(statuses).toEqual(['hit', 'hit', 'miss']);
    const builder = reports.find((r) => r.cache.status === 'miss')!;
    expect(builder.cache.waited).toBeUndefined();
    // The two others say whose lock they first met: this process's.
    for (const r of reports.filter((x) => x.cache.status === 'hit')) expect(r.cache.waited).toMatchObject({ ms: expect.any(Number), pid: process.pid, host: hostname() });
    expect(existsSync(lock)).toBe(false);
  }, 120_000);
});

describe('the batch probe, measured by one process at a time', () => {
  it('a build that meets the probe entry locked waits, then takes the measurement the holder kept', async () => {
    const options = { backend: 'onnxruntime' as const, instances: 1, threadsPerInstance: 1, wideLoneRuns: false, shapes: { x: [-1, ...CLS_ITEM] } };
    const first = tempDir();
    const measured = await quietBuild(() => Engine.build(CLS_MODEL, { ...options, cacheDir: first }));
    expect(measured.batching.probe?.source).toBe('measured');
    await measured.dispose();
    const probeFile = readdirSync(first).find((f) => f.endsWith('.batch.bin'));
    expect(probeFile).toBeDefined();
    // Another folder, its probe entry locked by this process as if measuring.
    const second = tempDir();
    const lock = join(second, `${probeFile}.lock`);
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: 'test' }));
    const stages: string[] = [];
    const building = Engine.build(CLS_MODEL, { ...options, cacheDir: second, onProgress: (p) => stages.push(p.stage) });
    while (!stages.includes('cache:wait')) await new Promise((r) => setTimeout(r, 50));
    writeFileSync(join(second, probeFile!), readFileSync(join(first, probeFile!)));
    rmSync(lock);
    const engine = await building;
    expect(engine.batching.probe).toMatchObject({ source: 'cache', chosen: measured.batching.probe!.chosen, perRowMs: measured.batching.probe!.perRowMs });
    await engine.dispose();

    // Aborted while it waits: the build fails with EABORTED, not taken for a model whose run failed.
    const third = tempDir();
    writeFileSync(join(third, `${probeFile}.lock`), JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: 'test' }));
    const ac = new AbortController();
    const waitStages: string[] = [];
    const { value: outcome, warnings } = await withWarnings('EMODEL', async () => {
      const aborted = Engine.build(CLS_MODEL, { ...options, cacheDir: third, signal: ac.signal, onProgress: (p) => waitStages.push(p.stage) }).then(() => 'built', (e: { code?: string }) => e.code);
      while (!waitStages.includes('cache:wait')) await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      return aborted;
    });
    expect(outcome).toBe('EABORTED');
    expect(warnings).toEqual([]);
  });
});
