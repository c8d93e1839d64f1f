/**
 * One build per cache entry across processes that share a cache folder (a cluster of
 * workers starting together, several services on one GPU): the first to create
 * `<entry>.lock` builds and stores the entry; the others wait for it and load it, rather
 * than each quantizing the model or building a TensorRT plan at once on the same cores
 * or GPU. A lock whose holder died (its process gone, judged where its pid means the same
 * process here, or no heartbeat for STALE_MS from anywhere) is taken over.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { throwIfAborted } from '../errors.js';
import { makeFolder } from './store.js';

/** What a lock file says about the process building the entry. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface BuildOnceResult<T> {
  value: T;
  /** Whether this process built it (false: loaded, before or after waiting). */
  built: boolean;
  /** Where this process waited for another's build: how long, and who held the lock. */
  waited?: { ms: number; holder: LockHolder | undefined };
}

export interface BuildOnceOptions {
  signal?: AbortSignal;
  /** Called once, when another process holds the build. */
  onWait?: (holder: LockHolder | undefined) => void;
}

/**
 * Where a pid names the same process as here: the kernel's boot and the pid namespace
 * (Linux; undefined elsewhere). A host name alone does not say it: containers that share
 * one (Kubernetes pods on the host's network) or machines named alike each count their own
 * pids, and the first pid namespace has the same number on every Linux machine.
 */
interface PidSpace {
  bootId?: string;
  pidNamespace?: string;
}

const pidSpace: PidSpace = (() => {
  const read = (f: () => string): string | undefined => {
    try {
      return f().trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const bootId = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const pidNamespace = read(() => readlinkSync('/proc/self/ns/pid'));
  return { ...(bootId && { bootId }), ...(pidNamespace && { pidNamespace }) };
})();

/** How often a waiter looks for the entry, and a holder touches its lock. */
const POLL_MS = 200;
const HEARTBEAT_MS = 5_000;
/** A lock not touched for this long is its holder's no more (a hung or vanished process). */
export const STALE_MS = 60_000;

/**
 * `build()` under the entry's lock, or, where another process holds it, wait for it and
 * `load()` (undefined where the entry is missing or unusable) what it stored. The caller
 * has looked for the entry already; this looks again only after the lock is taken (another
 * may have stored it meanwhile) and while waiting. Where the lock cannot be made (a
 * read-only folder), builds without it.
 */
export async function buildOnce<T>(
  entryPath: string,
  load: () => Promise<T | undefined>,
  build: () => Promise<T>,
  options: BuildOnceOptions = {},
): Promise<BuildOnceResult<T>> {
  const lockPath = `${entryPath}.lock`;
  let waitStarted: number | undefined;
  let holder: LockHolder | undefined;
  const loaded = (value: T): BuildOnceResult<T> =>
    ({ value, built: false, ...(waitStarted !== undefined ? { waited: { ms: performance.now() - waitStarted, holder } } : {}) });
  for (;;) {
    throwIfAborted(options.signal, 'Engine.build');
    const lock = await tryLock(lockPath);
    if (lock === 'unlockable') return { value: await build(), built: true };
    if (lock !== 'held') {
      try {
        const late = await load();
        return late !== undefined ? loaded(late) : { value: await build(), built: true };
      } finally {
        await lock.release();
      }
    }
    const seen = await readHolder(lockPath);
    if (!seen) continue; // released since: take it, or find what its holder stored
    if (await isStale(lockPath, seen)) {
      await breakLock(lockPath, seen);
      continue;
    }
    if (waitStarted === undefined) {
      waitStarted = performance.now();
      holder = seen.holder;
      options.onWait?.(holder);
    }
    await sleep(POLL_MS, options.signal);
    const value = await load();
    if (value !== undefined) return loaded(value);
  }
}

interface Lock {
  release(): Promise<void>;
}

/**
 * Creates the lock, exclusively and whole: written to a file of its own, then hard-linked
 * to the lock's name (which fails where the lock exists), so that no one reads a lock that
 * is made but not yet filled. 'held' where it exists, 'unlockable' where it cannot be made.
 */
async function tryLock(lockPath: string): Promise<Lock | 'held' | 'unlockable'> {
  const token = randomBytes(8).toString('hex');
  const holder: LockHolder & PidSpace & { token: string } = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), ...pidSpace, token };
  const mine = `${lockPath}.${token}.tmp`;
  try {
    await makeFolder(dirname(lockPath));
    await writeFile(mine, JSON.stringify(holder));
    await link(mine, lockPath);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'held' : 'unlockable';
  } finally {
    await rm(mine, { force: true }).catch(() => {});
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return {
    async release() {
      clearInterval(heartbeat);
      // Only our own: a lock judged stale and taken over is another's now.
      const seen = await readHolder(lockPath);
      if (seen?.token === token) await rm(lockPath, { force: true });
    },
  };
}

/** The lock's holder and its raw text, or undefined where the lock is gone. */
async function readHolder(lockPath: string): Promise<{ holder: LockHolder | undefined; space: PidSpace; token: string | undefined; text: string } | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder> & PidSpace & { token?: string };
    const holder = typeof v.pid === 'number' && typeof v.host === 'string' ? { pid: v.pid, host: v.host, startedAt: String(v.startedAt) } : undefined;
    return { holder, space: { bootId: v.bootId, pidNamespace: v.pidNamespace }, token: v.token, text };
  } catch {
    // Not one of ours (or cut short by a full disk): judged by its age alone.
    return { holder: undefined, space: {}, token: undefined, text };
  }
}

async function isStale(lockPath: string, seen: { holder: LockHolder | undefined; space: PidSpace }): Promise<boolean> {
  const h = seen.holder;
  // A lock that names neither (made off Linux, or by an earlier version) is judged by its host, as before.
  const named = seen.space.bootId !== undefined || seen.space.pidNamespace !== undefined;
  const samePids = !named || (seen.space.bootId === pidSpace.bootId && seen.space.pidNamespace === pidSpace.pidNamespace);
  if (h && h.host === hostname() && samePids && !processAlive(h.pid)) return true;
  try {
    return Date.now() - (await stat(lockPath)).mtimeMs > STALE_MS;
  } catch {
    return false; // gone: the next look takes it
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes a stale lock, unless it changed since it was judged (another took it over). */
async function breakLock(lockPath: string, judged: { text: string }): Promise<void> {
  const now = await readHolder(lockPath);
  if (now?.text === judged.text) await rm(lockPath, { force: true });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
