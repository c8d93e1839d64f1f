/**
 * Remembers test-loads across processes. On a machine with an NVIDIA driver, choosing
 * the addon starts a child process that loads each CUDA prebuild (src/native/test-load.ts);
 * the answer only changes when the binary, the driver, the visible devices or Node do,
 * so it is kept in a small JSON file named by a hash of exactly those, and a process
 * start on an unchanged machine skips the child.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestLoadResult } from './test-load.js';

export interface VariantCacheOptions {
  /** Where the answers live. */
  dir: string;
  env: NodeJS.ProcessEnv;
}

/** The default folder: TENSORRT_NODE_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, /tensorrt-node. */
export function defaultVariantCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TENSORRT_NODE_CACHE_DIR) return env.TENSORRT_NODE_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tensorrt-node');
}

function fileIdentity(path: string): string {
  try {
    const s = statSync(path);
    return `${path}:${s.size}:${s.mtimeMs}`;
  } catch {
    return `${path}:absent`;
  }
}

/** What a test-load's answer depends on besides the binary: the driver, the devices, Node. */
export function machineIdentity(env: NodeJS.ProcessEnv): string {
  let driver = '';
  try {
    driver = readFileSync('/proc/driver/nvidia/version', 'utf8');
  } catch {
    driver = fileIdentity('/usr/lib/wsl/lib/libcuda.so.1'); // WSL has no /proc entry
  }
  let devices: string[] = [];
  try {
    devices = readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)).sort();
  } catch {
    devices = [];
  }
  return JSON.stringify([
    driver,
    devices,
    env.CUDA_VISIBLE_DEVICES ?? null,
    env.NVIDIA_VISIBLE_DEVICES ?? null,
    env.CUDA_DEVICE_ORDER ?? null,
    process.versions.node,
    process.execPath,
  ]);
}

/**
 * `testLoad` with answers kept in `dir`. Only successful loads are kept: a failure may be
 * passing (a timeout under load) and is cheap to ask again. TENSORRT_NODE_VARIANT_CACHE=0
 * turns the cache off; a file that cannot be read or written is ignored.
 */
export function cachedTestLoad(testLoad: (path: string) => TestLoadResult, o: VariantCacheOptions): (path: string) => TestLoadResult {
  if (o.env.TENSORRT_NODE_VARIANT_CACHE === '0') return testLoad;
  let machine: string | undefined; // read once for all the candidates of this choice
  return (path: string): TestLoadResult => {
    machine ??= machineIdentity(o.env);
    const key = createHash('sha256').update(fileIdentity(path)).update('\0').update(machine).digest('hex').slice(0, 32);
    const file = join(o.dir, `variant-${key}.json`);
    try {
      const kept = JSON.parse(readFileSync(file, 'utf8')) as TestLoadResult;
      if (kept.ok && typeof kept.build?.variant === 'string' && typeof kept.cuda?.driver === 'object') return kept;
    } catch {
      // not there yet, or unreadable: ask the binary
    }
    const r = testLoad(path);
    if (r.ok) {
      try {
        mkdirSync(o.dir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify(r));
        renameSync(tmp, file); // whole or not at all, for processes starting together
      } catch {
        // a read-only home: the answer is just not kept
      }
    }
    return r;
  };
}
