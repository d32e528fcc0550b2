/**
 * When the call journal's writes become durable before their commit, and the hand-off of their
 * events to the webhook dispatcher.
 *
 * With a journal log (SQLite at `synchronous=normal`, src/store/journal-log.ts), a write someone
 * waits for (a new click-to-call's `202`, a `call.ringing`: {@link CallJournal.whenWritten},
 * {@link CallJournal.record}) is also appended to the log file, with every transaction in flight
 * before it, by one synchronous `write(2)`: from then on it survives a crash of the engine, so
 * its `whenWritten` callbacks run and its events (and those of the transactions before it) are
 * handed to the dispatcher at once, not after the commit's round trip to the SQLite thread. Each
 * transaction then also commits its sequence number (`journal_state.seq`), which tells start-up
 * what of the log to replay. {@link CallJournal.whenCommitted} still waits for the commit.
 *
 * The events of a write are handed on once: when it is logged, else when it commits. The log is
 * emptied when it is large and nothing in it waits for its commit; a write error turns it off for
 * good (writes then wait for their commits).
 *
 * On SQLite each event's outbox position is allocated when its first transaction is made and kept
 * through retries ({@link JournalDurability.positionsOf}): the live stream takes a logged event at
 * that position before the commit.
 */
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import {
  JOURNAL_LOG_TRUNCATE_BYTES,
  type JournalLog,
  type JournalLogEntry,
  JournalLogWriteError,
} from '../store/journal-log.ts';
import type { Store } from '../store/store.ts';
import type { Pending, Write } from './journal-changes.ts';

/** What {@link JournalDurability} needs of the journal's options. */
export interface JournalDurabilityOptions {
  store: Pick<Store, 'outboxPositions'>;
  logger: Logger;
  /** Where events go (the webhook dispatcher's `enqueue`). */
  deliver: (event: LifecycleEvent) => void;
  /** The journal log, opened after its recovery; absent: writes are durable once committed. */
  log?: JournalLog;
}

/** The journal log and the hand-off of events (see the module comment). */
export class JournalDurability {
  /** The journal log, until a write to it fails. */
  private log: JournalLog | undefined;
  /** Events handed to the dispatcher when their write was logged, until that write commits. */
  private readonly deliveredEarly = new Set<LifecycleEvent>();
  /**
   * SQLite: each event's outbox position, allocated when its first transaction is made and kept
   * through retries (the live stream may have sent it at that position already).
   */
  private readonly positions = new WeakMap<LifecycleEvent, number>();

  constructor(private readonly options: JournalDurabilityOptions) {
    this.log = options.log;
  }

  /** Whether writes are logged: a journal log was given and no write to it failed. */
  get logging(): boolean {
    return this.log !== undefined;
  }

  /**
   * Append `writes` (transactions in flight, oldest first, none logged yet) to the journal log
   * with one `write(2)`; then run their `whenWritten` callbacks (`runWritten`) and hand their
   * events to the dispatcher (they survive a crash now). A write error turns the log off for good
   * (logged at error): writes then wait for their commits.
   */
  append(writes: readonly Write[], runWritten: (pending: Pending) => void): void {
    const log = this.log;
    if (!log) return;
    const entries: JournalLogEntry[] = [];
    for (const write of writes) if (write.entry) entries.push(write.entry);
    try {
      if (entries.length > 0) log.append(entries);
    } catch (err) {
      if (err instanceof JournalLogWriteError) {
        this.log = undefined;
        this.options.logger.error('journal log write failed; writes now wait for their commit', {
          path: log.path,
          err,
        });
      } else {
        // A value the log cannot hold: these writes wait for their commit.
        this.options.logger.warn('journal log could not encode a write', { err });
      }
      return;
    }
    const live = this.options.store.outboxPositions;
    for (const write of writes) {
      write.durable = true;
      for (const pending of write.pending.values()) {
        pending.logged = true;
        runWritten(pending);
        for (const event of pending.events) {
          // A retried write holds events handed on when its first try was logged.
          if (this.deliveredEarly.has(event)) continue;
          this.deliveredEarly.add(event);
          this.handOff(event);
        }
      }
      // The live stream takes them now, at the positions they are written at.
      const positions = write.entry?.positions;
      if (live && positions) {
        const events = write.entry!.events;
        live.durable(positions.map((position, i) => ({ position, event: events[i]! })));
      }
    }
  }

  /** A write committed: hand its `events` to the dispatcher, but those handed on when logged. */
  committed(events: readonly LifecycleEvent[]): void {
    for (const event of events) if (!this.deliveredEarly.delete(event)) this.handOff(event);
  }

  /**
   * SQLite: the outbox positions of `events` (kept from an earlier try, else allocated now, in
   * order); undefined on PostgreSQL or before the store numbers its outbox.
   */
  positionsOf(events: readonly LifecycleEvent[]): number[] | undefined {
    const live = this.options.store.outboxPositions;
    if (!live?.started || events.length === 0) return undefined;
    const missing = events.filter((event) => !this.positions.has(event));
    if (missing.length > 0) {
      const fresh = live.allocate(missing.length);
      missing.forEach((event, i) => this.positions.set(event, fresh[i]!));
    }
    return events.map((event) => this.positions.get(event)!);
  }

  /**
   * Empty the journal log when it is large, unless `holdsLogged` says a logged change has not
   * committed yet (in flight, failed or waiting for its retry).
   */
  truncate(holdsLogged: () => boolean): void {
    const log = this.log;
    if (!log || log.size < JOURNAL_LOG_TRUNCATE_BYTES) return;
    if (holdsLogged()) return;
    try {
      log.truncate();
    } catch (err) {
      this.log = undefined;
      this.options.logger.error(
        'journal log could not be emptied; writes now wait for their commit',
        {
          path: log.path,
          err,
        },
      );
    }
  }

  /** Give `event` to the dispatcher (it never throws into the journal). */
  private handOff(event: LifecycleEvent): void {
    try {
      this.options.deliver(event);
    } catch (err) {
      this.options.logger.error('event delivery hand-off failed', {
        callId: event.callId,
        eventId: event.id,
        err,
      });
    }
  }
}
