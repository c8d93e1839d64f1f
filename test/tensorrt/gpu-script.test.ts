/**
 * The CPU side of the GPU check (scripts/test-gpu.sh, test/gpu/): its dry run
 * parses arguments, loads the addon and prints the table with every check
 * pending; the table marks a failed row. The GPU run itself needs a GPU.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKS, failed, formatTable } from '../gpu/table.js';

const root = resolve(__dirname, '../..');

describe('GPU check, CPU side', () => {
  it('dry run prints every check as pending and writes its JSON', () => {
    const out = mkdtempSync(join(tmpdir(), 'tnp-gpu-dry-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/gpu/run.ts'), '--dry-run', '--out', out, '--calls', '1000'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('DRY RUN');
      for (const check of CHECKS) expect(r.stdout).toContain(check);
      const json = JSON.parse(readFileSync(join(out, 'gpu-dry-run.json'), 'utf8')) as { mode: string; rows: { status: string }[] };
      expect(json.mode).toBe('dry-run');
      expect(json.rows).toHaveLength(CHECKS.length);
      expect(json.rows.every((row) => row.status === 'pending')).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the table aligns columns and a FAIL row fails the run', () => {
    const rows = [
      { check: 'a', result: 'fine', status: 'ok' },
      { check: 'longer check', result: 'x', status: 'FAIL' },
    ];
    const text = formatTable({ mode: 'gpu', rows, raw: {} });
    const lines = text.split('\n').slice(1);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(failed({ mode: 'gpu', rows, raw: {} })).toBe(true);
    expect(failed({ mode: 'gpu', rows: rows.slice(0, 1), raw: {} })).toBe(false);
  });

  it('the shell script refuses bad arguments with status 2', () => {
    const r = spawnSync('bash', [join(root, 'scripts/test-gpu.sh'), '--calls', 'many'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--calls needs a number");
  });
});
