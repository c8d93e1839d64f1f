#!/usr/bin/env node
// The CUDA runtime pieces a prebuild for another CUDA major needs: the headers and
// libcudart_static.a, laid out as a toolkit root (include/, lib64/) that
// scripts/prebuild.mjs and scripts/gyp-config.cjs accept. They come from Debian's
// non-free nvidia-cuda-dev package (a registry download, checked against the
// archive's SHA256), so a machine with one toolkit can build the variants of both.
//
//   node scripts/fetch-cudart.mjs [major=12] [dest=.cache/cudart-<major>]
//
// Idempotent: an existing root of the right major is kept. Needs Node 20 (fetch), xz,
// tar, and dpkg-deb or ar to open the package; about 1 GiB of disk while it works.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
// The Debian suite whose non-free nvidia-cuda-toolkit has each CUDA major.
const SUITES = { 12: 'trixie' };
const PACKAGE = 'nvidia-cuda-dev';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.argv[2] ?? 12);
const dest = resolve(process.argv[3] ?? join(root, '.cache', `cudart-${major}`));
const log = (line) => process.stderr.write(`fetch-cudart: ${line}\n`);

function rootMajor(dir) {
  try {
    const m = /#define\s+CUDART_VERSION\s+(\d+)/.exec(readFileSync(join(dir, 'include/cuda_runtime_api.h'), 'utf8'));
    return m && existsSync(join(dir, 'lib64/libcudart_static.a')) ? Math.floor(Number(m[1]) / 1000) : 0;
  } catch {
    return 0;
  }
}

/** The package's stanza in the suite's non-free Packages index: Filename, SHA256, Version. */
async function findPackage(suite) {
  const url = `${MIRROR}/dists/${suite}/non-free/binary-amd64/Packages.xz`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const text = execFileSync('xz', ['-dc'], { input: Buffer.from(await res.arrayBuffer()), maxBuffer: 256 << 20 }).toString('utf8');
  for (const stanza of text.split('\n\n')) {
    const fields = Object.fromEntries(stanza.split('\n').filter((l) => /^\S+: /.test(l)).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
    if (fields.Package === PACKAGE) return fields;
  }
  throw new Error(`${PACKAGE} is not in ${url}`);
}

async function download(url, file, sha256) {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status}`);
  await pipeline(Readable.fromWeb(res.body), createWriteStream(file));
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  const got = hash.digest('hex');
  if (got !== sha256) throw new Error(`${url}: SHA256 ${got}, the archive index says ${sha256}`);
}

/** Extracts usr/include and libcudart_static.a from the .deb into `into`. */
function extract(deb, into) {
  const members = ['./usr/include', './usr/lib/x86_64-linux-gnu/libcudart_static.a'];
  const hasDpkg = spawnSync('dpkg-deb', ['--version']).status === 0;
  const command = hasDpkg
    ? `dpkg-deb --fsys-tarfile '${deb}' | tar -x -C '${into}' ${members.map((m) => `'${m}'`).join(' ')}`
    : `cd '${into}' && ar x '${deb}' data.tar.xz && tar -xJf data.tar.xz ${members.map((m) => `'${m}'`).join(' ')} && rm data.tar.xz`;
  execFileSync('bash', ['-o', 'pipefail', '-c', command], { stdio: 'inherit' });
}

const have = rootMajor(dest);
if (have === major) {
  log(`${dest} already holds the CUDA ${major} runtime`);
  process.exit(0);
}
const suite = SUITES[major];
if (!suite) {
  log(`no Debian suite is known for CUDA ${major} (known: ${Object.keys(SUITES).join(', ')})`);
  process.exit(1);
}
if (process.arch !== 'x64' || process.platform !== 'linux') {
  log(`only linux-x64 packages are fetched, not ${process.platform}-${process.arch}`);
  process.exit(1);
}

const started = Date.now();
const pkg = await findPackage(suite);
// Beside the destination, so the final rename stays on one file system.
mkdirSync(dirname(dest), { recursive: true });
const work = mkdtempSync(join(dirname(dest), '.fetch-cudart-'));
try {
  const deb = join(work, 'package.deb');
  log(`${PACKAGE} ${pkg.Version} from ${suite} non-free (${(Number(pkg.Size) / 2 ** 20).toFixed(0)} MiB) ...`);
  await download(`${MIRROR}/${pkg.Filename}`, deb, pkg.SHA256);
  const tree = join(work, 'tree');
  mkdirSync(tree);
  extract(deb, tree);
  const staged = join(work, 'root');
  mkdirSync(join(staged, 'lib64'), { recursive: true });
  renameSync(join(tree, 'usr/include'), join(staged, 'include'));
  renameSync(join(tree, 'usr/lib/x86_64-linux-gnu/libcudart_static.a'), join(staged, 'lib64/libcudart_static.a'));
  const got = rootMajor(staged);
  if (got !== major) throw new Error(`the package holds CUDA ${got || 'no'} runtime, not ${major}`);
  rmSync(dest, { recursive: true, force: true });
  renameSync(staged, dest);
  log(`CUDA ${major} runtime root at ${dest} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
