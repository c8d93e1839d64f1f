/**
 * The TensorRT backend on a machine without TensorRT (or without a GPU): the
 * loader's decisions and the codes they become, checked in child processes
 * (the loader decides once per process, from the environment) against
 * stand-in libraries compiled here with cc: a libnvinfer of the wrong major,
 * one missing a factory, a provider speaking another ABI, one refusing the
 * library, one whose build fails on an ONNX node or succeeds with progress.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensorrtBackend, tensorrtAvailability } from '../../src/backends/tensorrt/index.js';

const root = resolve(__dirname, '../..');
const fixtures = join(root, 'test/tensorrt/fixtures');
let dir = '';

function cc(out: string, source: string, ...defines: string[]): string {
  const file = join(dir, out);
  execFileSync('cc', ['-shared', '-fPIC', `-I${join(root, 'native/tensorrt')}`, ...defines.map((d) => `-D${d}`), '-o', file, join(fixtures, source)]);
  return file;
}

interface Probe {
  addon: boolean;
  error?: string;
  loader: { code: string; reason: string; libraryVersion: number; providerLoaded: boolean };
  availability: { usable: boolean; code?: string; reason: string; loader?: string; version?: string };
  provider: null | { usable: boolean; code: string | null; reason: string; libraryVersion?: number; libraryBuildVersion?: number; headerVersion?: number; canBuild?: boolean };
  create: 'resolved' | { code: string; message: string };
  build?: { code?: string; message?: string; node?: number; nodeName?: string; opType?: string; plan?: number[] };
  progress?: { event: string; phase: string }[];
}

function probe(env: Record<string, string>): Probe {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/tensorrt/probe-child.ts')], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const last = r.stdout.trim().split('\n').pop()!;
  const p = JSON.parse(last) as Probe;
  expect(p.addon, p.error).toBe(true);
  return p;
}

// Without a GPU the device is what is missing first; with one, TensorRT is.
function expectUnusable(p: Probe): void {
  expect(p.availability.usable).toBe(false);
  expect(['ENODEVICE', 'ENOTENSORRT']).toContain(p.availability.code);
  expect(p.create).not.toBe('resolved');
  expect((p.create as { code: string }).code).toBe(p.availability.code);
  expect((p.create as { message: string }).message).toContain(p.availability.reason);
}

let files: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tnp-trt-loader-'));
  files = {
    nvinfer11: cc('libnvinfer11.so', 'fake_nvinfer.c', 'FAKE_VERSION=110003', 'WITH_PARSER'),
    nvinfer9: cc('libnvinfer9.so', 'fake_nvinfer.c', 'FAKE_VERSION=90300'),
    noRuntime: cc('libnvinfer-noruntime.so', 'fake_nvinfer.c', 'FAKE_VERSION=110000', 'OMIT_RUNTIME'),
    noVersion: cc('libnvinfer-noversion.so', 'fake_nvinfer.c', 'OMIT_VERSION'),
  };
  mkdirSync(join(dir, 'providers'));
  mkdirSync(join(dir, 'empty'));
  cc('providers/tensorrt_node_provider_trt11.so', 'stub_provider.c');
  // Both majors installed on the library path (found by name, not forced), a provider for 10 only.
  mkdirSync(join(dir, 'both'));
  mkdirSync(join(dir, 'providers10'));
  for (const [major, version] of [[11, 110003], [10, 100300]] as const) {
    cc(`both/libnvinfer.so.${major}`, 'fake_nvinfer.c', `FAKE_VERSION=${version}`);
    cc(`both/libnvonnxparser.so.${major}`, 'fake_nvinfer.c', `FAKE_VERSION=${version}`, 'WITH_PARSER');
  }
  cc('providers10/tensorrt_node_provider_trt10.so', 'stub_provider.c');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TensorRT loader decisions (child processes, stand-in libraries)', () => {
  it('no library: library_not_found, naming the path tried', () => {
    const p = probe({ TENSORRT_NODE_NVINFER_PATH: join(dir, 'absent/libnvinfer.so.11') });
    expect(p.loader.code).toBe('library_not_found');
    expect(p.availability.loader).toBe('library_not_found');
    expect(p.availability.reason).toContain('absent/libnvinfer.so.11');
    expectUnusable(p);
  });

  it('wrong major: unsupported_major, with the version found', () => {
    const p = probe({ TENSORRT_NODE_NVINFER_PATH: files.nvinfer9! });
    expect(p.loader.code).toBe('unsupported_major');
    expect(p.loader.libraryVersion).toBe(90300);
    expect(p.availability.reason).toContain('TensorRT 9.3');
    expectUnusable(p);
  });

  it('missing factory symbol: missing_symbol, naming it', () => {
    const p = probe({ TENSORRT_NODE_NVINFER_PATH: files.noRuntime! });
    expect(p.loader.code).toBe('missing_symbol');
    expect(p.availability.reason).toContain('createInferRuntime_INTERNAL');
    expectUnusable(p);
  });

  it('no getInferLibVersion: missing_symbol (not a TensorRT library)', () => {
    const p = probe({ TENSORRT_NODE_NVINFER_PATH: files.noVersion! });
    expect(p.loader.code).toBe('missing_symbol');
    expect(p.availability.reason).toContain('getInferLibVersion');
    expectUnusable(p);
  });

  it('no ONNX parser: parser_not_found', () => {
    const p = probe({
      TENSORRT_NODE_NVINFER_PATH: files.nvinfer11!,
      TENSORRT_NODE_ONNXPARSER_PATH: join(dir, 'absent/libnvonnxparser.so.11'),
    });
    expect(p.loader.code).toBe('parser_not_found');
    expectUnusable(p);
  });

  it('no provider for the installed major: provider_not_compiled, saying how to build it', () => {
    const p = probe({
      TENSORRT_NODE_NVINFER_PATH: files.nvinfer11!,
      TENSORRT_NODE_ONNXPARSER_PATH: files.nvinfer11!,
      TENSORRT_NODE_PROVIDER_DIR: join(dir, 'empty'),
    });
    expect(p.loader.code).toBe('provider_not_compiled');
    expect(p.availability.reason).toContain('tensorrt_node_provider_trt11.so');
    expectUnusable(p);
  });

  it('TensorRT 10 and 11 both installed, a provider for 10 only: 10 is loaded, not 11 refused', () => {
    const p = probe({
      LD_LIBRARY_PATH: [join(dir, 'both'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      TENSORRT_NODE_PROVIDER_DIR: join(dir, 'providers10'),
    });
    expect(p.loader.code).toBe('ok');
    expect(p.loader.libraryVersion).toBe(100300);
    expect(p.loader.providerLoaded).toBe(true);
  });

  it('both installed, a provider for neither: 11 is the one reported (newest first)', () => {
    const p = probe({ LD_LIBRARY_PATH: join(dir, 'both'), TENSORRT_NODE_PROVIDER_DIR: join(dir, 'empty') });
    expect(p.loader.code).toBe('provider_not_compiled');
    expect(p.loader.libraryVersion).toBe(110003);
    expectUnusable(p);
  });

  const withProvider = (extra: Record<string, string> = {}): Probe =>
    probe({
      TENSORRT_NODE_NVINFER_PATH: files.nvinfer11!,
      TENSORRT_NODE_ONNXPARSER_PATH: files.nvinfer11!,
      TENSORRT_NODE_PROVIDER_DIR: join(dir, 'providers'),
      ...extra,
    });

  it('a provider speaking another ABI is refused with ENOTENSORRT', () => {
    const p = withProvider({ STUB_ABI: 'mismatch' });
    expect(p.loader.code).toBe('ok');
    expect(p.provider?.usable).toBe(false);
    expect(p.provider?.code).toBe('ENOTENSORRT');
    expect(p.provider?.reason).toContain('another provider ABI');
    expectUnusable(p);
  });

  it("the provider's refusal of the library reaches JS with its message", () => {
    const p = withProvider({ STUB_OPEN: 'refuse' });
    expect(p.provider?.usable).toBe(false);
    expect(p.provider?.reason).toContain('stub refuses this libnvinfer');
    expectUnusable(p);
  });

  it('an accepted provider reports the library version; the device still decides', () => {
    const p = withProvider({ STUB_BUILD: 'parse_error', PROBE_BUILD: '1' });
    expect(p.loader.code).toBe('ok');
    expect(p.loader.providerLoaded).toBe(true);
    expect(p.provider).toMatchObject({ usable: true, libraryVersion: 110000, libraryBuildVersion: 42, headerVersion: 110000, canBuild: true });
    expect(p.availability.version).toBe('11.0.3');
    // A parser failure becomes EBUILDFAILED naming the ONNX node and operator.
    expect(p.build).toMatchObject({ code: 'EBUILDFAILED', node: 3, nodeName: 'conv_3', opType: 'Conv' });
    expect(p.build?.message).toContain('unsupported attribute');
    expect(p.progress?.map((e) => e.event)).toEqual(['start', 'step', 'finish']);
  });

  it('a set cancel flag stops the build at its first step with EABORTED (TensorRT\'s progress monitor returns false there)', () => {
    const p = withProvider({ STUB_BUILD: 'ok', PROBE_BUILD: '1', PROBE_CANCEL: '1' });
    expect(p.build).toMatchObject({ code: 'EABORTED' });
    expect(p.build?.message).toContain('build cancelled');
    expect(p.progress?.map((e) => e.event)).toEqual(['start', 'step', 'finish']);
    // Without the flag the same stub builds.
    expect(withProvider({ STUB_BUILD: 'ok', PROBE_BUILD: '1' }).build?.plan).toEqual([4, 3, 2, 1]);
  });

  it('a successful build returns the plan bytes the provider made', () => {
    const p = withProvider({ STUB_BUILD: 'ok', PROBE_BUILD: '1' });
    expect(p.build?.plan).toEqual([4, 3, 2, 1]);
    expect(p.progress).toHaveLength(3);
  });
});

describe('backend tensorrt on this machine', () => {
  it('is unusable with a code and a reason, and creating it rejects with that code', async () => {
    const a = tensorrtAvailability();
    if (a.usable) {
      // A machine with a GPU and TensorRT: then test:gpu covers the backend.
      expect(a.reason).toMatch(/TensorRT \d+\.\d+/);
      return;
    }
    expect(['ENODEVICE', 'ENOTENSORRT', 'ECUDAVERSION']).toContain(a.code);
    expect(a.reason.length).toBeGreaterThan(10);
    await expect(createTensorrtBackend(new Uint8Array(8))).rejects.toMatchObject({ code: a.code, name: 'TensorrtNodeError' });
  });
});
