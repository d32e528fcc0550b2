// @ts-check
/**
 * The store's threads (the SQLite thread, the checkpointer) run at a lower scheduling priority
 * than the engine's own thread, which runs call control: when the cores are busy (a loaded
 * engine, Asterisk beside it) a commit or a checkpoint waits a moment rather than delaying a
 * screen pop. Nothing waits on them for long: the journal log makes the pop and the `202`
 * durable without a commit (docs/store.md).
 *
 * Linux: `setpriority(2)` on the calling thread's id, read from `/proc/thread-self` (a thread's
 * nice value is its own). Elsewhere, or when refused, the thread keeps its priority.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of the store's threads (the engine's thread keeps its own, normally 0). */
export const STORE_THREAD_NICE = 10;

/**
 * Set the calling thread's nice value (-20 first … 19 last; lowering one's priority needs no
 * privilege).
 * @param {number} nice
 * @returns {boolean} whether it was set
 */
export function lowerThreadPriority(nice) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
