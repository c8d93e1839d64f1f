// A shared-memory path for a run to reach a worker that is polling for its next request,
// both sides in one module: the engine's thread writes the request into a SharedArrayBuffer
// and flips a word the worker polls, instead of a postMessage that goes through the
// worker's event loop. At batch 1, 1 in flight on PaddleOCR cls (2 threads), a postMessage
// took 69 us from post to the worker's run against 23 us this way (.exp experiments,
// docs/engine.md). A result of such a run comes back the same way where it fits the worker's
// result box: written into shared memory, announced by Atomics.notify, which resolves the
// engine thread's Atomics.waitAsync (a task through its event loop, without a message's
// serialization and dispatch); larger results and errors come by postMessage.
//
// The worker's state word: AWAY (in its event loop: requests come by postMessage), POLLING
// (spinning after a result, idle), CLAIMED (the engine took the mailbox and is writing a
// request), POSTED (the request is complete). Only the engine moves POLLING -> CLAIMED ->
// POSTED; only the worker moves POSTED -> AWAY and POLLING -> AWAY, each by compare-exchange,
// so that a request is taken exactly once.

import { receiveMessageOnPort } from 'node:worker_threads';

export const AWAY = 0;
export const POLLING = 1;
export const CLAIMED = 2;
export const POSTED = 3;

/** Dtypes by their number in a header. */
const TYPES = ['float32', 'float16', 'int8', 'uint8', 'int32', 'int64', 'bool', 'float64', 'int16', 'uint16', 'uint32', 'uint64'];
/** Each dtype's typed array (float16 as its raw bits), as onnxruntime-node takes it: tensor.ts's ARRAY_OF, for the workers, which load no TypeScript. */
export const CTORS = {
  float32: Float32Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array, bool: Uint8Array,
  float64: Float64Array, int16: Int16Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
};

/** Float64 slots of the header: id, wide, input count, then per input index, type, rank, length, byte offset, dims. */
const HEADER_SLOTS = 256;
const HEADER_BYTES = HEADER_SLOTS * 8;

/** The state word's memory, one per worker for its lifetime. */
export function stateWord() {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** A typed array's dtype, for a tensor that does not name it (a Uint16Array: float16's bits). */
export function dtypeOf(data) {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof BigUint64Array) return 'uint64';
  return 'float16';
}

/**
 * A tensor's entry in a header (a request's inputs, a result's outputs) from slot `s`: its
 * position among the session's inputs or outputs, dtype, rank, element count, byte offset,
 * then its dims. Returns the slot after it.
 */
function writeEntry(header, s, index, type, dims, length, offset) {
  header[s++] = index;
  header[s++] = type;
  header[s++] = dims.length;
  header[s++] = length;
  header[s++] = offset;
  for (const d of dims) header[s++] = d;
  return s;
}

/** The entry writeEntry wrote at slot `s`, its dtype by name, and the slot after it. */
function readEntry(header, s) {
  const rank = header[s + 2];
  const dims = [];
  for (let r = 0; r < rank; r++) dims.push(header[s + 5 + r]);
  return { index: header[s], type: TYPES[header[s + 1]], dims, length: header[s + 3], offset: header[s + 4], next: s + 5 + rank };
}

/**
 * Where each input of a batch goes in a mailbox, and the bytes the request needs: `parts`
 * are the batch's requests in order along axis 0 (`rows` in all), written one after
 * another, so that the batch is merged in the mailbox itself. Undefined when its header
 * does not fit (many inputs of high rank), so that it goes by postMessage.
 */
export function layout(parts, rows, inputIndex) {
  const first = parts[0];
  const entries = [];
  let slots = 3;
  let bytes = HEADER_BYTES;
  for (const name in first) {
    const t = first[name];
    const index = inputIndex.get(name);
    const type = TYPES.indexOf(t.type ?? dtypeOf(t.data));
    if (index === undefined || type < 0) return undefined;
    const dims = parts.length === 1 ? t.dims : [rows, ...t.dims.slice(1)];
    slots += 5 + dims.length;
    if (slots > HEADER_SLOTS) return undefined;
    const chunks = parts.length === 1 ? [t.data] : parts.map((p) => p[name].data);
    let length = 0;
    let byteLength = 0;
    for (const c of chunks) {
      length += c.length;
      byteLength += c.byteLength;
    }
    entries.push({ index, type, dims, length, chunks, offset: bytes });
    bytes += Math.ceil(byteLength / 8) * 8;
  }
  return { entries, bytes };
}

/**
 * The engine's side: claims a polling worker's mailbox, writes the request and posts it.
 * False, with nothing written, where the worker is not polling (it left, or is busy).
 * `alias`: a plain ArrayBuffer over the mailbox's bytes (the addon's sharedMemoryAlias()),
 * to copy the inputs into where there is one: V8 copies into shared memory word by word
 * (the classifier's 110 KB: 7.2 us in a hot loop here, 3.3 us by memcpy; in the engine at
 * batch 1, postRequest took 13.4-15.2 us against 14.2-19.8 us, medians of two runs each).
 */
export function postRequest(state, mailbox, id, wide, plan, alias) {
  // Everything that can throw (a detached input, memory too small) before the claim: once
  // claimed, the worker waits for POSTED.
  const copies = inputCopies(mailbox, plan, alias);
  if (Atomics.compareExchange(state, 0, POLLING, CLAIMED) !== POLLING) return false;
  writeInto(mailbox, id, wide, plan, copies);
  Atomics.store(state, 0, POSTED);
  return true;
}

/**
 * The engine's side, for a worker that is not polling: writes the request into one of the
 * worker's request slots (memory laid out as a mailbox, which the worker reads with
 * readRequest), for a message naming the slot to announce. The inputs cross in shared
 * memory, so the result carries nothing back and may come through the result box.
 */
export function writeRequest(slot, id, wide, plan, alias) {
  writeInto(slot, id, wide, plan, inputCopies(slot, plan, alias));
}

/** The copies of `plan`'s inputs into `memory` (through `alias` where given), made before anything is written: they can throw. */
function inputCopies(memory, plan, alias) {
  const copies = [];
  for (const e of plan.entries) {
    let at = e.offset;
    for (const c of e.chunks) {
      copies.push([new Uint8Array(alias ?? memory, at, c.byteLength), new Uint8Array(c.buffer, c.byteOffset, c.byteLength)]);
      at += c.byteLength;
    }
  }
  return copies;
}

function writeInto(memory, id, wide, plan, copies) {
  const header = new Float64Array(memory, 0, HEADER_SLOTS);
  header[0] = id;
  header[1] = wide ? 1 : 0;
  header[2] = plan.entries.length;
  let s = 3;
  for (const e of plan.entries) s = writeEntry(header, s, e.index, e.type, e.dims, e.length, e.offset);
  for (const [to, from] of copies) to.set(from);
}

/**
 * The worker's side, just before it sends a result it will poll after: from here the
 * engine may claim the mailbox. Announced before the result goes, not after: the engine's
 * thread, woken by the result, sent its next request before the sending call had returned.
 */
export function willPoll(state) {
  Atomics.store(state, 0, POLLING);
}

/**
 * The worker's side, after willPoll() and the result: polls for up to `ms` for a mailbox
 * request or a message on `port`. Returns { request } (what `read()` made of the mailbox),
 * { message }, or undefined when nothing came and the worker is back to AWAY.
 */
export function poll(state, port, ms, read) {
  const next = waitForWork(state, port, performance.now() + ms);
  if (next) {
    // The engine sends a message only while it has a run or control request out, and
    // claims only while it has none, so nothing is claimed now; by compare-exchange anyway.
    if (Atomics.compareExchange(state, 0, POLLING, AWAY) === POLLING) return { message: next.message };
    return { message: next.message, request: take(state, read) };
  }
  if (Atomics.compareExchange(state, 0, POLLING, AWAY) === POLLING) return undefined;
  return { request: take(state, read) };
}

// The spin loops are functions of their own that only return. V8 optimizes a long-running
// loop on the stack (OSR) and keeps that code for the loop's later runs; where the code
// after the loop made a call that had not yet run when it was compiled, every run that left
// the loop that way fell back to the interpreter (a deopt, "insufficient type feedback for
// call"): 1541 times in 8 s at 64 in flight, when the spin and the take were inline here.

/** Polls until `until` (performance.now()) for a claim of the mailbox or a message: the message, or undefined. */
function waitForWork(state, port, until) {
  while (performance.now() < until) {
    if (Atomics.load(state, 0) !== POLLING) return undefined; // claimed: the request follows
    const next = receiveMessageOnPort(port);
    if (next) return next;
  }
  return undefined;
}

function take(state, read) {
  waitForPosted(state);
  const request = read();
  Atomics.store(state, 0, AWAY);
  return request;
}

/** The engine's thread writes the request synchronously after claiming: a short wait. */
function waitForPosted(state) {
  while (Atomics.load(state, 0) !== POSTED);
}

/**
 * A request out of `mailbox`: its id, wide flag, feeds (by input name) and whether they
 * are read in place. onnxruntime-node refuses tensors over shared memory, so each input is
 * read through `alias` (a plain ArrayBuffer over the mailbox's bytes, from the addon's
 * sharedMemoryAlias(): no copy) where there is one, else copied into memory of this
 * thread's, reused from `scratch` (by input name) where the size matches. (onnxruntime-node
 * gives every output memory of its own, an output that is an input too: tested.)
 */
export function readRequest(mailbox, names, scratch, alias) {
  const header = new Float64Array(mailbox, 0, HEADER_SLOTS);
  const id = header[0];
  const wide = header[1] === 1;
  const n = header[2];
  const feeds = {};
  let s = 3;
  for (let i = 0; i < n; i++) {
    const { index, type, dims, length, offset, next } = readEntry(header, s);
    s = next;
    const name = names[index];
    if (alias) {
      feeds[name] = { type, dims, data: new CTORS[type](alias, offset, length) };
      continue;
    }
    const byteLength = length * CTORS[type].BYTES_PER_ELEMENT;
    let buffer = scratch.get(name);
    if (!buffer || buffer.byteLength !== byteLength) scratch.set(name, (buffer = new ArrayBuffer(byteLength)));
    new Uint8Array(buffer).set(new Uint8Array(mailbox, offset, byteLength));
    feeds[name] = { type, dims, data: new CTORS[type](buffer, 0, length) };
  }
  return { id, wide, feeds, inPlace: Boolean(alias) };
}

/**
 * The result box: an Int32 count of results written, an Int32 count of those the engine has
 * read (a result is written only where the last one was read), then a Float64 header (id, computeMs,
 * wide, inPlace, output count, then per output index, type, rank, length, byte offset,
 * dims), then the outputs' bytes. One per worker for its lifetime. Results over its size go
 * by message: results this large come from runs long enough for a message not to matter.
 */
const RESULT_HEADER_SLOTS = 128;
const RESULT_DATA_OFFSET = 8 + RESULT_HEADER_SLOTS * 8;
const RESULT_BOX_BYTES = 65536;

export function resultBox() {
  return new SharedArrayBuffer(RESULT_BOX_BYTES);
}

/** Results written into `box` so far: what the engine's thread waits on. */
export function resultCount(box) {
  return new Int32Array(box, 0, 1);
}

/** Results the engine has read from `box`: while fewer than written, the box is taken. */
export function resultsRead(box) {
  return new Int32Array(box, 4, 1);
}

/**
 * The worker's side: writes a run's outputs (onnxruntime tensors by name; `outputIndex`
 * maps names to the session's output positions) into `box` and wakes the engine's thread:
 * by `ring` (the addon's doorbell) where given, else by Atomics.notify.
 * False, with nothing announced, where they do not fit or the box still holds a result the
 * engine has not read (the result then goes by message). For runs whose inputs came in
 * shared memory (mailbox or request slot): a message run's input buffers go back by message.
 */
export function writeResult(box, id, computeMs, wide, inPlace, outputs, outputIndex, ring) {
  const count = resultCount(box);
  if (Atomics.load(count, 0) !== Atomics.load(resultsRead(box), 0)) return false;
  const header = new Float64Array(box, 8, RESULT_HEADER_SLOTS);
  let s = 5;
  let at = RESULT_DATA_OFFSET;
  const places = [];
  for (const name in outputs) {
    const t = outputs[name];
    const index = outputIndex.get(name);
    const type = TYPES.indexOf(t.type);
    const data = t.data;
    if (index === undefined || type < 0 || !ArrayBuffer.isView(data)) return false;
    if (s + 5 + t.dims.length > RESULT_HEADER_SLOTS || at + data.byteLength > box.byteLength) return false;
    places.push([t, index, type, at]);
    s += 5 + t.dims.length;
    at += Math.ceil(data.byteLength / 8) * 8;
  }
  header[0] = id;
  header[1] = computeMs;
  header[2] = wide ? 1 : 0;
  header[3] = inPlace ? 1 : 0;
  header[4] = places.length;
  s = 5;
  for (const [t, index, type, offset] of places) {
    s = writeEntry(header, s, index, type, t.dims, t.data.length, offset);
    new Uint8Array(box, offset, t.data.byteLength).set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  Atomics.add(count, 0, 1);
  if (ring) ring();
  else Atomics.notify(count, 0);
  return true;
}

/**
 * The engine's side: the result in `box`, its outputs copied into memory of their own
 * (`names`: the session's output names by position).
 */
export function readResult(box, names) {
  const header = new Float64Array(box, 8, RESULT_HEADER_SLOTS);
  const outputs = {};
  const n = header[4];
  let s = 5;
  for (let i = 0; i < n; i++) {
    const { index, type, dims, length, offset, next } = readEntry(header, s);
    s = next;
    const data = new CTORS[type](length);
    data.set(new CTORS[type](box, offset, length));
    outputs[names[index]] = { type, dims, data };
  }
  return { id: header[0], computeMs: header[1], wide: header[2] === 1, inPlace: header[3] === 1, outputs };
}
