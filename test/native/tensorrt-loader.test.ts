// The TensorRT loader's decisions that test/tensorrt/loader.test.ts does not reach:
// a parser without its factory, a provider object that cannot be loaded, and the
// search order. Stand-in libraries are compiled here with cc; each case runs in a
// child process because the loader decides once per process.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NativeTensorrtInfo } from '../../src/native/binding.js';
import { builds } from './builds.js';

let dir = '';

function compile(name: string, source: string): string {
  const c = join(dir, `${name}.c`);
  const so = join(dir, `${name}.so`);
  writeFileSync(c, source);
  execFileSync('cc', ['-shared', '-fPIC', '-o', so, c]);
  return so;
}

function probe(env: Record<string, string>): NativeTensorrtInfo {
  const script = 'const m={exports:{}};process.dlopen(m,process.argv[1]);process.stdout.write(JSON.stringify(m.exports.tensorrtInfo()))';
  const r = spawnSync(process.execPath, ['-e', script, builds.cmake], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as NativeTensorrtInfo;
}

const files: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tnp-loader-'));
  files.nvinfer = compile(
    'nvinfer10',
    'int getInferLibVersion(void){return 100302;}\n' +
      'void* createInferBuilder_INTERNAL(void* l,int v){(void)l;(void)v;return 0;}\n' +
      'void* createInferRuntime_INTERNAL(void* l,int v){(void)l;(void)v;return 0;}\n',
  );
  files.parserWithout = compile('parser-without-factory', 'int unrelated(void){return 0;}\n');
  files.parser = compile('parser', 'void* createNvOnnxParser_INTERNAL(void* n,void* l,int v){(void)n;(void)l;(void)v;return 0;}\n');
  mkdirSync(join(dir, 'broken-provider'));
  writeFileSync(join(dir, 'broken-provider/tensorrt_node_provider_trt10.so'), 'not an ELF object');
  mkdirSync(join(dir, 'no-provider'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TensorRT loader (native/tensorrt/loader.cc)', () => {
  test('by default it tries libnvinfer.so.11, then .so.10, and says how to install', () => {
    const r = probe({ LD_LIBRARY_PATH: join(dir, 'no-provider') });
    expect(r.code).toBe('library_not_found');
    expect(r.tried.map((t) => t.split(':')[0])).toEqual(['libnvinfer.so.11', 'libnvinfer.so.10']);
    expect(r.reason).toMatch(/install TensorRT 10 or 11/);
    expect(r.addonPath).toBe(builds.cmake);
  });

  test('a parser without createNvOnnxParser_INTERNAL: parser_missing_symbol', () => {
    const r = probe({ TENSORRT_NODE_NVINFER_PATH: files.nvinfer!, TENSORRT_NODE_ONNXPARSER_PATH: files.parserWithout! });
    expect(r).toMatchObject({ code: 'parser_missing_symbol', libraryFound: true, libraryVersion: 100302, major: 10, minor: 3, patch: 2 });
    expect(r.reason).toContain('createNvOnnxParser_INTERNAL');
  });

  test('a provider object that cannot be loaded: provider_load_failed, with dlopen\'s words', () => {
    const r = probe({
      TENSORRT_NODE_NVINFER_PATH: files.nvinfer!,
      TENSORRT_NODE_ONNXPARSER_PATH: files.parser!,
      TENSORRT_NODE_PROVIDER_DIR: join(dir, 'broken-provider'),
    });
    expect(r).toMatchObject({ code: 'provider_load_failed', parserFound: true, providersCompiled: [10], providerCompiled: true });
    expect(r.providerLoaded).toBe(false);
    expect(r.reason).toMatch(/could not be loaded: .*tensorrt_node_provider_trt10\.so/);
  });

  test('no provider beside the addon: provider_not_compiled names the build setting', () => {
    const r = probe({
      TENSORRT_NODE_NVINFER_PATH: files.nvinfer!,
      TENSORRT_NODE_ONNXPARSER_PATH: files.parser!,
      TENSORRT_NODE_PROVIDER_DIR: join(dir, 'no-provider'),
    });
    expect(r).toMatchObject({ code: 'provider_not_compiled', providersCompiled: [] });
    expect(r.reason).toContain('TENSORRT_ROOT_10=');
  });
});
