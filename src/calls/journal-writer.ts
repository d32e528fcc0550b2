/**
 * The call journal's write loop (./journal.ts is its API): the changes recorded of each call
 * wait in {@link JournalWriter.dirty} until they are sent to the store as one transaction.
 *
 * Changes are group-committed: everything recorded during one event-loop turn goes into one
 * transaction, so the store costs one commit per turn at most, not one per change. On SQLite up
 * to {@link CallJournalOptions.maxWritesInFlight} transactions are in flight at once: the next
 * one is sent while the SQLite thread is still committing the previous one, so a change (a new
 * click-to-call waiting for its `202`, a `call.ringing` waiting to pop up) waits for a commit,
 * not for a commit and the answer of the one before. Transactions are written as the store's
 * `journal` write stream (src/store/write-streams.ts): they commit in the order they were sent,
 * and once one fails the later ones fail without writing, so per-call event order in the outbox
 * is the emission order. On PostgreSQL one transaction is in flight at a time. A turn whose
 * changes touch nothing the store keeps (no column of a call or leg, no event) sends nothing: its
 * write completes when the ones sent before it commit, and fails if one of them does, as an
 * empty transaction of the stream would, without the round trip to the store.
 *
 * A failed write (disk full, PostgreSQL down) is logged, counted
 * (`aricrm_store_write_failures_total`) and retried with capped backoff, together with the
 * writes that were in flight behind it; nothing recorded is dropped, and the events wait in
 * memory until their write commits (webhooks pause meanwhile).
 */
import { computeBackoffDelay } from '../ari/backoff.ts';
import { type JournalLogEntry, writeJournalEntry } from '../store/journal-log.ts';
import type { RecordingFields } from '../store/calls.ts';
import { StreamBrokenError } from '../store/write-streams.ts';
import {
  type ChangeSet,
  diffCall,
  holdsLogged,
  isAwaited,
  mergePending,
  type Pending,
  someAwaited,
  type Write,
  type WrittenCall,
} from './journal-changes.ts';
import { JournalDurability } from './journal-durability.ts';
import { journalMetrics, type JournalMetrics } from './journal-metrics.ts';
import type { CallJournalOptions } from './journal.ts';
import type { Call } from './model.ts';

/** The store's write stream of the journal's transactions. */
const JOURNAL_STREAM = 'journal';

/**
 * The changes waiting to be written, the transactions in flight and failed, and what was written
 * of each call; the {@link CallJournal} records into it and waits on it.
 */
export class JournalWriter {
  /** Changes recorded and not sent yet, by call id. */
  dirty = new Map<string, Pending>();
  /** {@link stop} was called: nothing more is written. */
  closed = false;
  /** Resolved ({@link CallJournal.flush}) once nothing is waiting, in flight or failed. */
  readonly idleWaiters = new Set<() => void>();
  /** Per call: callbacks of {@link CallJournal.whenCommitted} waiting for its next commit. */
  readonly commitWaiters = new Map<string, Array<() => void>>();
  /**
   * What was last committed of each call (to write only changes), until the call service
   * releases the call ({@link CallJournal.release}).
   */
  readonly written = new Map<string, WrittenCall>();
  readonly now: () => number;
  readonly metrics: JournalMetrics;
  /** Failed rounds of writes since the last commit (the journal is `failing` while above 0). */
  failuresInARow = 0;
  private scheduled = false;
  /** A {@link writeSoon} microtask is queued. */
  private writeSoonQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Transactions sent and not answered yet, oldest first (they commit in this order). */
  private readonly inFlight: Write[] = [];
  /** Transactions that failed, oldest first, until every one in flight has been answered. */
  private failed: Write[] = [];
  /** Whether the next transaction resumes the write stream after a failure. */
  private resumeNext = false;
  /** `seq` of the last transaction made (journal log only). */
  private seq: number;
  /** The journal log and the hand-off of events to the dispatcher. */
  private readonly durability: JournalDurability;

  /** `maxInFlight`: most transactions in flight at once (see the journal's options). */
  constructor(
    private readonly options: CallJournalOptions,
    private readonly maxInFlight: number,
  ) {
    this.now = options.now ?? Date.now;
    this.durability = new JournalDurability(options);
    this.seq = options.lastSeq ?? 0;
    this.metrics = journalMetrics(options.registry);
  }

  /** Stop writing ({@link CallJournal.close}): no transaction is sent or retried after this. */
  stop(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** The changes of call `callId` waiting to be written (made empty when there are none). */
  pendingOf(callId: string): Pending {
    let pending = this.dirty.get(callId);
    if (!pending) {
      pending = { id: callId, events: [] };
      this.dirty.set(callId, pending);
    }
    return pending;
  }

  /**
   * Someone waits for the pending changes ({@link CallJournal.whenWritten}, a screen pop): write them once the
   * code running now is done (a microtask) instead of on the next turn of the event loop. On a
   * busy turn the next turn comes only after every I/O callback already due has run (20 REST
   * answers of a wave of calls, say), and `POST /v1/calls` or the pop would wait for all of them.
   * Changes recorded later in the same turn go into the next transaction.
   */
  writeSoon(): void {
    this.metrics.backlog.set(this.dirty.size);
    if (this.writeSoonQueued) return;
    this.writeSoonQueued = true;
    queueMicrotask(() => {
      this.writeSoonQueued = false;
      void this.write();
    });
  }

  /** Write the changes waiting on the next turn of the event loop, when a transaction may be sent. */
  schedule(): void {
    this.metrics.backlog.set(this.dirty.size);
    if (this.scheduled || this.retryTimer || this.closed || this.failed.length > 0) return;
    if (this.inFlight.length >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  /**
   * Send the changes waiting as one transaction (unless the writer is closed, failing, or has
   * {@link maxInFlight} in flight and nobody waits), then hand on what committed.
   */
  private async write(): Promise<void> {
    if (this.dirty.size === 0 || this.closed || this.failed.length > 0) return;
    // With the journal log, changes someone waits for (a screen pop, a 202) do not wait for a
    // free place: they are logged at once, and their commit queues behind the others.
    if (
      this.inFlight.length >= this.maxInFlight &&
      !(this.durability.logging && someAwaited(this.dirty.values()))
    )
      return;
    const pending = this.dirty;
    this.dirty = new Map();
    const batch = [...pending.values()];
    const at = this.now();
    // Snapshot now: the live objects keep changing while the transaction is written. Only what
    // changed since the last transaction is written (a call changes many times, its legs rarely).
    const rows: ChangeSet[] = [];
    for (const { call } of batch) if (call) rows.push(this.changesOf(call, at));
    const recordings: Array<[string, RecordingFields]> = [];
    for (const p of batch) if (p.recording) recordings.push([p.id, p.recording]);
    const events = batch.flatMap((p) => p.events);
    let settle!: (committed: boolean) => void;
    const write: Write = {
      pending,
      sent: new Map(rows.map((row) => [row.snapshot.id, row.written])),
      done: new Promise<boolean>((resolve) => (settle = resolve)),
      durable: false,
    };
    // Writes commit in order and, once one fails, every later one fails: the last one sent tells.
    const previous = this.inFlight.at(-1)?.done;
    this.inFlight.push(write);
    const empty =
      events.length === 0 &&
      recordings.length === 0 &&
      rows.every((r) => !r.callChanged && r.legs.length === 0);
    // A write with nothing for the store leaves the resume to the next one that has something.
    const resume = empty ? false : this.resumeNext;
    if (!empty) this.resumeNext = false;
    this.metrics.backlog.set(0);
    const entry: JournalLogEntry = {
      seq: 0,
      at,
      calls: rows
        .filter((row) => row.callChanged || row.legs.length > 0)
        .map((row) => ({ snapshot: row.snapshot, legs: row.legs })),
      recordings,
      events,
    };
    if (this.options.skipDelivery && events.length > 0) entry.skipDelivery = true;
    const positions = this.durability.positionsOf(events);
    if (positions) entry.positions = positions;
    // With a journal log every transaction commits its seq (what start-up must replay).
    const seq = !empty && this.options.log ? ++this.seq : undefined;
    if (seq !== undefined) {
      entry.seq = seq;
      write.entry = entry;
    }
    const committing = empty
      ? // Commits with the writes sent before it, fails with them (as the stream would refuse it).
        previous?.then((committed) => {
          if (!committed) throw new StreamBrokenError(JOURNAL_STREAM);
        })
      : this.options.store.writeBatch(
          async (repos) => {
            await writeJournalEntry(repos, entry);
            if (seq !== undefined) await repos.calls.setJournalSeq(seq);
          },
          { stream: JOURNAL_STREAM, resume },
        );
    // Someone waits for it (a 202, a screen pop): durable once logged, without the round trip.
    if (this.durability.logging && batch.some(isAwaited)) this.logThrough(write);
    try {
      await committing;
    } catch (err) {
      write.error = err;
      this.inFlight.splice(this.inFlight.indexOf(write), 1);
      this.failed.push(write);
      settle(false);
      // The transactions behind it fail too (the stream is broken): retry once all answered.
      if (this.inFlight.length === 0) this.retryFailed();
      return;
    }
    settle(true);
    this.inFlight.splice(this.inFlight.indexOf(write), 1);
    for (const row of rows) {
      // An ended call the journal does not track (released, or only seen ended) stays untracked.
      if (row.snapshot.state !== 'ended' || this.written.has(row.snapshot.id))
        this.written.set(row.snapshot.id, row.written);
    }
    if (!empty) this.metrics.commits.inc();
    this.failuresInARow = 0;
    this.callCommitted(batch);
    for (const p of batch) this.runWritten(p);
    this.durability.committed(events);
    this.truncateLog();
    if (this.failed.length > 0 && this.inFlight.length === 0) this.retryFailed();
    else if (this.dirty.size > 0) this.schedule();
    else if (this.idle()) {
      for (const resolve of [...this.idleWaiters]) resolve();
    }
  }

  /**
   * Every transaction in flight has been answered and some failed: put their changes back in
   * front of what was recorded meanwhile (keeping event order) and retry with backoff, resuming
   * the write stream.
   */
  private retryFailed(): void {
    const failed = this.failed;
    this.failed = [];
    this.failuresInARow++;
    this.metrics.failures.inc();
    const later = this.dirty;
    this.dirty = new Map();
    for (const write of failed) for (const pending of write.pending.values()) this.requeue(pending);
    for (const pending of later.values()) this.requeue(pending);
    this.resumeNext = true;
    this.metrics.backlog.set(this.dirty.size);
    const delayMs = computeBackoffDelay(this.failuresInARow - 1, {
      initialDelayMs: this.options.retryInitialDelayMs ?? 100,
      maxDelayMs: this.options.retryMaxDelayMs ?? 5000,
      jitter: 0,
    });
    // The first failure is the cause; the ones behind it only say the stream was broken.
    const cause = failed.find((w) => !(w.error instanceof StreamBrokenError)) ?? failed[0];
    this.options.logger.error('store write failed; retrying', {
      calls: this.dirty.size,
      events: [...this.dirty.values()].reduce((n, p) => n + p.events.length, 0),
      retryInMs: delayMs,
      failuresInARow: this.failuresInARow,
      err: cause?.error,
    });
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule();
    }, delayMs);
  }

  /** Add `pending` to the changes waiting to be written, after what is there for its call. */
  private requeue(pending: Pending): void {
    const earlier = this.dirty.get(pending.id);
    if (!earlier) {
      this.dirty.set(pending.id, pending);
      return;
    }
    mergePending(earlier, pending);
  }

  /**
   * The call's snapshot, whether it differs from the last committed one (the growing wait/talk
   * seconds of a live call do not count), and the legs that changed, with their positions.
   */
  changesOf(call: Call, at: number): ChangeSet {
    // What the store will hold once the transactions in flight commit.
    let previous = this.written.get(call.id);
    for (let i = this.inFlight.length - 1; i >= 0; i--) {
      const sent = this.inFlight[i]!.sent.get(call.id);
      if (sent) {
        previous = sent;
        break;
      }
    }
    return diffCall(call, at, previous);
  }

  /**
   * Append the transactions in flight up to and including `upTo` that are not in the journal log
   * yet, in order, with one `write(2)`; then run their {@link CallJournal.whenWritten} callbacks and hand
   * their events to the dispatcher (they survive a crash now). Nothing is logged while a failed
   * transaction waits for its retry (its successors' entries would lack its changes); a write
   * error turns the log off for good (logged at error): writes then wait for their commits.
   */
  logThrough(upTo: Write): void {
    if (!this.durability.logging || this.failed.length > 0) return;
    const end = this.inFlight.indexOf(upTo);
    if (end < 0) return;
    const writes = this.inFlight.slice(0, end + 1).filter((write) => !write.durable);
    this.durability.append(writes, (pending) => this.runWritten(pending));
  }

  /**
   * Empty the journal log when it is large and everything in it has committed: no logged change
   * is in flight, failed or waiting for its retry.
   */
  private truncateLog(): void {
    this.durability.truncate(() => {
      if (holdsLogged(this.dirty.values())) return true;
      for (const writes of [this.inFlight, this.failed])
        for (const write of writes) if (holdsLogged(write.pending.values())) return true;
      return false;
    });
  }

  /** Run the {@link CallJournal.whenCommitted} callbacks of the calls just committed (not re-recorded since). */
  private callCommitted(batch: readonly Pending[]): void {
    if (this.commitWaiters.size === 0) return;
    for (const { id } of batch) {
      const waiters = this.commitWaiters.get(id);
      if (!waiters || this.dirty.has(id) || this.latestSentOf(id)) continue;
      this.commitWaiters.delete(id);
      for (const committed of waiters) {
        try {
          committed();
        } catch (err) {
          this.options.logger.error('call commit callback threw', { callId: id, err });
        }
      }
    }
  }

  /** Run the {@link CallJournal.whenWritten} callbacks of a write that committed or was logged. */
  private runWritten(pending: Pending): void {
    const callbacks = pending.written;
    if (!callbacks) return;
    pending.written = undefined;
    for (const written of callbacks) {
      try {
        written();
      } catch (err) {
        this.options.logger.error('call write callback threw', { callId: pending.id, err });
      }
    }
  }

  /** {@link latestSentOf} with its transaction. */
  latestWriteOf(callId: string): { write: Write; pending: Pending } | undefined {
    for (const writes of [this.inFlight, this.failed]) {
      for (let i = writes.length - 1; i >= 0; i--) {
        const write = writes[i]!;
        const pending = write.pending.get(callId);
        if (pending) return { write, pending };
      }
    }
    return undefined;
  }

  /**
   * The pending changes of `callId` in the newest transaction that holds them, in flight or
   * failed (those are retried); undefined when none does.
   */
  latestSentOf(callId: string): Pending | undefined {
    return this.latestWriteOf(callId)?.pending;
  }

  /** Nothing is waiting to be written, in flight or failed. */
  idle(): boolean {
    return this.dirty.size === 0 && this.inFlight.length === 0 && this.failed.length === 0;
  }
}
