/**
 * The simulated clock. Simulated time runs `1 / timeScale` times faster than wall-clock time and
 * starts at the wall-clock time the simulator started. Every duration the simulator models
 * (answer delays, dial timeouts, playback lengths, caller hang-up delays, recording lengths) is
 * expressed in simulated milliseconds and scheduled with {@link SimClock.after}.
 */

/** A pending simulated timer. */
export interface SimTimer {
  cancel(): void;
}

export class SimClock {
  private readonly startWallMs = Date.now();
  private readonly startPerfMs = performance.now();
  private readonly timers = new Set<NodeJS.Timeout>();

  /** @param timeScale real milliseconds per simulated millisecond (1 = real time). */
  constructor(readonly timeScale: number) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
      throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
    }
  }

  /** Simulated epoch milliseconds. */
  nowMs(): number {
    return this.startWallMs + (performance.now() - this.startPerfMs) / this.timeScale;
  }

  /** Asterisk's timestamp format of the simulated now: `2026-11-21T16:05:33.356+0000`. */
  timestamp(ms: number = this.nowMs()): string {
    return new Date(Math.floor(ms)).toISOString().replace('Z', '+0000');
  }

  /**
   * Run `fn` once `delaySimMs` simulated milliseconds have passed on {@link SimClock.nowMs}.
   * Node's timers count from the event loop's cached time and may fire a fraction of a
   * millisecond early; scaled up by `1 / timeScale` that would be an answer or a timeout visibly
   * before its time in the event timestamps, which a real Asterisk never shows. A timer that
   * fires early is therefore re-armed for the rest of its delay.
   */
  after(delaySimMs: number, fn: () => void): SimTimer {
    const dueMs = this.nowMs() + Math.max(0, delaySimMs);
    let handle: NodeJS.Timeout;
    const arm = (delayRealMs: number): void => {
      handle = setTimeout(() => {
        this.timers.delete(handle);
        const leftSimMs = dueMs - this.nowMs();
        if (leftSimMs > 0) arm(leftSimMs * this.timeScale);
        else fn();
      }, delayRealMs);
      this.timers.add(handle);
    };
    arm(Math.max(0, delaySimMs * this.timeScale));
    return {
      cancel: () => {
        clearTimeout(handle);
        this.timers.delete(handle);
      },
    };
  }

  /** Cancel every pending timer (on close). */
  cancelAll(): void {
    for (const handle of this.timers) clearTimeout(handle);
    this.timers.clear();
  }
}
