import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TensorrtNodeError } from '../errors.js';
import { type Candidate, type VariantName, VARIANT_PATTERN, cudaMajor, listCandidates } from './candidates.js';
import type { TestLoadResult } from './test-load.js';

/** How the addon binary in use was chosen. */
export type ChosenBy =
  | 'path' // TENSORRT_NODE_ADDON_PATH named the file
  | 'forced' // TENSORRT_NODE_VARIANT named the variant
  | 'local-build' // build/Release (or build/Debug) exists: a build from source wins
  | 'driver' // a CUDA prebuild whose major the driver supports, test-loaded
  | 'fallback' // the cpu prebuild, after CUDA variants were ruled out (see skipped)
  | 'cpu-only'; // the cpu prebuild, with no CUDA prebuild for this platform (linux-arm64 has none)

export interface AddonChoice {
  path: string;
  source: 'path' | 'local' | 'prebuild';
  /** Known for prebuilds and test-loaded builds; otherwise read from the addon once loaded. */
  variant: VariantName | null;
  chosenBy: ChosenBy;
  /** Why each other candidate was not used, for runtimeInfo(). */
  skipped: string[];
}

export interface SelectOptions {
  root: string;
  env: NodeJS.ProcessEnv;
  platform: string;
  arch: string;
  testLoad: (path: string) => TestLoadResult;
  /** Whether an NVIDIA kernel driver is visible; when not, CUDA variants are skipped without a test-load. */
  nvidiaDriverPresent: () => boolean;
}

export const BUILD_COMMAND =
  'npm run build:native (cmake-js: needs cmake and a C++17 compiler; the CUDA toolkit is optional), ' +
  'or npm run prebuild for the cpu and cuda variants';

function noBinary(message: string, details: Record<string, unknown> = {}): TensorrtNodeError {
  return new TensorrtNodeError('ENOBINARY', `${message}. Build one with: ${BUILD_COMMAND}`, details);
}

/** Looks for the kernel driver the way a person would: its /proc entry, its device node, WSL's library. */
export function nvidiaDriverPresent(): boolean {
  return ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/usr/lib/wsl/lib/libcuda.so.1'].some((p) => existsSync(p));
}

export function cudaVersionString(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** Why a CUDA variant cannot serve this machine, or null when it can. */
export function cudaVariantProblem(variant: VariantName, r: TestLoadResult): string | null {
  if (!r.ok) return r.error;
  const need = cudaMajor(variant) * 1000;
  const driver = r.cuda.driver;
  if (!driver.libraryFound) return `${variant}: no NVIDIA driver (libcuda.so.1 not found)`;
  if (driver.cudaVersion < need) {
    return (
      `${variant}: the driver supports CUDA ${cudaVersionString(driver.cudaVersion)}, ` +
      `this variant needs ${cudaVersionString(need)}: update the NVIDIA driver`
    );
  }
  if (r.cuda.devices.length === 0) return `${variant}: no CUDA device usable (${r.cuda.errorName || 'none found'})`;
  return null;
}

/**
 * Picks the addon binary: TENSORRT_NODE_ADDON_PATH, else a forced TENSORRT_NODE_VARIANT,
 * else a local build, else the newest CUDA prebuild the driver supports (test-loaded in a
 * child process), else the cpu prebuild. Throws ENOBINARY, naming the build command,
 * when nothing fits.
 */
export function chooseAddon(o: SelectOptions): AddonChoice {
  const explicit = o.env.TENSORRT_NODE_ADDON_PATH;
  if (explicit) {
    if (!existsSync(explicit)) throw noBinary(`TENSORRT_NODE_ADDON_PATH=${explicit} does not exist`);
    // Absolute, so that require() does not read a relative path as a package name.
    return { path: resolve(explicit), source: 'path', variant: null, chosenBy: 'path', skipped: [] };
  }

  const forced = o.env.TENSORRT_NODE_VARIANT || undefined;
  if (forced !== undefined && !VARIANT_PATTERN.test(forced)) {
    throw noBinary(`TENSORRT_NODE_VARIANT=${forced} is not a variant name (cpu, cuda12, cuda13)`);
  }
  const candidates = listCandidates({
    root: o.root,
    platform: o.platform,
    arch: o.arch,
    prebuildsOnly: Boolean(o.env.PREBUILDS_ONLY),
  });
  const skipped: string[] = [];
  const local = candidates.find((c) => c.source === 'local');
  const prebuilds = candidates.filter((c) => c.source === 'prebuild');

  if (forced !== undefined) {
    if (local) {
      // A local build's variant is known only by loading it: do that in a child.
      const r = o.testLoad(local.path);
      if (r.ok && r.build.variant === forced) {
        return { path: local.path, source: 'local', variant: forced, chosenBy: 'forced', skipped };
      }
      skipped.push(
        r.ok ? `local build ${local.path} is ${r.build.variant}, not the forced ${forced}` : r.error,
      );
    }
    const hit = prebuilds.find((c) => c.variant === forced);
    if (hit) return { path: hit.path, source: 'prebuild', variant: forced, chosenBy: 'forced', skipped };
    const have = [...(local ? ['local build'] : []), ...prebuilds.map((c) => c.variant)].join(', ') || 'none';
    throw noBinary(
      `TENSORRT_NODE_VARIANT=${forced}: no ${forced} binary for ${o.platform}-${o.arch} (found: ${have})`,
      { variant: forced, skipped },
    );
  }

  if (local) return { path: local.path, source: 'local', variant: null, chosenBy: 'local-build', skipped };

  const cuda = prebuilds
    .filter((c): c is Candidate & { variant: string } => c.variant !== null && cudaMajor(c.variant) > 0)
    .sort((a, b) => cudaMajor(b.variant) - cudaMajor(a.variant));
  if (cuda.length > 0 && !o.nvidiaDriverPresent()) {
    skipped.push(
      `${cuda.map((c) => c.variant).join(', ')}: no NVIDIA driver (no /proc/driver/nvidia/version, /dev/nvidiactl)`,
    );
  } else {
    for (const c of cuda) {
      const problem = cudaVariantProblem(c.variant, o.testLoad(c.path));
      if (problem === null) return { path: c.path, source: 'prebuild', variant: c.variant, chosenBy: 'driver', skipped };
      skipped.push(problem);
    }
  }
  const cpu = prebuilds.find((c) => c.variant === 'cpu');
  if (cpu) return { path: cpu.path, source: 'prebuild', variant: 'cpu', chosenBy: cuda.length ? 'fallback' : 'cpu-only', skipped };
  // No cpu binary: a CUDA one still serves the CPU paths (the CUDA runtime is linked
  // statically, so it loads without a driver), unless its test-load failed.
  const usable = cuda.find((c) => !skipped.some((s) => s.includes(c.path)));
  if (usable) return { path: usable.path, source: 'prebuild', variant: usable.variant, chosenBy: 'fallback', skipped };
  throw noBinary(
    `no tensorrt-node binary fits ${o.platform}-${o.arch} (looked in ${o.root}/build/Release and ${o.root}/prebuilds)` +
      (skipped.length ? `; skipped: ${skipped.join('; ')}` : ''),
    { skipped },
  );
}
