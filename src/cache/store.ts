/**
 * Engine cache files: one file per key, written atomically (temporary file, then
 * rename) and checked on load (magic, key, length and SHA-256 of the payload).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hashBytes } from './key.js';

const MAGIC = 'TRTNODE-CACHE-1\n';

interface Header {
  key: string;
  bytes: number;
  sha256: string;
  createdAt: string;
  meta: Record<string, unknown>;
}

export type CacheLoad =
  | { status: 'hit'; path: string; payload: Uint8Array; meta: Record<string, unknown> }
  | { status: 'miss'; path: string }
  | { status: 'corrupt'; path: string; reason: string };

export function cachePath(dir: string, key: string, ext = 'bin'): string {
  return join(dir, `${key}.${ext}`);
}

/** Reads and checks an entry; a corrupt one is reported, not returned. */
export async function loadEntry(dir: string, key: string, ext?: string): Promise<CacheLoad> {
  const path = cachePath(dir, key, ext);
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (e) {
    // ENOTDIR: a file where a folder of the path should be; storing will say so.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'miss', path };
    return { status: 'corrupt', path, reason: `unreadable: ${(e as Error).message}` };
  }
  const corrupt = (reason: string): CacheLoad => ({ status: 'corrupt', path, reason });
  if (file.length < MAGIC.length + 4 || file.toString('latin1', 0, MAGIC.length) !== MAGIC) return corrupt('bad magic');
  const headerLen = file.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + headerLen > file.length) return corrupt('truncated header');
  let header: Header;
  try {
    header = JSON.parse(file.toString('utf8', start, start + headerLen)) as Header;
  } catch {
    return corrupt('unparsable header');
  }
  if (header.key !== key) return corrupt(`key mismatch (${String(header.key).slice(0, 12)}…)`);
  const payload = file.subarray(start + headerLen);
  if (payload.length !== header.bytes) return corrupt(`length ${payload.length}, header says ${header.bytes}`);
  const sha = await hashBytes(payload);
  if (sha !== header.sha256) return corrupt('checksum mismatch');
  return { status: 'hit', path, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.length), meta: header.meta ?? {} };
}

/** Writes an entry atomically: a reader sees the old file, the new one, or none, never half. */
export async function storeEntry(dir: string, key: string, payload: Uint8Array, meta: Record<string, unknown> = {}, ext?: string): Promise<string> {
  await makeFolder(dir);
  const path = cachePath(dir, key, ext);
  const header: Header = {
    key,
    bytes: payload.length,
    sha256: await hashBytes(payload),
    createdAt: new Date().toISOString(),
    meta,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerBytes.length);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, Buffer.concat([Buffer.from(MAGIC, 'latin1'), len, headerBytes, payload]), { flush: true });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return path;
}

export async function removeEntry(dir: string, key: string, ext?: string): Promise<void> {
  await rm(cachePath(dir, key, ext), { force: true });
}

/**
 * `mkdir -p`, a level at a time: Node's recursive mkdir (20.x) retries forever where the
 * kernel answers ENOENT for a folder it will not make under one that exists (/proc/x).
 */
export async function makeFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    await makeFolder(parent);
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}
