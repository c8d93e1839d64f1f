// Variant selection over real binaries: the cpu build and the cuda13 build laid out
// as prebuildify names them, in a scratch package root.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative as relativePath } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TensorrtNodeError } from '../../src/errors.js';
import { listCandidates, variantOfFile } from '../../src/native/candidates.js';
import { chooseAndLoad, loadAddonFile } from '../../src/native/index.js';
import { packageRoot } from '../../src/native/package-root.js';
import { createRuntime } from '../../src/runtime.js';
import { type SelectOptions, chooseAddon, nvidiaDriverPresent } from '../../src/native/select.js';
import { type TestLoadResult, testLoad } from '../../src/native/test-load.js';
import { builds, repoRoot } from './builds.js';

const scratch = mkdtempSync(join(tmpdir(), 'tnp-select-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const cudaVariant = loadAddonFile(builds.cmake).build.variant; // cuda13 with this machine's toolkit

function packageWith(name: string, files: Record<string, string>): string {
  const root = join(scratch, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'tensorrt-node' }));
  for (const [rel, from] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    if (from === '') writeFileSync(join(root, rel), 'not a binary');
    else copyFileSync(from, join(root, rel));
  }
  return root;
}

const prebuilt = {
  'prebuilds/linux-x64/tensorrt_node.cpu.glibc.node': builds.cpu,
  [`prebuilds/linux-x64/tensorrt_node.${cudaVariant}.glibc.node`]: builds.cmake,
  // Not for this machine: node-gyp-build's tag and tuple rules leave them out.
  'prebuilds/linux-x64/tensorrt_node.cpu.musl.node': '',
  'prebuilds/darwin-arm64/tensorrt_node.cpu.napi.node': '',
};
const prebuiltRoot = packageWith('prebuilt', prebuilt);
const localRoot = packageWith('local', { ...prebuilt, 'build/Release/tensorrt_node.node': builds.cmake });
const emptyRoot = packageWith('empty', {});

function options(root: string, env: NodeJS.ProcessEnv = {}, driver = nvidiaDriverPresent): SelectOptions {
  return { root, env, platform: 'linux', arch: 'x64', testLoad, nvidiaDriverPresent: driver };
}

function noBinary(fn: () => unknown): TensorrtNodeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TensorrtNodeError);
    expect((e as TensorrtNodeError).code).toBe('ENOBINARY');
    return e as TensorrtNodeError;
  }
  throw new Error('expected ENOBINARY');
}

describe('variant selection', () => {
  test('candidates follow node-gyp-build: local build first, then matching prebuilds with their variant tag', () => {
    expect(variantOfFile('tensorrt_node.cuda13.glibc.node')).toBe('cuda13');
    const c = listCandidates({ root: localRoot, platform: 'linux', arch: 'x64', prebuildsOnly: false });
    expect(c.map((x) => [x.source, x.variant])).toEqual([
      ['local', null],
      ['prebuild', 'cpu'],
      ['prebuild', cudaVariant],
    ]);
    const p = listCandidates({ root: localRoot, platform: 'linux', arch: 'x64', prebuildsOnly: true });
    expect(p.every((x) => x.source === 'prebuild')).toBe(true);
  });

  test('without a driver the CUDA prebuild is skipped with the reason, and cpu is used', () => {
    expect(nvidiaDriverPresent()).toBe(false); // this machine has no NVIDIA driver
    const choice = chooseAddon(options(prebuiltRoot));
    expect(choice.variant).toBe('cpu');
    expect(choice.chosenBy).toBe('fallback');
    expect(choice.skipped.join()).toMatch(/no NVIDIA driver/);
    expect(loadAddonFile(choice.path).build.variant).toBe('cpu');
    // What to do points at the reason the CUDA variants were ruled out, not at a build.
    const { path, ...rest } = choice;
    const info = createRuntime(() => ({ loaded: true, addon: loadAddonFile(path, rest) })).runtimeInfo();
    const device = info.problems.find((p) => p.code === 'cuda_not_compiled')!;
    expect(device.action).toMatch(new RegExp(`^the CUDA variants were ruled out \\(${cudaVariant}: no NVIDIA driver.*\\); one loads once that is fixed$`));
    expect(device.action).not.toMatch(/npm run build:native/);
    // The loader joins variants ruled out for one reason, as it did with both prebuilds packed.
    const both = createRuntime(() => ({ loaded: true, addon: loadAddonFile(path, { ...rest, skipped: ['cuda13, cuda12: no NVIDIA driver (no /dev/nvidiactl)'] }) })).runtimeInfo();
    expect(both.problems.find((p) => p.code === 'cuda_not_compiled')!.action).toBe('the CUDA variants were ruled out (cuda13, cuda12: no NVIDIA driver (no /dev/nvidiactl)); one loads once that is fixed');
  });

  test('where the prebuilds hold no CUDA variant (linux-arm64), the cpu one is the only choice and doctor points at a build from source', () => {
    const arm64Root = packageWith('arm64', { 'prebuilds/linux-arm64/tensorrt_node.cpu.glibc.node': builds.cpu });
    const choice = chooseAddon({ ...options(arm64Root, {}, () => true), arch: 'arm64' });
    expect(choice).toMatchObject({ variant: 'cpu', chosenBy: 'cpu-only', skipped: [] });
    expect(relativePath(arm64Root, choice.path)).toBe('prebuilds/linux-arm64/tensorrt_node.cpu.glibc.node');
    // This machine's cpu build stands in for the arm64 binary: what is read is the wording.
    const { path, ...rest } = choice;
    const info = createRuntime(() => ({ loaded: true, addon: loadAddonFile(builds.cpu, rest) })).runtimeInfo();
    expect(info.addon.choice).toBe('the cpu prebuild: the package has no CUDA prebuild for this platform');
    const device = info.problems.find((p) => p.code === 'cuda_not_compiled')!;
    expect(device.action).toBe(`no CUDA prebuild ships for ${process.platform}-${process.arch}: build from source with the CUDA toolkit installed: npm run build:native`);
  });

  test('where a driver seems present, the CUDA prebuild is test-loaded in a child and ruled out by what it reports', () => {
    const choice = chooseAddon(options(prebuiltRoot, {}, () => true));
    expect(choice.variant).toBe('cpu');
    expect(choice.skipped).toEqual([`${cudaVariant}: no NVIDIA driver (libcuda.so.1 not found)`]);
  });

  test('a test-load that fails is reported, not fatal', () => {
    const r = testLoad(join(prebuiltRoot, 'prebuilds/linux-x64/tensorrt_node.cpu.musl.node'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/test-load of .* exited with 1/);
  });

  test('TENSORRT_NODE_VARIANT forces a variant', () => {
    const cuda = chooseAddon(options(prebuiltRoot, { TENSORRT_NODE_VARIANT: cudaVariant }));
    expect(cuda).toMatchObject({ variant: cudaVariant, chosenBy: 'forced', source: 'prebuild' });
    expect(loadAddonFile(cuda.path).build.variant).toBe(cudaVariant);
    const cpu = chooseAddon(options(prebuiltRoot, { TENSORRT_NODE_VARIANT: 'cpu' }));
    expect(cpu).toMatchObject({ variant: 'cpu', chosenBy: 'forced' });
  });

  test('a forced variant that is missing names the command that builds one', () => {
    const e = noBinary(() => chooseAddon(options(prebuiltRoot, { TENSORRT_NODE_VARIANT: 'cuda12' })));
    expect(e.message).toMatch(/TENSORRT_NODE_VARIANT=cuda12: no cuda12 binary for linux-x64/);
    expect(e.message).toContain('npm run build:native');
    expect(noBinary(() => chooseAddon(options(prebuiltRoot, { TENSORRT_NODE_VARIANT: 'gpu' }))).message).toMatch(
      /not a variant name/,
    );
  });

  test('a local build wins; a forced variant checks what the local build is', () => {
    expect(chooseAddon(options(localRoot))).toMatchObject({ chosenBy: 'local-build', source: 'local' });
    const local = chooseAddon(options(localRoot, { TENSORRT_NODE_VARIANT: cudaVariant }));
    expect(local).toMatchObject({ source: 'local', chosenBy: 'forced', variant: cudaVariant });
    const cpu = chooseAddon(options(localRoot, { TENSORRT_NODE_VARIANT: 'cpu' }));
    expect(cpu).toMatchObject({ source: 'prebuild', variant: 'cpu', chosenBy: 'forced' });
    expect(cpu.skipped[0]).toMatch(new RegExp(`local build .* is ${cudaVariant}, not the forced cpu`));
  });

  test('a local build that fails to load gives way to the prebuilds, saying why; with none, its own error', () => {
    // A file that is no shared object stands for a build from a newer system (a glibc it lacks).
    const brokenLocal = { 'build/Release/tensorrt_node.node': '' };
    const loaded = chooseAndLoad(options(packageWith('broken-local', { ...prebuilt, ...brokenLocal }), {}, () => false));
    expect(loaded.path).toMatch(/prebuilds\/linux-x64\/tensorrt_node\.cpu\.glibc\.node$/);
    expect(loaded.build.variant).toBe('cpu');
    expect(loaded.skipped[0]).toMatch(/^local build: the addon .*build\/Release\/tensorrt_node\.node failed to load: /);
    expect(loaded.skipped[1]).toMatch(/no NVIDIA driver/);
    const alone = noBinary(() => chooseAndLoad(options(packageWith('broken-local-alone', brokenLocal))));
    expect(alone.message).toMatch(/build\/Release\/tensorrt_node\.node failed to load/);
    // A local build that loads is used, as before.
    expect(chooseAndLoad(options(localRoot)).path).toBe(join(localRoot, 'build/Release/tensorrt_node.node'));
  });

  test('TENSORRT_NODE_ADDON_PATH names the file', () => {
    expect(chooseAddon(options(emptyRoot, { TENSORRT_NODE_ADDON_PATH: builds.gyp }))).toMatchObject({
      path: builds.gyp,
      chosenBy: 'path',
    });
    noBinary(() => chooseAddon(options(emptyRoot, { TENSORRT_NODE_ADDON_PATH: join(scratch, 'missing.node') })));
    // A path relative to the working directory comes back absolute (require() would take it for a package name).
    const relative = relativePath(process.cwd(), builds.gyp);
    expect(chooseAddon(options(emptyRoot, { TENSORRT_NODE_ADDON_PATH: relative })).path).toBe(builds.gyp);
  });

  test('no binary at all: ENOBINARY with the build command', () => {
    const e = noBinary(() => chooseAddon(options(emptyRoot)));
    expect(e.message).toContain('npm run build:native');
  });

  test('the package root is found from the sources (and from dist/, one level below it)', () => {
    expect(packageRoot()).toBe(repoRoot);
    expect(packageRoot(join(repoRoot, 'dist'))).toBe(repoRoot);
  });

  // The cuda12 binary comes from `npm run fetch:cudart && npm run prebuild` (.ci/run does both).
  const cuda12 = join(repoRoot, 'prebuilds/linux-x64/tensorrt_node.cuda12.glibc.node');
  test.skipIf(!existsSync(cuda12) || cudaVariant !== 'cuda13')(
    'a driver for CUDA 12.4 gets the cuda12 prebuild, after cuda13 is ruled out (the binaries load for real; the driver is simulated)',
    () => {
      const root = packageWith('both-majors', { ...prebuilt, 'prebuilds/linux-x64/tensorrt_node.cuda12.glibc.node': cuda12 });
      // The real test-load of each binary, with the report a 12.4 driver and one device would add.
      const withDriver = (path: string): TestLoadResult => {
        const r = testLoad(path);
        if (!r.ok) return r;
        const device = { index: 0, name: 'simulated', computeCapability: '9.0', totalMemory: 0, pciBusId: '', uuid: '', multiProcessorCount: 1 };
        return { ...r, cuda: { ...r.cuda, driver: { ...r.cuda.driver, libraryFound: true, cudaVersion: 12040 }, devices: [device] } };
      };
      const choice = chooseAddon({ ...options(root, {}, () => true), testLoad: withDriver });
      expect(choice).toMatchObject({ variant: 'cuda12', chosenBy: 'driver', source: 'prebuild' });
      expect(choice.skipped).toEqual(['cuda13: the driver supports CUDA 12.4, this variant needs 13.0: update the NVIDIA driver']);
      const build = loadAddonFile(choice.path).build;
      expect(build.variant).toBe('cuda12');
      expect(Math.floor((build.cudaRuntimeVersion ?? 0) / 1000)).toBe(12);
    },
  );
});
