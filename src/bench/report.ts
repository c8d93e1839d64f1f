/** The bench's outputs: an executive summary, Markdown, JSON and perf_analyzer-style CSV. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchResults, Contender, LevelResult } from './run.js';

const pct = (x: number | undefined, digits = 2): string => (x === undefined ? 'n/a' : `${(x * 100).toFixed(digits)} %`);
const ms = (x: number | undefined): string => (x === undefined ? 'n/a' : `${x.toFixed(2)} ms`);
const x2 = (x: number | undefined): string => (x === undefined ? 'n/a' : `${x.toFixed(2)}×`);

/** An engine's maxBatchSize and, where it was probed, the probe's time a row at each size. */
export function maxBatchLine(maxBatchSize: number, probeMsPerRow?: Readonly<Record<number, number>>, source?: 'measured' | 'cache'): string {
  if (!probeMsPerRow) return `maxBatchSize ${maxBatchSize}`;
  const costs = Object.entries(probeMsPerRow).map(([n, ms]) => `${ms.toFixed(2)} at ${n}`).join(', ');
  return `maxBatchSize ${maxBatchSize} (probed at ${source === 'cache' ? 'its first build' : 'build'}, ms a row: ${costs})`;
}

export function executiveSummary(r: BenchResults): string[] {
  const s = r.summary;
  const lines: string[] = [];
  lines.push(`Model ${r.model.name} [${r.model.shape.join(',')}] on ${r.engine.backend} (${r.engine.reason}); ${r.machine.cpus} cores, ${r.machine.cpuModel}`);
  const batch = maxBatchLine(r.engine.maxBatchSize, r.engine.probeMsPerRow);
  lines.push(`Engine: ${r.engine.instances} worker(s) × ${r.engine.threadsPerInstance ?? '?'} thread(s)${r.engine.threadPolicy ? ` (${r.engine.threadPolicy})` : ''}, ${batch}${r.engine.graphRewrites ? `, graph rewrites: ${r.engine.graphRewrites.hardSwish} hard-swish, ${r.engine.graphRewrites.convAffine} conv affine` : ''}${r.engine.loneRuns ? `, a lone batch on ${r.engine.loneRuns.threads} thread(s) (${r.engine.loneRuns.reason})` : ''}; peer: plain onnxruntime-node, ${r.engine.peerThreads} intra-op thread(s), one run() per request`);
  if (r.accuracy) {
    lines.push(`Accuracy (${r.accuracy.metric}, ${r.accuracy.samples} held-out lines): FP32 ${pct(r.accuracy.fp32)}, INT8${r.builds.int8 && 'method' in r.builds.int8 ? ` (${r.builds.int8.method})` : ''} ${pct(r.accuracy.int8)}${r.accuracy.dropPt !== undefined ? ` (drop ${r.accuracy.dropPt.toFixed(2)} pt)` : ''}`);
    const v = r.accuracy.fp32VsPeer;
    lines.push(`FP32 engine vs peer on ${v.checked} lines: same class ${v.sameClass}/${v.checked}, largest difference ${v.maxAbsDiff.toExponential(1)}; bit for bit equal to onnxruntime-node on the engine's graph ${v.bitExactOnEngineGraph}/${v.checked}`);
  }
  const i8 = r.builds.int8;
  lines.push(`Build: FP32 ${ms(r.builds.fp32Ms)}; INT8 ${i8 && 'firstMs' in i8 ? `${ms(i8.firstMs)}, from the cache ${ms(i8.cachedMs)} (${pct(i8.cachedFraction, 1)} of the first); the INT8 engine's ${maxBatchLine(i8.maxBatchSize, i8.probeMsPerRow, i8.probeSource)}` : i8 ? `unavailable: ${i8.error}` : 'not run'}`);
  const row = (name: string, l: LevelResult | undefined): string =>
    l ? `${name}: ${l.throughput.toFixed(1)} req/s, p50 ${ms(l.latencyMs.p50)}, p99 ${ms(l.latencyMs.p99)}, TTFR p99 ${ms(l.burst.firstResultMs.p99)}, stall ${ms(l.stallMaxMs)}${l.jsThreadCpuUs !== undefined ? `, JS thread ${l.jsThreadCpuUs.toFixed(0)} µs of CPU a request` : ''}${l.workersBusy !== undefined ? `, workers inside onnxruntime's run() ${pct(l.workersBusy, 0)} of the time` : ''}` : `${name}: n/a`;
  lines.push(`At ${s.concurrency} in flight:`);
  lines.push(`  ${row('engine FP32', s.fp32)}`);
  if (s.int8) lines.push(`  ${row('engine INT8', s.int8)}`);
  lines.push(`  ${row('onnxruntime-node FP32 (peer)', s.peer)}`);
  lines.push(`  nothing in flight, in the same rounds: stall ${ms(r.idleLoop.stallMaxMs)} (the machine's floor under the stall figures)`);
  // On ONNX Runtime the INT8 model runs its numbers on float kernels (docs/quantize.md): say so beside a speedup under 1.
  const int8OnCpu = r.engine.backend === 'onnxruntime' && s.int8Speedup !== undefined ? ' (ONNX Runtime on the CPU runs the INT8 model\'s numbers on float kernels: the INT8 speedup is TensorRT\'s)' : '';
  lines.push(`Ratios: FP32 engine vs peer ${x2(s.throughputVsPeer)}, INT8 engine vs peer ${x2(s.int8ThroughputVsPeer)}, INT8 speedup over FP32 ${x2(s.int8Speedup)}${int8OnCpu}`);
  lines.push(`API overhead at batch 1, 1 in flight (${r.overhead.engineConfig}, ${r.overhead.rounds} rounds of engine, raw and bare-hop calls back to back in blocks of 50, taking turns, after ${r.overhead.warmRounds} rounds not kept while V8 compiles): engine p50 ${ms(r.overhead.engineP50Ms)} vs raw run() ${ms(r.overhead.rawP50Ms)} (medians over rounds); over raw, the median round = ${pct(r.overhead.overhead, 1)} (rounds: ${r.overhead.overheadByRound.map((v) => pct(v, 1)).join(', ')})`);
  if (r.overhead.hopP50Ms !== undefined) {
    lines.push(`  the same session on a plain worker thread, one postMessage each way and nothing else: p50 ${ms(r.overhead.hopP50Ms)}; over raw, the median round = ${pct(r.overhead.hopOverhead, 1)}: the cost of leaving the JS thread on this machine`);
  }
  for (const rate of [...new Set((r.openLoop ?? []).map((l) => l.rate))]) {
    const at = (r.openLoop ?? []).filter((l) => l.rate === rate);
    lines.push(`Open loop at ${rate} req/s offered (${at[0]!.distribution} arrivals, latency from arrival):`);
    for (const l of at) {
      lines.push(`  ${l.contender}: ${l.throughput.toFixed(1)} req/s served, p50 ${ms(l.latencyMs.p50)}, p99 ${ms(l.latencyMs.p99)}, stall ${ms(l.stallMaxMs)}${l.unfinished ? `, ${l.unfinished} unfinished` : ''}${l.errors ? `, ${l.errors} errors` : ''}`);
    }
  }
  lines.push('Targets:');
  for (const t of s.targets) lines.push(`  [${t.pass === undefined ? ' n/a' : t.pass ? 'PASS' : 'FAIL'}] ${t.name}: ${t.value}`);
  return lines;
}

export function markdown(r: BenchResults): string {
  const out: string[] = [];
  out.push(`# tensorrt-node bench: ${r.model.name}`, '');
  out.push(`${r.startedAt}, ${r.machine.platform}, ${r.machine.cpus} cores (${r.machine.cpuModel}), Node ${r.machine.node}, onnxruntime-node ${r.machine.onnxruntime}.`, '');
  out.push('## Executive summary', '', '```', ...executiveSummary(r), '```', '');
  out.push('## Load (closed loop, like perf_analyzer)', '');
  out.push('| contender | in flight | req/s | p50 ms | p90 ms | p95 ms | p99 ms | TTFR p50 ms | TTFR p99 ms | stall max ms | loop busy | JS thread CPU µs/req | mean batch | engine queue µs | engine compute µs | workers busy | req/s by round |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const l of r.levels) {
    out.push(`| ${l.contender} | ${l.concurrency} | ${l.throughput.toFixed(1)} | ${l.latencyMs.p50.toFixed(2)} | ${l.latencyMs.p90.toFixed(2)} | ${l.latencyMs.p95.toFixed(2)} | ${l.latencyMs.p99.toFixed(2)} | ${l.burst.firstResultMs.p50.toFixed(2)} | ${l.burst.firstResultMs.p99.toFixed(2)} | ${l.stallMaxMs.toFixed(1)} | ${(l.eventLoopUtilization * 100).toFixed(0)} % | ${l.jsThreadCpuUs?.toFixed(0) ?? '-'} | ${l.meanBatchSize?.toFixed(1) ?? '-'} | ${l.queueUs?.toFixed(0) ?? '-'} | ${l.computeUs?.toFixed(0) ?? '-'} | ${l.workersBusy === undefined ? '-' : pct(l.workersBusy, 0)} | ${l.roundThroughputs.map((t) => t.toFixed(0)).join(' / ')} |`);
  }
  out.push('');
  if (r.openLoop?.length) {
    out.push('## Open loop (requests at a rate, like perf_analyzer --request-rate-range)', '');
    out.push('| contender | offered req/s | arrivals | served req/s | p50 ms | p90 ms | p95 ms | p99 ms | max ms | send delay p50 / p99 ms | most in flight | stall max ms | loop busy | unfinished | errors |');
    out.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const l of r.openLoop) {
      out.push(`| ${l.contender} | ${l.rate} | ${l.distribution} | ${l.throughput.toFixed(1)} | ${l.latencyMs.p50.toFixed(2)} | ${l.latencyMs.p90.toFixed(2)} | ${l.latencyMs.p95.toFixed(2)} | ${l.latencyMs.p99.toFixed(2)} | ${l.latencyMs.max.toFixed(2)} | ${l.sendDelayMs.p50.toFixed(2)} / ${l.sendDelayMs.p99.toFixed(2)} | ${l.maxInFlight} | ${l.stallMaxMs.toFixed(1)} | ${(l.eventLoopUtilization * 100).toFixed(0)} % | ${l.unfinished} | ${l.errors} |`);
    }
    out.push('', 'Requests arrive on a schedule whatever is outstanding (the same arrivals for every contender at a rate); latency counts from the arrival time, so a contender that holds the event loop is charged for the arrivals it kept waiting. Send delay is the part of it before the request was sent: the driver\'s timers, whole milliseconds in libuv, and any hold of the event loop.', '');
  }
  out.push('Definitions: latency is infer() call to result; TTFR (time to first result) is the time from sending a burst of `in flight` requests at once to the first of them resolving; stall is the event loop\'s longest delay of a 1 ms timer during the closed loop (perf_hooks.monitorEventLoopDelay), beyond the 1 ms; at the top concurrency each round ends with a window as long as a contender\'s with nothing in flight, whose stall is the machine\'s own floor (timer wake-ups, other processes, V8\'s threads); loop busy is its utilization (eventLoopUtilization); JS thread CPU is the main thread\'s CPU time over the closed loop (GC included) per completed request: a service\'s own JS shares that thread; workers busy is the share of an engine\'s rounds its ONNX Runtime workers spent inside onnxruntime\'s run(), all of them together (near 100 %, more speed must come from the kernels, not the engine). The peer is plain onnxruntime-node, one `session.run()` per request on the main thread. At each concurrency the contenders took turns in rounds of the closed loop (each after a warm-up); the figures pool the rounds, and the throughput ratio\'s rounds pair each round\'s engine with the same round\'s peer.', '');
  return out.join('\n');
}

/** perf_analyzer's CSV columns (latencies in µs); one file per contender. */
export function perfAnalyzerCsv(levels: LevelResult[], contender: Contender): string {
  const header = 'Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency';
  const us = (v: number): string => String(Math.round(v * 1000));
  const rows = levels
    .filter((l) => l.contender === contender)
    .map((l) => [
      l.concurrency,
      l.throughput.toFixed(2),
      0,
      0,
      Math.round(l.queueUs ?? 0),
      0,
      Math.round(l.computeUs ?? l.latencyMs.mean * 1000),
      0,
      0,
      us(l.latencyMs.p50),
      us(l.latencyMs.p90),
      us(l.latencyMs.p95),
      us(l.latencyMs.p99),
      us(l.latencyMs.mean),
    ].join(','));
  return [header, ...rows].join('\n') + '\n';
}

export async function writeReports(r: BenchResults, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ['bench.md', markdown(r)],
    ['bench.json', JSON.stringify(r, null, 2)],
  ];
  for (const c of new Set(r.levels.map((l) => l.contender))) files.push([`perf_analyzer-${c}.csv`, perfAnalyzerCsv(r.levels, c)]);
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}
