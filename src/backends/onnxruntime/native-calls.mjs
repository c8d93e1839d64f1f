// A worker thread's side of exit-guard.ts: each native onnxruntime call is marked in memory
// shared with the engine's thread, which waits at process exit for calls in progress to end,
// and none starts once the process is exiting (torn down inside one, onnxruntime-node
// aborted the process). Plain JS: onnxruntime-worker.mjs loads it by path beside the
// bundles, and the build worker's bundle includes it.

let marks;

/** In a worker started with exitGuard()'s data: mark this thread's native calls from now on. */
export function markNativeCalls(data) {
  marks = { exiting: new Int32Array(data.exiting), busy: new Int32Array(data.busy) };
}

/** Runs a native onnxruntime call, marked where this thread was given a guard (else just runs it). */
export async function nativeCall(call) {
  if (!marks) return call();
  const { exiting, busy } = marks;
  // Seq-cst, against the exit listener's store of `exiting` and load of `busy`.
  Atomics.store(busy, 0, 1);
  if (Atomics.load(exiting, 0) === 1) {
    Atomics.store(busy, 0, 0);
    Atomics.notify(busy, 0);
    return new Promise(() => {}); // the process is ending: never settles
  }
  try {
    return await call();
  } finally {
    Atomics.store(busy, 0, 0);
    Atomics.notify(busy, 0);
  }
}
