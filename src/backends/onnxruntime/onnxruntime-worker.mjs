// One onnxruntime-node InferenceSession on its own thread, so that run() never
// blocks the main event loop (DESIGN.md decision 5). Plain JS on purpose: it is
// loaded as-is from src/ under vitest and copied next to the bundles in dist/.
// Tensors arrive and leave as transferred ArrayBuffers: no copy on either side, except a
// large result copied into memory the engine sent back for it (intoSpare, below). A run
// that finds this thread polling comes through its mailbox (mailbox.mjs), read in place
// where the addon is at hand, else copied once.
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { markNativeCalls, nativeCall } from './native-calls.mjs';
import { CTORS, poll, readRequest, willPoll, writeResult } from './mailbox.mjs';
import { ortTensor } from './ort-tensor.mjs';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

// A failed run comes back to the caller as EMODEL with onnxruntime's message; at its
// default severity onnxruntime also wrote that message to stderr, once per failed request.
const RUN_OPTIONS = { logSeverityLevel: 4 };

function describe(meta) {
  return meta.map((m) => ({
    name: m.name,
    type: m.isTensor ? m.type : 'non-tensor',
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [],
    // The model's names of symbolic axes (null where unnamed or fixed): axes named alike must match.
    dimParams: m.isTensor ? m.shape.map((d) => (typeof d === 'string' && d !== '' ? d : null)) : [],
  }));
}

// This thread's Linux id ('/proc/thread-self' -> '<pid>/task/<tid>'), undefined elsewhere.
function threadId() {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || undefined;
  } catch {
    return undefined;
  }
}

// Native onnxruntime calls are marked for process exit (native-calls.mjs, exit-guard.ts).
if (workerData.exitGuard) markNativeCalls(workerData.exitGuard);

// onnxruntime's process-wide setup (its environment, made once under a lock that every
// worker's first session takes) runs here, at the thread's normal priority. Made under
// SCHED_IDLE beside busy processes, it held that lock for ~20 s, and the workers of normal
// priority started in the starved one's place waited on it (gdb, scratch .exp/starve-ci.mts).
// An internal of onnxruntime-node (dist/binding.js): where it is gone, the session makes it.
try {
  require('onnxruntime-node/dist/binding').initOrt?.();
} catch {
  // the first session sets it up instead
}

// The session is made at the thread's normal priority; the engine lowers the thread's
// priority once it is ready, with the intra-op threads the session made. Those are found
// by name: a new thread inherits its maker's, so this thread takes a name of its own first.
const tid = threadId();
const threadName = nameThread(tid);
// Loaded before the session too (dlopen takes the process's loader lock): nothing of it
// waits to run at background priority.
const addon = loadAddon(workerData.addonPath);
// The engine's doorbell, rung for a result in the box where the addon has one (no lock held
// while waking the engine's thread, unlike Atomics.notify; doorbell.ts); else Atomics.notify.
const ring = workerData.doorbell !== undefined && typeof addon?.doorbellRing === 'function' ? () => addon.doorbellRing(workerData.doorbell) : undefined;

// Names this thread 'trtn-<tid>' (15 bytes at most on Linux): undefined where it cannot.
function nameThread(id) {
  if (id === undefined) return undefined;
  const name = `trtn-${id}`;
  try {
    writeFileSync('/proc/thread-self/comm', name);
    return name;
  } catch {
    return undefined;
  }
}

// The ids of this process's threads named `name`: this one and those it made.
function threadsNamed(name) {
  const out = [];
  let tids;
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === name) out.push(Number(t));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

// The worker's sessions: one with the engine's intra-op threads, and where the engine asks
// (wideThreads), a second of the same model with more, for a batch that runs while every
// other worker is idle (the engine decides; docs/engine.md). Both are made here, before the
// engine lowers the threads' priority. Not by a top-level await: a process that exits while
// a session is being made would print Node's "unsettled top-level await" warning (Node 26).
let session;
let wide;
let inputNames = [];
// Each output's position in the result box (mailbox.mjs).
let outputIndex = new Map();
async function openSessions() {
  try {
    const { model, sessionOptions, wideThreads } = workerData;
    session = await nativeCall(() => ort.InferenceSession.create(model, sessionOptions));
    if (wideThreads) wide = await nativeCall(() => ort.InferenceSession.create(model, { ...sessionOptions, intraOpNumThreads: wideThreads }));
    inputNames = session.inputNames;
    outputIndex = new Map(session.outputNames.map((name, i) => [name, i]));
    parentPort.postMessage({
      type: 'ready',
      tid,
      // undefined where the thread could not be named: the session's threads are not known
      threads: threadName ? threadsNamed(threadName) : undefined,
      inputs: describe(session.inputMetadata),
      outputs: describe(session.outputMetadata),
      rings: ring !== undefined,
    });
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: -1, message: String(err?.message ?? err) });
  }
}

// After a result, poll for the next request for up to spinMs before sleeping: waking a
// sleeping thread through the event loop cost ~0.1 ms per request on the development VM,
// 4-5 % of a 2.2 ms batch-1 run. 0 turns it off (the engine's `spinning: false`). A request
// may come by postMessage or through the mailbox (mailbox.mjs), whose memory the engine
// sends with a run message when it needs a larger one.
const spinMs = workerData.spinMs ?? 0;
const state = workerData.state;
let mailbox;
// A plain ArrayBuffer over the mailbox, for onnxruntime to read inputs in place.
let mailboxAlias;
const aliasOf = typeof addon?.sharedMemoryAlias === 'function' ? addon.sharedMemoryAlias : undefined;
// This thread's CPU time so far, in ms: a run's cost without the time other threads held the
// core, for the engine's batch probe (undefined without the addon: wall time then).
const threadCpuMs = typeof addon?.threadCpuTimeMs === 'function' ? addon.threadCpuTimeMs : () => undefined;
// Where a mailbox run's result goes where it fits (mailbox.mjs).
const box = workerData.resultBox;
// This thread's copies of mailbox inputs, reused run to run.
const scratch = new Map();
// The request slots: memory the engine writes a run into when this thread is not polling
// (mailbox.mjs writeRequest), announced by a message naming the slot; two, as the engine
// sends a worker at most two runs at once. Each with its alias and copies of its own (a run
// may wait in onnxruntime while the other slot's next one is read).
const slots = [];

// The addon, where the engine passed its path and it loads here (else mailbox inputs are
// copied, and runs are timed by the wall clock only).
function loadAddon(path) {
  if (!path) return undefined;
  try {
    return require(path);
  } catch {
    return undefined;
  }
}

async function dropWide(msg) {
  const w = wide;
  wide = undefined;
  await nativeCall(async () => w?.release?.());
  parentPort.postMessage({ type: 'wide', id: msg.id });
}

function handle(msg) {
  if (msg.type === 'run') {
    if (msg.mailbox) {
      mailbox = msg.mailbox;
      mailboxAlias = aliasFor(mailbox);
    }
    if (msg.slot === undefined) {
      run(msg);
      return;
    }
    if (msg.slotMemory) slots[msg.slot] = { memory: msg.slotMemory, alias: aliasFor(msg.slotMemory), scratch: new Map() };
    const slot = slots[msg.slot];
    const request = readRequest(slot.memory, inputNames, slot.scratch, slot.alias);
    run({ type: 'run', id: msg.id, wide: request.wide, local: request.feeds, inPlace: request.inPlace });
  } else if (msg.type === 'dropWide') dropWide(msg);
}

// A plain ArrayBuffer over shared memory for onnxruntime to read in place, where the addon makes one.
function aliasFor(memory) {
  try {
    return aliasOf?.(new Uint8Array(memory));
  } catch {
    return undefined; // inputs are copied instead
  }
}
// Runs are taken once the sessions are open (or failed: a run then fails with its error).
openSessions().then(() => parentPort.on('message', handle));

function spin() {
  const got = poll(state, parentPort, spinMs, () => readRequest(mailbox, inputNames, scratch, mailboxAlias));
  // Any message, falsy ones too: one the handler cannot read must end this thread here as
  // it would from the event loop (test/engine/worker-exit.test.ts ends workers that way).
  if (got && 'message' in got) handle(got.message);
  if (got?.request) run({ type: 'run', id: got.request.id, wide: got.request.wide, local: got.request.feeds, inPlace: got.request.inPlace });
}

// Memory the engine sent back for results (spares: earlier results no caller kept): a
// result that fits one is copied into it, so that result memory does not arrive fresh on
// the JS thread for every batch, which brought V8 full GCs there (docs/engine.md). The
// copy is cheap next to the run (0.8 MB in 31-36 us in a hot loop here, against ~55 ms for
// the detector's batch of 2); without a spare the result goes as onnxruntime made it.
function intoSpare(data, spare) {
  const i = spare.findIndex((b) => b.byteLength >= data.byteLength);
  if (i < 0) return undefined;
  const [buffer] = spare.splice(i, 1);
  new Uint8Array(buffer, 0, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return buffer;
}

// Runs received and not yet answered. The engine may send a worker its next run before the
// current one ends (short runs that cannot merge); a worker with runs waiting does not spin.
let queuedRuns = 0;

// Per run: no Object.entries arrays, no descriptor copies beyond what the wire needs
// (this handler sits on the latency of every batch-1 request).
async function run(msg) {
  queuedRuns++;
  let message;
  // The input buffers go back too, for the engine to reuse (the engine sends each in its
  // own buffer); a mailbox request's inputs (`local`) are this thread's and stay.
  let transfer = [];
  // A mailbox run's outputs, for the result box (mailbox.mjs) where they fit.
  let boxed;
  try {
    const feeds = {};
    const inputs = {};
    if (msg.local) {
      for (const name in msg.local) {
        const t = msg.local[name];
        feeds[name] = ortTensor(ort, t.type, t.data, t.dims);
      }
    } else {
      const wire = msg.feeds;
      for (const name in wire) {
        const t = wire[name];
        feeds[name] = ortTensor(ort, t.type, new CTORS[t.type](t.buffer, t.byteOffset, t.length), t.dims);
        inputs[name] = t.buffer;
        transfer.push(t.buffer);
      }
    }
    const onWide = Boolean(msg.wide && wide);
    // The wall clock's interval encloses the CPU clock's, so cpuMs never exceeds computeMs.
    const started = performance.now();
    const cpuBefore = msg.cpuTime ? threadCpuMs() : undefined;
    const result = await nativeCall(() => (onWide ? wide : session).run(feeds, RUN_OPTIONS));
    const cpuAfter = cpuBefore === undefined ? undefined : threadCpuMs();
    const computeMs = performance.now() - started;
    const outputs = {};
    const spare = msg.spare ?? [];
    for (const name in result) {
      const tensor = result[name];
      const data = tensor.data;
      const reused = spare.length > 0 ? intoSpare(data, spare) : undefined;
      const buffer = reused ?? data.buffer;
      const byteOffset = reused ? 0 : data.byteOffset;
      outputs[name] = { type: tensor.type, dims: tensor.dims, buffer, byteOffset, length: data.length };
      if (!transfer.includes(buffer)) transfer.push(buffer);
    }
    // Spare memory this run did not need goes back too.
    for (const b of spare) transfer.push(b);
    message = { type: 'result', id: msg.id, outputs, inputs, spare, computeMs, wide: onWide };
    if (cpuAfter !== undefined) message.cpuMs = cpuAfter - cpuBefore;
    if (msg.inPlace) message.inPlace = true;
    if (msg.local && box) boxed = result;
  } catch (err) {
    message = { type: 'error', id: msg.id, message: String(err?.message ?? err) };
    transfer = undefined;
  }
  answer(message, transfer, boxed);
}

// A run's answer, through the result box where `boxed` (its outputs) fits it, else by
// message; the last queued one is followed by polling for the next run. The box is written
// after willPoll, as a message is sent.
function answer(message, transfer, boxed) {
  const last = --queuedRuns === 0 && spinMs > 0;
  if (last) willPoll(state);
  try {
    if (!boxed || !writeResult(box, message.id, message.computeMs, message.wide, message.inPlace === true, boxed, outputIndex, ring)) parentPort.postMessage(message, transfer);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: message.id, message: String(err?.message ?? err) });
  }
  if (last) spin();
}
