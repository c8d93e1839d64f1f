/**
 * The TensorRT backend's pure decisions: availability from what the addon
 * reports (including the GPU-present branches this machine cannot reach), the
 * engine cache key's TensorRT parts, and the `shapes` option.
 */
import { describe, expect, it } from 'vitest';
import { cacheKey } from '../../src/cache/key.js';
import { cacheKeyPartsFrom, decideAvailability, fromNative, nativeShapes } from '../../src/backends/tensorrt/index.js';
import type { NativeCudaInfo, NativeTensorrtInfo } from '../../src/native/binding.js';
import type { NativeTensorrtProvider } from '../../src/backends/tensorrt/native.js';

const h200 = {
  index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalMemory: 150e9, pciBusId: '0000:19:00.0', uuid: 'GPU-x', multiProcessorCount: 132,
};

function cuda(over: Partial<NativeCudaInfo> = {}): NativeCudaInfo {
  return {
    driver: { libraryFound: true, libraryError: '', cudaVersion: 13000, kernelModule: '580.1' },
    compiled: true, runtimeVersion: 13000, driverVersion: 13000, error: 0, errorName: '', errorString: '',
    devices: [h200], ...over,
  };
}

function loader(over: Partial<NativeTensorrtInfo> = {}): NativeTensorrtInfo {
  return {
    code: 'ok', libraryFound: true, libraryPath: '/usr/lib/libnvinfer.so.10', libraryVersion: 101600, major: 10, minor: 16, patch: 0,
    parserFound: true, parserPath: 'libnvonnxparser.so.10', providersCompiled: [10, 11], providerCompiled: true, providerLoaded: true,
    providerPath: '/x/tensorrt_node_provider_trt10.so', addonPath: '/x/tensorrt_node.node', reason: '', tried: [], ...over,
  };
}

const provider: NativeTensorrtProvider = {
  usable: true, code: null, reason: '', abiVersion: 1, headerVersion: 100000, libraryVersion: 101600, libraryBuildVersion: 7, canBuild: true, cuda: true,
};

describe('decideAvailability', () => {
  it('usable with a device, the library and a provider', () => {
    const a = decideAvailability(cuda(), loader(), provider);
    expect(a).toMatchObject({ usable: true, loader: 'ok', version: '10.16.0' });
    expect(a.reason).toBe('TensorRT 10.16.0 on NVIDIA H200 (sm_90)');
  });

  it('ENOTENSORRT with the loader reason where the GPU is fine but TensorRT is not', () => {
    const reason = 'TensorRT not found (libnvinfer.so.11 and libnvinfer.so.10 could not be opened): install ...';
    const a = decideAvailability(cuda(), loader({ code: 'library_not_found', libraryFound: false, libraryVersion: 0, reason }), null);
    expect(a).toEqual({ usable: false, code: 'ENOTENSORRT', reason, loader: 'library_not_found' });
  });

  it("ENOTENSORRT with the provider's reason where the provider refuses", () => {
    const a = decideAvailability(cuda(), loader(), { ...provider, usable: false, code: 'ENOTENSORRT', reason: 'ABI differs' });
    expect(a).toMatchObject({ usable: false, code: 'ENOTENSORRT', reason: 'ABI differs' });
  });

  it('ENODEVICE without a driver, without devices, and for the cpu variant, still saying what TensorRT is', () => {
    const noDriver = decideAvailability(cuda({ driver: { libraryFound: false, libraryError: 'x', cudaVersion: 0, kernelModule: '' }, devices: [], error: 35 }), loader(), provider);
    expect(noDriver).toMatchObject({ usable: false, code: 'ENODEVICE' });
    expect(noDriver.reason).toMatch(/no NVIDIA driver.*TensorRT 10\.16\.0 found/);
    const noDevice = decideAvailability(cuda({ devices: [], error: 100, errorName: 'cudaErrorNoDevice' }), loader(), provider);
    expect(noDevice).toMatchObject({ code: 'ENODEVICE' });
    expect(noDevice.reason).toContain('cudaErrorNoDevice');
    const cpu = decideAvailability(cuda({ compiled: false, devices: [] }), loader({ code: 'library_not_found', reason: 'no lib' }), null);
    expect(cpu.code).toBe('ENODEVICE');
    expect(cpu.reason).toMatch(/cpu variant.*no lib/);
  });

  it('ECUDAVERSION where the driver is older than the runtime', () => {
    const a = decideAvailability(cuda({ devices: [], error: 35, driverVersion: 12040 }), loader(), provider);
    expect(a).toMatchObject({ usable: false, code: 'ECUDAVERSION' });
    expect(a.reason).toContain('12.4');
  });
});

describe('engine cache key: TensorRT parts', () => {
  const base = { libraryVersion: 101600, libraryBuildVersion: 7, headerVersion: 100000, gpuName: 'NVIDIA H200', computeCapability: '9.0' };
  const key = (info: typeof base): string =>
    cacheKey({ modelHash: 'ab'.repeat(32), options: { precision: 'int8' }, backend: 'tensorrt', backendVersion: '10.16.0', backendParts: cacheKeyPartsFrom(info) });

  it('is stable for the same parts', () => {
    expect(key({ ...base })).toBe(key(base));
  });

  it('changes with each part: library version, build, provider headers, GPU name, compute capability', () => {
    const variants = [
      { ...base, libraryVersion: 101601 },
      { ...base, libraryBuildVersion: 8 },
      { ...base, headerVersion: 101600 },
      { ...base, gpuName: 'NVIDIA H100 80GB HBM3' },
      { ...base, computeCapability: '8.9' },
    ];
    const keys = new Set([key(base), ...variants.map(key)]);
    expect(keys.size).toBe(variants.length + 1);
  });
});

describe('shapes option', () => {
  it('takes fixed shapes and min/opt/max ranges', () => {
    expect(nativeShapes({ x: [1, 3, 48, 192], y: { min: [1, 8], opt: [4, 8], max: [64, 8] } })).toEqual([
      { name: 'x', min: [1, 3, 48, 192], opt: [1, 3, 48, 192], max: [1, 3, 48, 192] },
      { name: 'y', min: [1, 8], opt: [4, 8], max: [64, 8] },
    ]);
    expect(nativeShapes(undefined)).toEqual([]);
  });

  it('turns -1 on axis 0 of a fixed shape into 1..maxBatchSize, tuned for the largest batch', () => {
    expect(nativeShapes({ x: [-1, 3, 48, 192] }, 32)).toEqual([
      { name: 'x', min: [1, 3, 48, 192], opt: [32, 3, 48, 192], max: [32, 3, 48, 192] },
    ]);
    expect(() => nativeShapes({ x: [1, -1, 48] })).toThrow(expect.objectContaining({ code: 'EINPUT' }));
  });

  it('rejects bad ranges with EINPUT naming the input', () => {
    expect(() => nativeShapes({ y: { min: [4, 8], opt: [1, 8], max: [64, 8] } })).toThrow(expect.objectContaining({ code: 'EINPUT', details: expect.objectContaining({ tensor: 'y' }) }));
    expect(() => nativeShapes({ z: { min: [1], opt: [1, 2], max: [1, 2] } })).toThrow(/ranks 1, 2, 2/);
    expect(() => nativeShapes({ w: [1.5, 2] })).toThrow(expect.objectContaining({ code: 'EINPUT' }));
  });
});

describe('native errors', () => {
  it('a parser failure becomes EBUILDFAILED naming the ONNX node, operator and TensorRT\'s message', () => {
    const native = Object.assign(new Error('TensorRT build failed: ONNX parser: Assertion failed: axis is out of range'), {
      code: 'EBUILDFAILED', status: 4, node: 7, nodeName: 'Reshape_7', opType: 'Reshape',
    });
    const e = fromNative(native, 'EBUILDFAILED');
    expect(e).toMatchObject({ name: 'TensorrtNodeError', code: 'EBUILDFAILED', details: { node: 7, nodeName: 'Reshape_7', opType: 'Reshape' } });
    expect(e.message).toBe("TensorRT build failed: ONNX parser: Assertion failed: axis is out of range (ONNX node #7 'Reshape_7', op Reshape)");
    expect(e.cause).toBe(native);
  });

  it('keeps known codes and maps unknown ones to the fallback', () => {
    expect(fromNative(Object.assign(new Error('x'), { code: 'EINPUT' }), 'ENODEVICE').code).toBe('EINPUT');
    expect(fromNative(Object.assign(new Error('cudaErrorLaunchFailure'), { code: 'WHATEVER' }), 'ENODEVICE').code).toBe('ENODEVICE');
  });
});
