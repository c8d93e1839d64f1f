/**
 * Engines that report to a prom-client Registry the service shares: one family per metric
 * name with a series per engine, beside the service's own metrics, and gone at dispose.
 */
import { Counter, Registry } from 'prom-client';
import * as promClient14 from 'prom-client-14';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { CLS_ITEM, CLS_MODEL, clsInput, failure } from './helpers.js';

const options = { backend: 'onnxruntime' as const, instances: 1, threadsPerInstance: 1, maxBatchSize: 8, wideLoneRuns: false, shapes: { x: [-1, ...CLS_ITEM] } };

/** Each `# TYPE` line's metric name, as often as it appears. */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
}

describe('metricsRegistry: a registry shared by engines and the service', () => {
  it('holds each family once, with a series per engine, beside the service\'s metrics; each engine leaves it at dispose', async () => {
    const registry = new Registry();
    const served = new Counter({ name: 'app_requests_total', help: "the service's own", registers: [registry] });
    served.inc(7);
    const a = await Engine.build(CLS_MODEL, { ...options, name: 'cls-a', metricsRegistry: registry });
    const b = await Engine.build(CLS_MODEL, { ...options, name: 'cls-b', metricsRegistry: registry });
    try {
      for (let i = 0; i < 3; i++) await a.infer(clsInput(i));
      for (let i = 0; i < 5; i++) await b.infer(clsInput(i));
      await expect(a.infer(clsInput(1, 2).subarray(1))).rejects.toMatchObject({ code: 'EINPUT' });
      const text = await registry.metrics();
      const names = families(text);
      expect(new Set(names).size).toBe(names.length); // no family twice: valid Prometheus text
      expect(names).toContain('app_requests_total');
      expect(names).toContain('nv_inference_request_success');
      expect(text).toContain('app_requests_total 7');
      expect(text).toContain('nv_inference_request_success{model="cls-a",version="1"} 3');
      expect(text).toContain('nv_inference_request_success{model="cls-b",version="1"} 5');
      expect(text).toContain('nv_inference_request_failure{model="cls-a",version="1",reason="OTHER"} 1');
      expect(text).toContain('nv_inference_request_failure{model="cls-b",version="1",reason="OTHER"} 0');
      expect(text).toContain(`nv_inference_count{model="cls-b",version="1"} 5`);
      expect(text).toMatch(/nv_inference_request_summary_us_count\{model="cls-a",version="1"\} 3/);
      expect(text).toMatch(/nv_inference_pending_request_count\{model="cls-b",version="1"\} 0/);
      expect(text).toMatch(/tensorrt_node_backend_counter\{model="cls-a",version="1",counter="runs"\} \d+/);
      // A second scrape hands over only what rose since: the totals stay the engines'.
      await b.infer(clsInput(9));
      expect(await registry.metrics()).toContain('nv_inference_request_success{model="cls-b",version="1"} 6');
      // Each engine's own text holds its series alone, as without a shared registry.
      const own = await a.metrics();
      expect(own).toContain('nv_inference_request_success{model="cls-a",version="1"} 3');
      expect(own).not.toContain('cls-b');
      expect(own).not.toContain('app_requests_total');

      // Another engine under a name already reporting there would add up with it: refused.
      const same = await failure(Engine.build(CLS_MODEL, { ...options, name: 'cls-a', metricsRegistry: registry }));
      expect(same).toMatchObject({ code: 'EINPUT', details: { tensor: 'name', received: "'cls-a'" } });

      await a.dispose();
      const afterA = await registry.metrics();
      expect(afterA).not.toContain('model="cls-a"');
      expect(afterA).toContain('nv_inference_request_success{model="cls-b",version="1"} 6');
      expect(await a.metrics()).toContain('nv_inference_request_success{model="cls-a",version="1"} 3');
    } finally {
      await a.dispose();
      await b.dispose();
    }
    // The last engine gone, its families go; the service's stay.
    const left = await registry.metrics();
    expect(families(left)).toEqual(['app_requests_total']);
    // A name freed at dispose may report there again, from zero.
    const again = await Engine.build(CLS_MODEL, { ...options, name: 'cls-a', metricsRegistry: registry });
    await again.infer(clsInput(1));
    expect(await registry.metrics()).toContain('nv_inference_request_success{model="cls-a",version="1"} 1');
    await again.dispose();
  });

  it("takes a registry of the service's own prom-client of another major (14), typed and at run time", async () => {
    // Typed as the service has it: a prom-client 14 Registry, which has no setContentType.
    const registry: promClient14.Registry = new promClient14.Registry();
    new promClient14.Counter({ name: 'app_requests_total', help: "the service's own", registers: [registry] }).inc(2);
    const a = await Engine.build(CLS_MODEL, { ...options, name: 'cls-a', metricsRegistry: registry });
    const b = await Engine.build(CLS_MODEL, { ...options, name: 'cls-b', metricsRegistry: registry });
    try {
      for (let i = 0; i < 2; i++) await a.infer(clsInput(i));
      await b.infer(clsInput(5));
      const text = await registry.metrics();
      const names = families(text);
      expect(new Set(names).size).toBe(names.length);
      expect(text).toContain('app_requests_total 2');
      expect(text).toContain('nv_inference_request_success{model="cls-a",version="1"} 2');
      expect(text).toContain('nv_inference_request_success{model="cls-b",version="1"} 1');
      expect(text).toMatch(/nv_inference_request_summary_us_count\{model="cls-a",version="1"\} 2/);
      await a.dispose();
      expect(await registry.metrics()).not.toContain('model="cls-a"');
    } finally {
      await a.dispose();
      await b.dispose();
    }
    expect(families(await registry.metrics())).toEqual(['app_requests_total']);
  });

  it('refuses what is not a Registry', async () => {
    const e = await failure(Engine.build(CLS_MODEL, { ...options, metricsRegistry: {} as never }));
    expect(e).toMatchObject({ code: 'EINPUT', details: { tensor: 'metricsRegistry', expected: expect.stringContaining('prom-client Registry') } });
  });
});
