import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import nodeGypBuild from 'node-gyp-build';

/** cpu, or cuda<major>: the CUDA toolkit major an addon was built against. */
export type VariantName = string;
export const VARIANT_PATTERN = /^(cpu|cuda\d+)$/;

export interface Candidate {
  path: string;
  /** local: build/Release or build/Debug; prebuild: prebuilds/<platform>-<arch>/. */
  source: 'local' | 'prebuild';
  /** From the file name's tags for prebuilds; unknown (null) for local builds until loaded. */
  variant: VariantName | null;
}

export interface CandidateOptions {
  root: string;
  platform: string;
  arch: string;
  /** node-gyp-build's PREBUILDS_ONLY: ignore local builds. */
  prebuildsOnly: boolean;
}

function nodeFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.node')).sort();
  } catch {
    return [];
  }
}

/** The variant tag of a prebuild's file name (prebuildify --name tensorrt_node.<variant>). */
export function variantOfFile(file: string): VariantName | null {
  return file.split('.').find((tag) => VARIANT_PATTERN.test(tag)) ?? null;
}

/**
 * Every addon binary that could serve this process, in node-gyp-build's order:
 * build/Release, build/Debug, then prebuilds/<platform>-<arch>/ files whose tags
 * (napi, abi, libc, ...) match this runtime, as node-gyp-build matches them.
 */
export function listCandidates(o: CandidateOptions): Candidate[] {
  const out: Candidate[] = [];
  if (!o.prebuildsOnly) {
    for (const sub of ['build/Release', 'build/Debug']) {
      const first = nodeFiles(join(o.root, sub))[0];
      if (first) {
        out.push({ path: join(o.root, sub, first), source: 'local', variant: null });
        break;
      }
    }
  }
  let tuples: string[] = [];
  try {
    tuples = readdirSync(join(o.root, 'prebuilds'));
  } catch {
    tuples = [];
  }
  const tuple = tuples
    .map((t) => nodeGypBuild.parseTuple(t))
    .filter(nodeGypBuild.matchTuple(o.platform, o.arch))
    .sort((a, b) => nodeGypBuild.compareTuples(a!, b!))[0];
  if (tuple) {
    const dir = join(o.root, 'prebuilds', tuple.name);
    const matching = nodeFiles(dir)
      .map((f) => nodeGypBuild.parseTags(f))
      .filter(nodeGypBuild.matchTags('node', process.versions.modules));
    for (const tags of matching) {
      out.push({ path: join(dir, tags!.file), source: 'prebuild', variant: variantOfFile(tags!.file) ?? 'cpu' });
    }
  }
  return out;
}

/** CUDA toolkit major of a variant name, 0 for cpu. */
export function cudaMajor(variant: VariantName): number {
  const m = /^cuda(\d+)$/.exec(variant);
  return m ? Number(m[1]) : 0;
}
