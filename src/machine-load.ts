/**
 * How busy other processes keep this machine's cores: /proc/stat's CPU time less this
 * process's own. The ONNX Runtime backend reads it to put starved workers back at
 * background priority once the machine is quiet (backends/onnxruntime/policy-watch.ts); the engine,
 * to keep out of its cache what it timed beside busy processes (engine.ts).
 */
import { readFileSync } from 'node:fs';

/**
 * CPU time in use on the whole machine, in ms: the first line of /proc/stat (user, nice,
 * system, irq and softirq; idle, iowait and steal left out, steal being the hypervisor's).
 * Undefined where it cannot be read. In clock ticks of USER_HZ, 100 a second on Linux.
 */
export function machineBusyMs(path = '/proc/stat'): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const fields = /^cpu\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number);
  if (!fields || fields.length < 7 || fields.slice(0, 7).some((f) => !Number.isFinite(f))) return undefined;
  const [user, nice, system, , , irq, softirq] = fields as [number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq) * 10;
}

/** One window of the machine's CPU use, and this process's own (process.cpuUsage()). */
export interface QuietWindow {
  windowMs: number;
  cores: number;
  machineBusyMs: number;
  processMs: number;
}

/** Under this share of the cores used by other processes, the machine counts as quiet. */
export const QUIET_SHARE = 0.25;

/**
 * Quiet: other processes used less than a quarter of the cores over the window, so that
 * workers back at background priority would get most of them (starvation takes the cores nearly
 * all: one busy process beside two workers on two cores did not starve them).
 */
export function quietWindow(w: QuietWindow): boolean {
  return w.machineBusyMs - w.processMs < QUIET_SHARE * w.cores * w.windowMs;
}

/** A reading of the machine's and this process's CPU time, to judge a window from. */
export interface MachineSample {
  at: number;
  busyMs: number;
  processMs: number;
}

/** Now's reading; undefined where /proc/stat cannot be read. */
export function machineSample(): MachineSample | undefined {
  const busyMs = machineBusyMs();
  if (busyMs === undefined) return undefined;
  const cpu = process.cpuUsage();
  return { at: performance.now(), busyMs, processMs: (cpu.user + cpu.system) / 1000 };
}

/** Whether the machine was quiet from `before` to `after` (quietWindow over the cores this process may use). */
export function quietBetween(before: MachineSample, after: MachineSample, cores: number): boolean {
  return quietWindow({ windowMs: after.at - before.at, cores, machineBusyMs: after.busyMs - before.busyMs, processMs: after.processMs - before.processMs });
}
