import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { TensorrtNodeError } from '../errors.js';
import type { NativeBinding, NativeBuildInfo } from './binding.js';
import { packageRoot } from './package-root.js';
import { type AddonChoice, type ChosenBy, type SelectOptions, chooseAddon, nvidiaDriverPresent } from './select.js';
import { testLoad } from './test-load.js';
import { cachedTestLoad, defaultVariantCacheDir } from './variant-cache.js';

export type { NativeBinding } from './binding.js';
export type { AddonChoice, ChosenBy } from './select.js';

export interface LoadedAddon {
  binding: NativeBinding;
  path: string;
  build: NativeBuildInfo;
  chosenBy: ChosenBy;
  /** Why other binaries were not used. */
  skipped: string[];
}

export type AddonState = { loaded: true; addon: LoadedAddon } | { loaded: false; error: TensorrtNodeError };

const requireNative = createRequire(import.meta.url);

/** Loads one .node file and checks it is this package's addon. */
export function loadAddonFile(path: string, choice?: Omit<AddonChoice, 'path'>): LoadedAddon {
  let binding: NativeBinding;
  try {
    binding = requireNative(path) as NativeBinding;
  } catch (e) {
    throw new TensorrtNodeError('ENOBINARY', `the addon ${path} failed to load: ${(e as Error).message}`, { path }, {
      cause: e,
    });
  }
  if (typeof binding.buildInfo !== 'function') {
    throw new TensorrtNodeError('ENOBINARY', `${path} is not a tensorrt-node addon`, { path });
  }
  return { binding, path, build: binding.buildInfo(), chosenBy: choice?.chosenBy ?? 'path', skipped: choice?.skipped ?? [] };
}

/**
 * Chooses the addon (chooseAddon) and loads it. A local build (build/Release) that fails to
 * load, such as one made on a newer system than this one, gives way to the prebuilds, its
 * failure first in `skipped`; where no prebuild fits either, its own error is the one thrown.
 */
export function chooseAndLoad(o: SelectOptions): LoadedAddon {
  const choice = chooseAddon(o);
  try {
    return loadAddonFile(choice.path, choice);
  } catch (e) {
    if (choice.source !== 'local') throw e;
    let prebuilt: AddonChoice;
    try {
      prebuilt = chooseAddon({ ...o, env: { ...o.env, PREBUILDS_ONLY: '1' } });
    } catch {
      throw e;
    }
    return loadAddonFile(prebuilt.path, { ...prebuilt, skipped: [`local build: ${(e as Error).message}`, ...prebuilt.skipped] });
  }
}

let state: AddonState | undefined;

/** Chooses and loads the addon once per process; never throws (see addon()). */
export function addonState(): AddonState {
  if (state) return state;
  try {
    const addon = chooseAndLoad({
      root: packageRoot(),
      env: process.env,
      platform: platform(),
      arch: arch(),
      // Remembered across processes: a start on an unchanged machine needs no child.
      testLoad: cachedTestLoad(testLoad, { dir: defaultVariantCacheDir(process.env), env: process.env }),
      nvidiaDriverPresent,
    });
    state = { loaded: true, addon };
  } catch (e) {
    const error =
      e instanceof TensorrtNodeError
        ? e
        : new TensorrtNodeError('ENOBINARY', `the native addon could not be loaded: ${(e as Error).message}`, {}, {
            cause: e,
          });
    state = { loaded: false, error };
  }
  return state;
}

/** The loaded addon; throws the ENOBINARY error (with the build command) when there is none. */
export function addon(): LoadedAddon {
  const s = addonState();
  if (!s.loaded) throw s.error;
  return s.addon;
}
