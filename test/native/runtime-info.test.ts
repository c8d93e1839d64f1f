// The package's exported runtime functions, as users import them, and `doctor`.
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { formatRuntimeInfo, register } from '../../src/cli/doctor.js';
import { TensorrtNodeError } from '../../src/errors.js';
import * as pkg from '../../src/index.js';
import { createRuntime } from '../../src/runtime.js';
import { cudaVariantProblem, nvidiaDriverPresent } from '../../src/native/select.js';
import type { TestLoadResult } from '../../src/native/test-load.js';
import { builds } from './builds.js';

describe('runtimeInfo() from the package entry', () => {
  test('on this machine: the local cmake-js build, reasons for each missing piece', () => {
    const info = pkg.runtimeInfo();
    expect(info.addon).toMatchObject({ loaded: true, path: builds.cmake, chosenBy: 'local-build', buildSystem: 'cmake-js' });
    expect(info.addon.choice).toMatch(/local build/);
    const expected = ['library_not_found', 'provider_not_compiled'];
    if (!nvidiaDriverPresent()) {
      expected.push('no_driver', 'no_device');
      expect(pkg.devices()).toEqual([]);
    }
    expect(info.problems.map((p) => p.code)).toEqual(expect.arrayContaining(expected));
    expect(info.tensorrt).toMatchObject({ found: false, version: null, code: 'library_not_found' });
    expect(info.backends.usable).toEqual(['onnxruntime']);
    // JSON-safe: doctor --json prints it as is.
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });

  test('allocHost and friends are exported and share one pool', () => {
    const before = pkg.hostPoolStats().blocksInUse;
    const b = pkg.allocHost(100);
    expect(pkg.hostPoolStats().blocksInUse).toBe(before + 1);
    pkg.releaseHost(b);
    expect(pkg.hostPoolStats().blocksInUse).toBe(before);
  });

  test('never throws where no addon can be loaded; the host functions throw ENOBINARY with the build command', () => {
    const error = new TensorrtNodeError('ENOBINARY', 'no tensorrt-node binary fits linux-x64. Build one with: npm run build:native', {
      skipped: ['cuda13: no NVIDIA driver'],
    });
    const rt = createRuntime(() => ({ loaded: false, error }));
    const info = rt.runtimeInfo();
    expect(info.addon).toMatchObject({ loaded: false, variant: null, skipped: ['cuda13: no NVIDIA driver'], doorbell: false });
    expect(info.problems[0]).toMatchObject({ component: 'addon', code: 'ENOBINARY' });
    expect(info.backends.tensorrt.usable).toBe(false);
    expect(rt.devices()).toEqual([]);
    expect(() => rt.allocHost(16)).toThrow(/npm run build:native/);
    expect(formatRuntimeInfo(info)).toContain('not loaded');
  });

  test('a CUDA variant is ruled out by the driver it finds', () => {
    const report = (cudaVersion: number, devices: number): TestLoadResult => ({
      ok: true,
      build: { variant: 'cuda13', cudaRuntimeVersion: 13000, napiVersion: 8, compiler: '', buildSystem: 'node-gyp' },
      cuda: {
        driver: { libraryFound: cudaVersion > 0, libraryError: '', cudaVersion, kernelModule: '' },
        compiled: true,
        runtimeVersion: 13000,
        driverVersion: cudaVersion,
        error: devices ? 0 : 100,
        errorName: devices ? '' : 'cudaErrorNoDevice',
        errorString: '',
        devices: Array.from({ length: devices }, (_, index) => ({
          index, name: 'GPU', computeCapability: '9.0', totalMemory: 1, pciBusId: '', uuid: '', multiProcessorCount: 1,
        })),
      },
    });
    expect(cudaVariantProblem('cuda13', report(0, 0))).toBe('cuda13: no NVIDIA driver (libcuda.so.1 not found)');
    expect(cudaVariantProblem('cuda13', report(12040, 1))).toBe(
      'cuda13: the driver supports CUDA 12.4, this variant needs 13.0: update the NVIDIA driver',
    );
    expect(cudaVariantProblem('cuda12', report(12040, 1))).toBeNull();
    expect(cudaVariantProblem('cuda13', report(13000, 0))).toMatch(/no CUDA device usable \(cudaErrorNoDevice\)/);
    expect(cudaVariantProblem('cuda13', { ok: false, error: 'test-load of x was killed by SIGSEGV' })).toMatch(/SIGSEGV/);
  });
});

describe('tensorrt-node doctor', () => {
  async function doctor(...args: string[]): Promise<string> {
    const program = new Command().exitOverride();
    register(program);
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      out += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'tensorrt-node', 'doctor', ...args]);
    } finally {
      process.stdout.write = write;
    }
    return out;
  }

  test('prints the variant, the missing pieces and what to do', async () => {
    const text = await doctor();
    expect(text).toMatch(/variant\s+cuda\d+ \(a local build/);
    if (!nvidiaDriverPresent()) expect(text).toContain('no NVIDIA driver (libcuda.so.1 not found)');
    expect(text).toContain('[tensorrt/library_not_found]');
    expect(text).toContain('[provider/provider_not_compiled]');
    expect(text).toMatch(/usable now\s+onnxruntime/);
  });

  test('--json prints runtimeInfo()', async () => {
    const json = JSON.parse(await doctor('--json')) as ReturnType<typeof pkg.runtimeInfo>;
    expect(json.addon.path).toBe(builds.cmake);
    expect(json.problems.length).toBeGreaterThanOrEqual(4);
  });
});
