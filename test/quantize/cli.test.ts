import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/quantize.js';
import { encodeNpy } from '../../src/data/npy.js';
import { convReluMatMul, random, randomArray } from './graphs.js';

describe('tensorrt-node quantize (CLI)', () => {
  it('quantizes from a folder of .npy files, writes the model and the report, prints a summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trtnode-cli-'));
    writeFileSync(join(dir, 'model.onnx'), convReluMatMul(4).bytes);
    const rand = random(8);
    writeFileSync(join(dir, 'cal.npy'), encodeNpy(randomArray(4 * 50, rand, 2), [4, 1, 2, 5, 5])); // 4 stacked samples
    const program = new Command().exitOverride();
    register(program);
    let printed = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['quantize', join(dir, 'model.onnx'), '-o', join(dir, 'out.onnx'), '-c', join(dir, 'cal.npy'), '--method', 'max', '--report', join(dir, 'r.json')], { from: 'user' });
    } finally {
      write.mockRestore();
      err.mockRestore();
    }
    expect(printed).toMatch(/summary/);
    expect(printed).toMatch(/quantized nodes\s+2/);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.calibration.samples).toBe(4);
    const s = await ort.InferenceSession.create(readFileSync(join(dir, 'out.onnx')));
    const out = await s.run({ x: new ort.Tensor('float32', randomArray(50, rand), [1, 2, 5, 5]) });
    expect(out.y!.dims).toEqual([1, 4]);
    await s.release();
  });
});
