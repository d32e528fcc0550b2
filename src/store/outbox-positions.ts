/**
 * Outbox positions assigned by the engine (SQLite): the live stream's hand-off without a read.
 *
 * On SQLite one engine owns the store (src/store/ownership.ts), so the engine can number the
 * outbox itself instead of letting `INSERT` do it: every appended event gets its `events.id` (its
 * feed position, the live stream's cursor) from {@link OutboxPositions.allocate} before it is
 * written. The call journal allocates when it makes a transaction, so a `call.ringing` has its
 * position the moment it is in the journal log (src/store/journal-log.ts), before the SQLite
 * thread has committed it, and the live stream sends it at once, as the webhook dispatcher does,
 * instead of waiting for the commit and reading it back (that read waited behind the write
 * batches queued in the SQLite thread: ~70 ms at p99 at 100 calls/s).
 *
 * Positions are allocated in one order but may commit in another (a journal transaction waits
 * for its turn while an operator's status change commits). Two watermarks keep readers exact:
 *
 * - {@link OutboxPositions.durableThrough}: every position up to it is durable (in the journal
 *   log, or committed) or abandoned (its transaction rolled back). {@link OutboxPositions.onDurable}
 *   hands events out in position order as this advances: never one before a smaller position.
 * - {@link OutboxPositions.committedThrough}: every position up to it is committed or abandoned.
 *   The pull feed (`EventRepository.feed`) reads only up to it, so a reader resuming after a
 *   cursor never misses an event that commits later with a smaller position.
 *
 * PostgreSQL has no such numbering (several engines may share it; `bigserial` plus an advisory
 * lock order the outbox there) and the live stream reads the outbox after each commit.
 */
import type { LifecycleEvent } from '../events/types.ts';

/** One event with its outbox position, as {@link OutboxPositions.onDurable} hands it out. */
export interface PositionedEvent {
  /** The event's `events.id`: its feed position (cursor `feedCursor(position)`). */
  position: number;
  event: LifecycleEvent;
}

/** What the live stream needs of the engine-assigned positions (`Store.livePositions`). */
export interface LiveOutbox {
  /** Every position up to this one has been handed to the {@link onDurable} listeners. */
  readonly durableThrough: number;
  /**
   * The last position that holds an event among those up to {@link durableThrough} (the ones
   * after it were given up), or where the numbering started. The place a new
   * reader of the live events starts from: unlike {@link durableThrough} it is never a position
   * that was given up, which the next run of the engine may number again (it numbers after the
   * greatest stored one), so a cursor made from it stays exact across a restart.
   */
  readonly lastEventThrough: number;
  /** Every position up to this one is committed (or abandoned). */
  readonly committedThrough: number;
  /**
   * Call `listener` with events as they become durable, in position order, each once (called
   * synchronously from the code that made them durable; it must not throw: errors are caught
   * and dropped). Returns the function that removes it.
   */
  onDurable(listener: (items: readonly PositionedEvent[]) => void): () => void;
  /**
   * Resolves once {@link committedThrough} reaches `position` (at once when it has). While the
   * store cannot commit (a full disk) that may be minutes: a caller that stops waiting aborts
   * `signal`, and the wait then rejects with `signal.reason` and is forgotten (nothing of the
   * caller is kept until the store recovers).
   */
  whenCommitted(position: number, signal?: AbortSignal): Promise<void>;
}

/** State of one allocated position until both watermarks passed it. */
interface Slot {
  event?: LifecycleEvent;
  durable: boolean;
  committed: boolean;
  abandoned: boolean;
}

/** Positions were used before {@link OutboxPositions.start} (the store was not migrated). */
export class OutboxPositionsNotStartedError extends Error {
  override readonly name = 'OutboxPositionsNotStartedError';
  constructor() {
    super('outbox positions are not started: migrate the store before appending events');
  }
}

/** The engine's outbox numbering (see the module comment). One per SQLite store. */
export class OutboxPositions implements LiveOutbox {
  private isStarted = false;
  /** Last position allocated (or seen). */
  private last = 0;
  private durableMark = 0;
  private committedMark = 0;
  /** See {@link LiveOutbox.lastEventThrough}. */
  private lastEventMark = 0;
  /** Positions after one of the watermarks. */
  private readonly slots = new Map<number, Slot>();
  private readonly listeners = new Set<(items: readonly PositionedEvent[]) => void>();
  /** Pending {@link whenCommitted} calls. */
  private readonly waiters = new Set<{ position: number; resolve: () => void }>();

  /**
   * Start numbering after `lastId` (the outbox's greatest `events.id`, read when the store is
   * migrated). Later calls do nothing.
   */
  start(lastId: number): void {
    if (this.isStarted) return;
    this.isStarted = true;
    this.last = this.durableMark = this.committedMark = this.lastEventMark = lastId;
  }

  /** Whether {@link start} ran (before it the database numbers the outbox). */
  get started(): boolean {
    return this.isStarted;
  }

  get durableThrough(): number {
    return this.durableMark;
  }

  get committedThrough(): number {
    return this.committedMark;
  }

  get lastEventThrough(): number {
    return this.lastEventMark;
  }

  /** Calls of {@link whenCommitted} not answered yet (each holds its caller until then). */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * The next `count` positions, in order. Each must end {@link committed} or {@link abandoned}
   * (a position left open holds both watermarks back).
   *
   * @throws OutboxPositionsNotStartedError before {@link start}
   */
  allocate(count: number): number[] {
    if (!this.isStarted) throw new OutboxPositionsNotStartedError();
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      out.push(++this.last);
      this.slots.set(this.last, { durable: false, committed: false, abandoned: false });
    }
    return out;
  }

  /**
   * Positions written that this instance did not allocate (a journal log replayed at start-up
   * carries the positions of the run that logged it): numbering goes on after them, and the
   * positions skipped in between count as abandoned.
   */
  observe(positions: readonly number[]): void {
    if (!this.isStarted) throw new OutboxPositionsNotStartedError();
    for (const position of positions) {
      while (this.last < position) {
        this.last++;
        this.slots.set(this.last, {
          durable: false,
          committed: false,
          abandoned: this.last !== position,
        });
      }
    }
    this.advance();
  }

  /** These events are durable (in the journal log) but not committed yet. */
  durable(items: readonly PositionedEvent[]): void {
    for (const { position, event } of items) {
      const slot = this.slots.get(position);
      if (!slot || slot.abandoned) continue;
      slot.event = event;
      slot.durable = true;
    }
    this.advance();
  }

  /** These events are committed (and so durable). */
  committed(items: readonly PositionedEvent[]): void {
    for (const { position, event } of items) {
      const slot = this.slots.get(position);
      if (!slot) continue;
      slot.event ??= event;
      slot.durable = slot.committed = true;
      slot.abandoned = false;
    }
    this.advance();
  }

  /** These positions will never be written (their transaction rolled back). */
  abandoned(positions: readonly number[]): void {
    for (const position of positions) {
      const slot = this.slots.get(position);
      if (slot && !slot.committed) slot.abandoned = true;
    }
    this.advance();
  }

  onDurable(listener: (items: readonly PositionedEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  whenCommitted(position: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (position <= this.committedMark) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const abort = (): void => {
        this.waiters.delete(waiter);
        reject(signal!.reason as Error);
      };
      const waiter = {
        position,
        resolve: () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /** Move both watermarks as far as the slots allow; hand out what became durable. */
  private advance(): void {
    const out: PositionedEvent[] = [];
    for (;;) {
      const slot = this.slots.get(this.durableMark + 1);
      if (!slot || !(slot.durable || slot.abandoned)) break;
      this.durableMark++;
      if (!slot.abandoned && slot.event) {
        out.push({ position: this.durableMark, event: slot.event });
        this.lastEventMark = this.durableMark;
      }
      if (this.durableMark <= this.committedMark) this.slots.delete(this.durableMark);
    }
    const committedBefore = this.committedMark;
    for (;;) {
      const slot = this.slots.get(this.committedMark + 1);
      if (!slot || !(slot.committed || slot.abandoned)) break;
      this.committedMark++;
      if (this.committedMark <= this.durableMark) this.slots.delete(this.committedMark);
    }
    if (this.committedMark > committedBefore && this.waiters.size > 0) {
      for (const waiter of [...this.waiters]) {
        if (waiter.position > this.committedMark) continue;
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
    if (out.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(out);
      } catch {
        // A listener must not throw (see onDurable); the numbering goes on regardless.
      }
    }
  }
}
