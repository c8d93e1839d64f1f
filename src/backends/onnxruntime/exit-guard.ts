/**
 * process.exit() while a worker thread was inside one of onnxruntime-node's native calls
 * aborted the whole process: "terminate called after throwing an instance of
 * 'Napi::Error'", exit code 134 instead of the one asked for (6 of 6 tries with the
 * PP-OCRv4 detector running, 5 of 12 with the classifier under a burst of 64; 8 of 18
 * exits during INT8 builds, from the build worker). Node tears the worker's environment
 * down while the native run goes on, and the binding's calls back into JS then fail with a
 * C++ exception nothing catches.
 *
 * So each worker marks, in memory shared with this thread, when it is inside a native call
 * (native-calls.mjs: the inference workers and the build worker), and checks a shared
 * "exiting" flag before it enters one. An 'exit' listener raises the flag, then waits
 * (Atomics.wait: the event loop is over by then) for every worker inside a call to come
 * out, up to EXIT_WAIT_MS. The exit is delayed by at most the runs in progress.
 */

/** How long the exit waits for runs in progress, ms: past it, the exit goes on as before. */
const EXIT_WAIT_MS = 10_000;

const exiting = new Int32Array(new SharedArrayBuffer(4));
const slots = new Set<Int32Array>();
let listening = false;

function waitForNativeCalls(): void {
  Atomics.store(exiting, 0, 1);
  const deadline = Date.now() + EXIT_WAIT_MS;
  for (const busy of slots) {
    // Seq-cst: either the worker sees `exiting` before it enters a call, or this sees it inside.
    while (Atomics.load(busy, 0) === 1) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      Atomics.wait(busy, 0, 1, left);
    }
  }
}

/** What a worker gets in its workerData: the shared flag and its own slot (see native-calls.mjs). */
export interface ExitGuardData {
  exiting: SharedArrayBuffer;
  busy: SharedArrayBuffer;
}

/** A slot for one worker; `release()` once its thread has ended. */
export function exitGuard(): { data: ExitGuardData; release(): void } {
  if (!listening) {
    listening = true;
    process.on('exit', waitForNativeCalls);
  }
  const busy = new Int32Array(new SharedArrayBuffer(4));
  slots.add(busy);
  return {
    data: { exiting: exiting.buffer as SharedArrayBuffer, busy: busy.buffer as SharedArrayBuffer },
    release: () => void slots.delete(busy),
  };
}

