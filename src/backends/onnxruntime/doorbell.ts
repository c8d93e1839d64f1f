/**
 * The addon's doorbell (native/src/doorbell.cc): a worker thread wakes the JS thread's event
 * loop with no lock held, and `onRing` runs there. Node's postMessage and V8's Atomics.notify
 * wake the JS thread while holding a lock it takes next; beside busy processes a worker
 * preempted inside one held the JS thread 10-125 ms at a time (docs/engine.md).
 */
import { addonState } from '../../native/index.js';

export interface Doorbell {
  /** What a worker passes to the addon's doorbellRing(). */
  readonly id: number;
  /** Once no thread rings it any more (its workers ended). */
  close(): void;
}

/** A doorbell calling `onRing` on this thread, where the addon is loaded and has one; else undefined. */
export function openDoorbell(onRing: () => void): Doorbell | undefined {
  const s = addonState();
  if (!s.loaded) return undefined;
  const { doorbellCreate, doorbellClose } = s.addon.binding;
  if (typeof doorbellCreate !== 'function' || typeof doorbellClose !== 'function') return undefined;
  let id: number;
  try {
    id = doorbellCreate(onRing);
  } catch {
    return undefined; // every bell taken: Atomics.waitAsync instead
  }
  let open = true;
  return {
    id,
    close() {
      if (!open) return;
      open = false;
      doorbellClose(id);
    },
  };
}
