// The test-load cache over the real binaries and the real child-process test-load.
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { type TestLoadResult, testLoad } from '../../src/native/test-load.js';
import { cachedTestLoad, defaultVariantCacheDir } from '../../src/native/variant-cache.js';
import { builds } from './builds.js';

const scratch = mkdtempSync(join(tmpdir(), 'tnp-variant-cache-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The real test-load, counting the children it starts. */
function counted(): { load: (path: string) => TestLoadResult; children: () => number } {
  let n = 0;
  return { load: (path) => { n++; return testLoad(path); }, children: () => n };
}

describe('variant cache', () => {
  test('a second process start asks the file, not a child; a changed binary or device list asks again', () => {
    const dir = join(scratch, 'a');
    const binary = join(scratch, 'tensorrt_node.cuda.node');
    copyFileSync(builds.cmake, binary);
    const c = counted();
    const first = cachedTestLoad(c.load, { dir, env: {} })(binary);
    expect(first.ok).toBe(true);
    expect(c.children()).toBe(1);
    // A new process: a fresh wrapper over the same folder.
    const again = cachedTestLoad(c.load, { dir, env: {} })(binary);
    expect(c.children()).toBe(1);
    expect(again).toEqual(first);
    // Other visible devices: asked again.
    cachedTestLoad(c.load, { dir, env: { CUDA_VISIBLE_DEVICES: '1' } })(binary);
    expect(c.children()).toBe(2);
    // A rebuilt binary (new mtime): asked again.
    utimesSync(binary, new Date(), new Date(Date.now() + 5000));
    cachedTestLoad(c.load, { dir, env: {} })(binary);
    expect(c.children()).toBe(3);
  });

  test('failures are not kept, a corrupt file is ignored, and TENSORRT_NODE_VARIANT_CACHE=0 turns it off', () => {
    const dir = join(scratch, 'b');
    const bogus = join(scratch, 'not-an-addon.node');
    writeFileSync(bogus, 'not a binary');
    const c = counted();
    const load = cachedTestLoad(c.load, { dir, env: {} });
    expect(load(bogus).ok).toBe(false);
    expect(load(bogus).ok).toBe(false);
    expect(c.children()).toBe(2);

    load(builds.cpu);
    expect(c.children()).toBe(3);
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '{ torn');
    expect(load(builds.cpu).ok).toBe(true);
    expect(c.children()).toBe(4);

    const off = cachedTestLoad(c.load, { dir, env: { TENSORRT_NODE_VARIANT_CACHE: '0' } });
    off(builds.cpu);
    off(builds.cpu);
    expect(c.children()).toBe(6);
  });

  test('lives in TENSORRT_NODE_CACHE_DIR, else the XDG cache folder', () => {
    expect(defaultVariantCacheDir({ TENSORRT_NODE_CACHE_DIR: '/x' })).toBe('/x');
    expect(defaultVariantCacheDir({ XDG_CACHE_HOME: '/y' })).toBe(join('/y', 'tensorrt-node'));
  });
});
