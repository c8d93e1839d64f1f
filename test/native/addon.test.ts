// The same tests against every build of the addon: cmake-js and node-gyp (same
// sources, same settings) and the cpu variant. test/native/global-setup.ts builds them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type LoadedAddon, loadAddonFile } from '../../src/native/index.js';
import { type Runtime, createRuntime } from '../../src/runtime.js';
import { nvidiaDriverPresent } from '../../src/native/select.js';
import { builds, repoRoot } from './builds.js';

// The suite runs everywhere; a few expectations depend on whether the machine has a GPU.
const gpuMachine = nvidiaDriverPresent();

const suites = [
  { label: 'cmake-js build', path: builds.cmake, buildSystem: 'cmake-js' },
  { label: 'node-gyp build', path: builds.gyp, buildSystem: 'node-gyp' },
  { label: 'cpu variant (cmake-js, TNP_CUDA=OFF)', path: builds.cpu, buildSystem: 'cmake-js' },
] as const;

function runtimeFor(path: string): { addon: LoadedAddon; rt: Runtime } {
  const addon = loadAddonFile(path);
  return { addon, rt: createRuntime(() => ({ loaded: true, addon })) };
}

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe.each(suites)('$label', ({ path, buildSystem }) => {
  const { addon, rt } = runtimeFor(path);
  /** A script of test/native/fixtures in a child process, given this build's path. */
  const runFixture = (name: string, args: string[] = [], nodeFlags: string[] = []) =>
    spawnSync(process.execPath, [...nodeFlags, join(repoRoot, 'test/native/fixtures', name), path, ...args], { encoding: 'utf8', timeout: 120_000 });
  /** A fixture run with the collector at hand; the JSON report it prints. */
  const gcReport = (name: string): Record<string, number | boolean> => {
    const r = runFixture(name, [], ['--expose-gc']);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, number | boolean>;
  };

  test('loads and says how it was built', () => {
    expect(addon.build.buildSystem).toBe(buildSystem);
    expect(addon.build.napiVersion).toBe(8);
    expect(addon.build.variant).toMatch(/^(cpu|cuda\d+)$/);
    if (path === builds.cpu) expect(addon.build.variant).toBe('cpu');
  });

  test('runtimeInfo: every missing piece has a reason, nothing throws', () => {
    const info = rt.runtimeInfo();
    expect(info.addon.loaded).toBe(true);
    expect(info.addon.path).toBe(path);
    // Every build here finds uv.h beside node.
    expect(info.addon.doorbell).toBe(true);
    const codes = info.problems.map((p) => `${p.component}/${p.code}`);
    for (const p of info.problems) {
      expect(p.message.length).toBeGreaterThan(10);
      expect(p.action.length).toBeGreaterThan(10);
    }
    if (info.addon.variant === 'cpu') {
      expect(codes).toContain('device/cuda_not_compiled');
      expect(info.addon.cudaRuntime).toBeNull();
      expect(info.devices).toEqual([]);
    } else {
      expect(info.addon.cudaRuntime).toMatch(/^\d+\.\d$/);
    }
    // TensorRT is not installed on the CI machines: the loader says so, and the
    // addon has no provider compiled (no headers at build time).
    expect(codes).toContain('tensorrt/library_not_found');
    expect(codes).toContain('provider/provider_not_compiled');
    expect(info.backends.tensorrt.usable).toBe(false);
    expect(info.backends.usable).toEqual(['onnxruntime']);
  });

  test('runtimeInfo: the driver and the devices as this machine has them (none here)', () => {
    const info = rt.runtimeInfo();
    const codes = info.problems.map((p) => `${p.component}/${p.code}`);
    if (!gpuMachine) {
      expect(info.devices).toEqual([]);
      expect(rt.devices()).toEqual([]);
      expect(info.driver.found).toBe(false);
      expect(codes).toContain('driver/no_driver');
      if (info.addon.variant !== 'cpu') expect(codes).toContain('device/no_device');
      expect(info.problems.find((p) => p.code === 'no_driver')!.message).toBe('no NVIDIA driver (libcuda.so.1 not found)');
      expect(info.backends.tensorrt.reason).toMatch(/no CUDA device|cpu variant/);
      expect(info.hostMemory.pinned).toBe(false);
    } else {
      expect(info.driver.found).toBe(true);
      if (info.addon.variant !== 'cpu') {
        expect(info.devices.length).toBeGreaterThan(0);
        expect(info.devices[0]!.computeCapability).toMatch(/^\d+\.\d+$/);
        expect(info.hostMemory.pinned).toBe(true);
      }
    }
  });

  test('host buffers: written and read from JS, page-sized classes, released explicitly', () => {
    const before = rt.hostPoolStats();
    const buf = rt.allocHost(10_000);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(10_000);
    for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
    const f32 = new Float32Array(buf.buffer, buf.byteOffset, 2500);
    f32[10] = 1.5;
    expect(buf.readFloatLE(40)).toBe(1.5);
    expect(buf[9_999]).toBe(9_999 & 0xff);

    const held = rt.hostPoolStats();
    expect(held.blocksInUse).toBe(before.blocksInUse + 1);
    expect(held.bytesInUse).toBe(before.bytesInUse + 16_384); // 10 000 bytes → the 16 KiB class
    expect(held.pinned).toBe(gpuMachine && addon.build.variant !== 'cpu');

    rt.releaseHost(buf);
    const after = rt.hostPoolStats();
    expect(after.blocksInUse).toBe(before.blocksInUse);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    expect(after.bytesPooled).toBe(held.bytesPooled + 16_384);
    expect(after.blocksPooled).toBe(held.blocksPooled + 1);

    // Released: detached, so JS can no longer reach the memory.
    expect(buf.length).toBe(0);
    expect(() => buf.fill(1)).toThrow(TypeError);
    expect(thrown(() => rt.releaseHost(buf))).toBeInstanceOf(TypeError);

    // The same size class is served from the pool.
    const again = rt.allocHost(12_000, { pinned: false });
    expect(rt.hostPoolStats().blocksPooled).toBe(after.blocksPooled - 1);
    again.fill(3);
    expect(again.every((v) => v === 3)).toBe(true);
    rt.releaseHost(again);
  });

  test('zero-byte and large buffers', () => {
    const before = rt.hostPoolStats().blocksInUse;
    const empty = rt.allocHost(0); // owns no block; releasing it is a no-op
    expect(empty.length).toBe(0);
    expect(rt.hostPoolStats().blocksInUse).toBe(before);
    rt.releaseHost(empty);
    const big = rt.allocHost(100 * 2 ** 20 + 1); // above the power-of-two classes: 2 MiB steps
    big[big.length - 1] = 9;
    expect(big[big.length - 1]).toBe(9);
    expect(rt.hostPoolStats().bytesInUse).toBeGreaterThanOrEqual(100 * 2 ** 20 + 1);
    rt.releaseHost(big);
  });

  test('bad arguments give TypeError or RangeError with code EINPUT, never a crash', () => {
    const cases: Array<[unknown, typeof TypeError | typeof RangeError]> = [
      [-1, RangeError],
      [1.5, TypeError],
      [Number.NaN, TypeError],
      [Number.POSITIVE_INFINITY, TypeError],
      ['1024', TypeError],
      [null, TypeError],
      [undefined, TypeError],
      [2 ** 33, RangeError], // over the 4 GiB default limit
    ];
    for (const [bytes, kind] of cases) {
      const e = thrown(() => rt.allocHost(bytes as number));
      expect(e, String(bytes)).toBeInstanceOf(kind);
      expect(e.code).toBe('EINPUT');
      // The native layer checks on its own too (other callers, other wrappers).
      const n = thrown(() => addon.binding.allocHost(bytes as number, true));
      expect(n, `native ${String(bytes)}`).toBeInstanceOf(kind);
    }
    expect(thrown(() => rt.allocHost(16, { pinned: 'yes' as unknown as boolean }))).toBeInstanceOf(TypeError);
    expect(thrown(() => rt.releaseHost(Buffer.alloc(16)))).toBeInstanceOf(TypeError);
    expect(thrown(() => rt.releaseHost('buffer' as unknown as Buffer))).toBeInstanceOf(TypeError);
    expect(thrown(() => addon.binding.releaseHost({} as Uint8Array))).toBeInstanceOf(TypeError);
    const owned = rt.allocHost(64);
    expect(thrown(() => rt.releaseHost(owned.subarray(8)))).toBeInstanceOf(TypeError);
    rt.releaseHost(owned);
  });

  test('the allocation limit is configurable', () => {
    const { maxAllocationBytes, maxPooledBytes } = rt.hostPoolStats();
    rt.configureHostPool({ maxAllocationBytes: 1 << 20 });
    try {
      expect(thrown(() => rt.allocHost((1 << 20) + 1))).toBeInstanceOf(RangeError);
      rt.releaseHost(rt.allocHost(1 << 20));
      expect(thrown(() => rt.configureHostPool({ maxPooledBytes: -5 }))).toBeInstanceOf(RangeError);
    } finally {
      rt.configureHostPool({ maxAllocationBytes, maxPooledBytes });
    }
  });

  test('collected Buffers return to the pool; 100 000 alloc/release cycles without RSS growth', () => {
    const report = gcReport('host-memory-child.mjs');
    expect(report.gcHeld).toBe(64);
    expect(report.gcContentOk).toBe(true);
    expect(report.gcAfter).toBe(0); // every dropped Buffer came back through its finalizer
    expect(report.staleFinalizerHarmless).toBe(true);
    expect(report.cycles).toBe(100_000);
    expect(report.cyclesInUseAfter).toBe(0);
    expect(report.bytesPooledAfter as number).toBeLessThanOrEqual(report.maxPooled as number);
    // A leaked block per cycle would be ≥ 100 000 × 4 KiB; allocator noise stays far below this.
    expect(report.rssGrowth as number).toBeLessThan(32 * 2 ** 20);
  });

  test('a worker thread terminated while it loads the addon does not abort the process', () => {
    const r = runFixture('terminate-during-load-child.mjs', ['40']);
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-300) }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(r.stdout).toBe('survived');
  });

  test('sharedMemoryAlias: a plain ArrayBuffer over the same bytes of a SharedArrayBuffer, both ways; bad arguments throw', () => {
    const alias = addon.binding.sharedMemoryAlias!;
    const sab = new SharedArrayBuffer(4096);
    const a = alias(new Uint8Array(sab, 1024, 2048));
    expect(a).toBeInstanceOf(ArrayBuffer);
    expect(a.byteLength).toBe(2048);
    new Uint8Array(sab, 1024)[0] = 7;
    new Uint8Array(sab)[1024 + 2047] = 9;
    expect([new Uint8Array(a)[0], new Uint8Array(a)[2047]]).toEqual([7, 9]);
    new Float32Array(a)[1] = 1.5; // bytes 4..7 of the range
    expect(new Float32Array(sab, 1024, 2)[1]).toBe(1.5);
    expect(() => alias(new Float32Array(sab) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => alias(new Uint8Array(sab, 0, 0))).toThrow(/empty/);
    expect(() => alias({} as Uint8Array)).toThrow(TypeError);
    expect(() => (alias as unknown as () => ArrayBuffer)()).toThrow(TypeError);
  });

  test("threadCpuTimeMs: the calling thread's CPU time, which a spin adds to and a sleep does not", () => {
    const cpu = addon.binding.threadCpuTimeMs!;
    const t0 = cpu()!;
    const w0 = performance.now();
    while (performance.now() - w0 < 100);
    const spun = cpu()! - t0;
    // Wall time spun is the bound from above; most of it is CPU time unless the host stole it.
    expect(spun).toBeLessThanOrEqual(performance.now() - w0 + 1);
    expect(spun).toBeGreaterThan(50);
    const t1 = cpu()!;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    expect(cpu()! - t1).toBeLessThan(5);
    if (process.platform === 'linux') {
      // The same clock Linux keeps in schedstat, which the thread sees updated at ticks only.
      const sched = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
      const [c0, s0] = [cpu()!, sched()];
      const w1 = performance.now();
      while (performance.now() - w1 < 300);
      const [c1, s1] = [cpu()!, sched()];
      expect(Math.abs((c1 - c0) - (s1 - s0))).toBeLessThan(10);
    }
  });

  test('doorbell: rings from worker threads call back on the thread that made it, the last never lost; closed, it says so; a throwing callback is uncaught; bad arguments throw', () => {
    const r = runFixture('doorbell-child.mjs');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { calls: number; lastSeen: number; rang: number; ringAfterClose: boolean; uncaught: string; workerExit: number; errors: string[] };
    expect(report.rang).toBe(8000);
    // Rings coalesce: at least one call, and the last call saw every ring before it.
    expect(report.calls).toBeGreaterThanOrEqual(1);
    expect(report.lastSeen).toBe(8000);
    expect(report.ringAfterClose).toBe(false);
    expect(report.uncaught).toBe('thrown in a doorbell callback');
    // A worker that ended with its bell open: its environment closed it, the process ran on.
    expect(report.workerExit).toBe(0);
    expect(report.errors).toEqual([
      'TypeError: doorbellCreate(callback): expected a function',
      'RangeError: doorbellRing(bell): expected an integer from 0 to 1023, received -1',
      'RangeError: doorbellRing(bell): expected an integer from 0 to 1023, received 2.5',
      'TypeError: doorbellRing(bell): expected the number doorbellCreate returned',
    ]);
  });

  test('sharedMemoryAlias: the alias keeps its memory alive, and lets it go once collected', () => {
    const report = gcReport('shared-alias-child.mjs');
    expect(report.keptCollected).toBe(0);
    expect(report.keptIntact).toBe(true);
    expect(report.cycles).toBe(2200);
    // A build without the release of its owner (tried) collected none of them.
    expect(report.droppedCollected as number).toBeGreaterThanOrEqual(2000);
  });
});
