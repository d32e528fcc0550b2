/**
 * The simulated clock. Simulated time runs `1 / timeScale` times faster than wall-clock time and
 * starts at the wall-clock time the simulator started. Every duration the simulator models
 * (answer delays, dial timeouts, playback lengths, caller hang-up delays, recording lengths) is
 * expressed in simulated milliseconds and scheduled with {@link SimClock.after}.
 *
 * Simulated time never runs past a timer that is due but has not run yet: while a due timer
 * waits for a busy event loop, the clock stands still at its due time, and what the simulator
 * does meanwhile (an ARI request it answers) happens at that time. Without that, on a loaded
 * machine every millisecond a timer fires late would become `1 / timeScale` simulated
 * milliseconds (50 ms at 0.02) added to whatever it ends: a 1.4 s playback would show 3 s between
 * its PlaybackStarted and PlaybackFinished. A loaded machine thus slows the simulation down
 * instead of stretching the durations it simulates.
 *
 * For the same reason the simulated time is read once per turn of the event loop: what one
 * action does (the events it emits, the timers it arms) happens at one simulated moment, even
 * when the operating system suspends the process in the middle of it (a 5 ms pause of a loaded
 * machine would otherwise be 250 ms at 0.02 between an event and the timer armed right after it).
 */

/** A pending simulated timer. */
export interface SimTimer {
  cancel(): void;
}

/** A timer in the clock's queue of due times. */
interface Pending {
  dueMs: number;
  /** Arming order: timers due at the same moment run in the order they were armed. */
  seq: number;
  /** False once run or cancelled (left in the queue until it reaches the top). */
  active: boolean;
  run: () => void;
  /** The real timer that wakes the clock for it. */
  handle?: NodeJS.Timeout;
}

export class SimClock {
  private readonly startWallMs = Date.now();
  private readonly startPerfMs = performance.now();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Pending timers, a binary min-heap on `dueMs`. */
  private readonly queue: Pending[] = [];
  private nextSeq = 0;
  /** Real ms the simulated clock stood still: the lateness of the timers run late. */
  private stalledRealMs = 0;
  /** The latest simulated time handed out by {@link nowMs}: the clock never goes back. */
  private lastMs = -Infinity;
  /** The simulated time of the current turn of the event loop (see {@link nowMs}). */
  private turnMs: number | undefined;
  private readonly endTurn = (): void => {
    this.turnMs = undefined;
  };

  /** @param timeScale real milliseconds per simulated millisecond (1 = real time). */
  constructor(readonly timeScale: number) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
      throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
    }
  }

  /**
   * Simulated epoch milliseconds: never past the due time of a timer that has not run yet, and
   * the same throughout the current turn of the event loop (until its `process.nextTick` queue).
   */
  nowMs(): number {
    if (this.turnMs === undefined) {
      this.lastMs = Math.max(this.lastMs, Math.min(this.runningMs(), this.earliestDueMs()));
      this.turnMs = this.lastMs;
      process.nextTick(this.endTurn);
    }
    return this.turnMs;
  }

  /** Asterisk's timestamp format of the simulated now: `2026-11-21T16:05:33.356+0000`. */
  timestamp(ms: number = this.nowMs()): string {
    const whole = Math.floor(ms);
    if (whole === this.stampMs) return this.stamp;
    // The date and time up to the second are formatted once per simulated second.
    const millis = ((whole % 1000) + 1000) % 1000;
    const second = whole - millis;
    if (second !== this.prefixSecond) {
      this.prefixSecond = second;
      this.prefix = new Date(second).toISOString().slice(0, -4); // up to the `.`
    }
    this.stampMs = whole;
    this.stamp = `${this.prefix}${String(millis).padStart(3, '0')}+0000`;
    return this.stamp;
  }

  /** The millisecond of the last {@link timestamp} and its text (events of a turn share one). */
  private stampMs = NaN;
  private stamp = '';
  /** The second (epoch ms) of the last {@link timestamp} and its text up to the `.`. */
  private prefixSecond = NaN;
  private prefix = '';

  /**
   * Run `fn` once `delaySimMs` simulated milliseconds have passed on {@link SimClock.nowMs}.
   * Node's timers count from the event loop's cached time and may fire a fraction of a
   * millisecond early; scaled up by `1 / timeScale` that would be an answer or a timeout visibly
   * before its time in the event timestamps, which a real Asterisk never shows. A timer that
   * fires early (or before an earlier one that is still to run) is therefore re-armed for the
   * rest of its delay. A timer that fires late (a busy event loop) runs at its due simulated
   * time, and the clock goes on from there: what `fn` emits carries the moment it was due.
   */
  after(delaySimMs: number, fn: () => void): SimTimer {
    const pending: Pending = {
      dueMs: this.nowMs() + Math.max(0, delaySimMs),
      seq: this.nextSeq++,
      active: true,
      run: fn,
    };
    this.push(pending);
    const arm = (delayRealMs: number): void => {
      const handle = setTimeout(() => {
        this.timers.delete(handle);
        if (!pending.active) return; // already run with others due at the same moment
        this.turnMs = undefined; // a new turn of the event loop
        const nowMs = this.nowMs();
        if (nowMs < pending.dueMs) {
          arm((pending.dueMs - nowMs) * this.timeScale);
          return;
        }
        // Late: simulated time stood still at the due time meanwhile.
        this.stalledRealMs += Math.max(0, this.runningMs() - pending.dueMs) * this.timeScale;
        this.runDue(nowMs);
      }, delayRealMs);
      pending.handle = handle;
      this.timers.add(handle);
    };
    arm(Math.max(0, delaySimMs * this.timeScale));
    return {
      cancel: () => {
        pending.active = false;
        if (pending.handle) {
          clearTimeout(pending.handle);
          this.timers.delete(pending.handle);
        }
      },
    };
  }

  /**
   * Run, in one turn, every timer due at `nowMs` (the moment of the turn): timers due at the
   * same simulated moment (two phones answering at once) happen together, in the order they
   * were armed, as their own real timers could otherwise fire in different turns of the event
   * loop with I/O between them. Timers armed meanwhile run in a later turn.
   */
  private runDue(nowMs: number): void {
    const due: Pending[] = [];
    while (this.earliestDueMs() <= nowMs) {
      const top = this.popTop();
      top.active = false;
      if (top.handle) {
        clearTimeout(top.handle);
        this.timers.delete(top.handle);
      }
      due.push(top);
    }
    for (const pending of due) pending.run();
  }

  /** Cancel every pending timer (on close). */
  cancelAll(): void {
    for (const handle of this.timers) clearTimeout(handle);
    this.timers.clear();
    for (const pending of this.queue) pending.active = false;
    this.queue.length = 0;
  }

  /** Simulated epoch milliseconds from the wall clock, less the time the clock stood still. */
  private runningMs(): number {
    const realMs = performance.now() - this.startPerfMs - this.stalledRealMs;
    return this.startWallMs + realMs / this.timeScale;
  }

  /** The due time of the earliest timer still to run (Infinity when none). */
  private earliestDueMs(): number {
    const q = this.queue;
    while (q.length > 0 && !q[0]!.active) this.popTop();
    return q[0]?.active ? q[0].dueMs : Infinity;
  }

  /** Remove and return the top of the queue (the caller knows it is there). */
  private popTop(): Pending {
    const q = this.queue;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private push(pending: Pending): void {
    const q = this.queue;
    q.push(pending);
    let i = q.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(q[i]!, q[parent]!)) break;
      [q[parent], q[i]] = [q[i]!, q[parent]!];
      i = parent;
    }
  }

  private siftDown(start: number): void {
    const q = this.queue;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < q.length && before(q[left]!, q[smallest]!)) smallest = left;
      if (right < q.length && before(q[right]!, q[smallest]!)) smallest = right;
      if (smallest === i) return;
      [q[smallest], q[i]] = [q[i]!, q[smallest]!];
      i = smallest;
    }
  }
}

/** Heap order: earlier due time first, then the one armed first. */
function before(a: Pending, b: Pending): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);
}
