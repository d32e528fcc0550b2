/**
 * The call journal: calls are written at every state change, so a crash loses nothing that was
 * finished; every webhook event is written to the store in the same transaction as the state
 * change that caused it, then delivered by a dispatcher.
 *
 * The call service and the notifier report every change of a call with {@link CallJournal.record}
 * (the live `Call`, plus the lifecycle event the change produced, if any). The journal snapshots
 * the call, and writes the call row, its legs and its new events in one store transaction; only
 * after the commit are the events handed to the webhook dispatcher. So a delivered webhook is
 * always backed by a committed call record, and an event that was committed but not yet
 * delivered when the process died is delivered after the restart (the outbox).
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
 * With a journal log (SQLite at `synchronous=normal`, src/store/journal-log.ts), a write someone
 * waits for (a new click-to-call's `202`, a `call.ringing`: {@link CallJournal.whenWritten},
 * {@link CallJournal.record}) is also appended to the log file, with every transaction in flight
 * before it, by one synchronous `write(2)`: from then on it survives a crash of the engine, so
 * its `whenWritten` callbacks run and its events (and those of the transactions before it) are
 * handed to the dispatcher at once, not after the commit's round trip to the SQLite thread. Each
 * transaction then also commits its sequence number (`journal_state.seq`), which tells start-up
 * what of the log to replay. {@link CallJournal.whenCommitted} still waits for the commit.
 *
 * A failed write (disk full, PostgreSQL down) is logged, counted
 * (`aricrm_store_write_failures_total`) and retried with capped backoff, together with the
 * writes that were in flight behind it; nothing recorded is dropped, and the events wait in
 * memory until their write commits (webhooks pause meanwhile).
 *
 * At shutdown the engine closes the journal last, just before the store ({@link CallJournal.close}),
 * once the call steps and route lookups still running have finished. A change recorded after that
 * is not stored by this run: it is logged at warn (call id, event type) and counted
 * (`aricrm_store_dropped_changes_total`), never dropped silently; the next start reconciles the
 * calls the store still has unfinished and takes up unsettled recordings.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { computeBackoffDelay } from '../ari/backoff.ts';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { LegInput, RecordingFields } from '../store/calls.ts';
import type { Store } from '../store/store.ts';
import {
  JOURNAL_LOG_TRUNCATE_BYTES,
  type JournalLog,
  type JournalLogEntry,
  JournalLogWriteError,
  writeJournalEntry,
} from '../store/journal-log.ts';
import { StreamBrokenError } from '../store/write-streams.ts';
import { type Call, type CallSnapshot, type Leg, snapshotCall } from './model.ts';

/** Options of {@link CallJournal}. */
export interface CallJournalOptions {
  store: Store;
  logger: Logger;
  /** Registry of the journal's metrics (reused if already there). */
  registry: Registry;
  /** Where committed events go, in commit order (the webhook dispatcher's `enqueue`). */
  deliver: (event: LifecycleEvent) => void;
  /**
   * No webhook URL is configured (CRM_WEBHOOK_URL unset): events are stored `skipped`, for the
   * pull feed only, so a URL configured later does not receive them. Default false: `pending`.
   */
  skipDelivery?: boolean;
  /** Clock, epoch ms (tests). */
  now?: () => number;
  /** First retry delay after a failed write, ms. Default 100. */
  retryInitialDelayMs?: number;
  /** Largest retry delay, ms. Default 5000. */
  retryMaxDelayMs?: number;
  /**
   * Most transactions in flight at once (sent, not yet answered). Default
   * {@link DEFAULT_WRITES_IN_FLIGHT} when the store pipelines writes (SQLite), else 1. With the
   * journal log, a transaction someone waits for is sent even when this many are in flight (it is
   * durable once logged; waiting for a place would hold the screen pop behind the SQLite thread).
   */
  maxWritesInFlight?: number;
  /**
   * The journal log (src/store/journal-log.ts), opened after its recovery; the journal appends
   * to it and empties it, the caller closes it after {@link CallJournal.close}. Absent: every
   * write someone waits for waits for its commit.
   */
  log?: JournalLog;
  /** With `log`: the store's `journal_state.seq` (the recovery's `lastSeq`); the next is + 1. */
  lastSeq?: number;
}

/**
 * Default {@link CallJournalOptions.maxWritesInFlight} on SQLite. With one, a change recorded
 * while a transaction was being committed waited for that answer, then for its own commit: in
 * three alternating runs of `npm run bench -- --only pop` the `call.ringing` commit took
 * 0.61-0.75 ms at p50 with one in flight and 0.46-0.48 ms with four (docs/store.md).
 */
export const DEFAULT_WRITES_IN_FLIGHT = 4;

/** The store's write stream of the journal's transactions. */
const JOURNAL_STREAM = 'journal';

interface Pending {
  /** The call's id. */
  id: string;
  /** The live call, when a change of it was recorded (not for a recording status alone). */
  call?: Call;
  events: LifecycleEvent[];
  /** Recording columns to set ({@link CallJournal.recordRecording}), the latest values. */
  recording?: RecordingFields;
  /** {@link CallJournal.whenWritten} callbacks: run once this write commits or is logged. */
  written?: Array<() => void>;
  /**
   * These changes are in the journal log: until they commit (also through the retry of a failed
   * transaction) the log must not be emptied. A retry someone waits for is logged again; a replay
   * writes it once (calls are upserted, events inserted by event id at their logged positions).
   */
  logged?: boolean;
}

/** One transaction: sent, or failed and waiting to be retried. */
interface Write {
  /** The calls it holds, by id (with their events and waiting callbacks). */
  pending: Map<string, Pending>;
  /** Each call's state once it commits. */
  sent: Map<string, WrittenCall>;
  /** Why it failed (once it did). */
  error?: unknown;
  /** Resolves true once it committed, false once it failed. */
  done: Promise<boolean>;
  /** With a journal log: what the transaction writes, with its `seq` (absent when empty). */
  entry?: JournalLogEntry;
  /**
   * It survives a crash: appended to the journal log, with every write before it. Its callbacks
   * have run and its events were handed to the dispatcher.
   */
  durable: boolean;
}

/**
 * The committed state of a call: its row (the snapshot without legs) and its legs, per channel
 * id. Own objects, never changed once made; the values they share with the live call (variables,
 * customer) are replaced by the call service, never changed in place.
 */
interface WrittenCall {
  call: Omit<CallSnapshot, 'legs'>;
  legs: Map<string, LegInput>;
}

/** What one write of a call holds. */
interface ChangeSet {
  snapshot: CallSnapshot;
  callChanged: boolean;
  /** Only the legs that changed. */
  legs: LegInput[];
  /** The call's state once this write commits. */
  written: WrittenCall;
}

interface JournalMetrics {
  commits: Counter;
  failures: Counter;
  backlog: Gauge;
  /** Changes this run did not store, by `event` type (`none`: a state change, `recording`). */
  dropped: Counter<'event'>;
}

/** Writes call state and lifecycle events to the store (see the module comment). */
export class CallJournal {
  private dirty = new Map<string, Pending>();
  private scheduled = false;
  /** A {@link writeSoon} microtask is queued. */
  private writeSoonQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failuresInARow = 0;
  private closed = false;
  private readonly idleWaiters = new Set<() => void>();
  /** Transactions sent and not answered yet, oldest first (they commit in this order). */
  private readonly inFlight: Write[] = [];
  /** Transactions that failed, oldest first, until every one in flight has been answered. */
  private failed: Write[] = [];
  /** Whether the next transaction resumes the write stream after a failure. */
  private resumeNext = false;
  private readonly maxInFlight: number;
  /** Per call: callbacks of {@link whenCommitted} waiting for its next commit. */
  private readonly commitWaiters = new Map<string, Array<() => void>>();
  private readonly now: () => number;
  private readonly metrics: JournalMetrics;
  /**
   * What was last committed of each call (to write only changes), until the call service
   * releases the call ({@link CallJournal.release}).
   */
  private readonly written = new Map<string, WrittenCall>();
  /** The journal log, until a write to it fails. */
  private log: JournalLog | undefined;
  /** `seq` of the last transaction made (journal log only). */
  private seq: number;
  /** Events handed to the dispatcher when their write was logged, until that write commits. */
  private readonly deliveredEarly = new Set<LifecycleEvent>();
  /**
   * SQLite: each event's outbox position, allocated when its first transaction is made and kept
   * through retries (the live stream may have sent it at that position already).
   */
  private readonly positions = new WeakMap<LifecycleEvent, number>();

  constructor(private readonly options: CallJournalOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.seq = options.lastSeq ?? 0;
    this.maxInFlight = Math.max(
      1,
      options.maxWritesInFlight ?? (options.store.pipelinedWrites ? DEFAULT_WRITES_IN_FLIGHT : 1),
    );
    this.metrics = {
      commits: counter(options.registry, {
        name: 'aricrm_store_commits_total',
        help: 'Store transactions committed by the call journal (each holds the call changes and events of one or more calls).',
      }),
      failures: counter(options.registry, {
        name: 'aricrm_store_write_failures_total',
        help: 'Call journal write failures (each retried with backoff, with the transactions in flight behind it; nothing is dropped).',
      }),
      backlog: gauge(options.registry, {
        name: 'aricrm_store_backlog_calls',
        help: 'Calls with changes not yet committed to the store.',
      }),
      dropped: counter(options.registry, {
        name: 'aricrm_store_dropped_changes_total',
        help: 'Call changes the call journal did not store because it had closed at shutdown (or closed with its store failing), by event type (none: a change of state or legs alone; recording: a recording status). Each is logged at warn or error.',
        labelNames: ['event'],
      }),
    };
  }

  /**
   * Record that `call` changed, with the lifecycle `event` the change produced (if any). Never
   * throws, never waits: the write happens on a later turn of the event loop. Events of a call
   * must be recorded in sequence order. After {@link close} the change is not stored: logged at
   * warn with the call id and event type and counted (a call whose state did not change is
   * ignored).
   */
  record(call: Call, event?: LifecycleEvent): void {
    if (this.closed && !this.recordedAfterClose(call, event)) return;
    const pending = this.pendingOf(call.id);
    pending.call = call;
    if (event) pending.events.push(event);
    // The screen pop: the CRM shows the customer's card when `call.ringing` arrives, and it is
    // sent once durable (logged or committed). Written at once rather than after the turn's other
    // callbacks (with DEFAULT_WRITES_IN_FLIGHT writes in flight it waits its turn, batched with
    // the rest).
    if (event?.type === 'call.ringing') this.writeSoon();
    else this.schedule();
  }

  /**
   * Record the recording columns of call `callId` (its row exists once a change of the call was
   * committed; the update is written after that row in the same or a later transaction). Set in
   * the same turn as the `recording.ready` event ({@link record}), `stored` commits with it.
   * Fields left `undefined` keep their value. Never throws, never waits (see {@link record});
   * {@link whenCommitted} tells when it is in the store. After {@link close} it is not stored
   * (logged at warn and counted, as {@link record}); the next start takes the recording up.
   */
  recordRecording(callId: string, fields: RecordingFields): void {
    if (this.closed)
      this.droppedAfterClose(callId, 'recording', { recordingStatus: fields.status });
    const pending = this.pendingOf(callId);
    pending.recording = mergeRecording(pending.recording, fields);
    this.schedule();
  }

  /**
   * A change recorded after {@link close}: whether it holds anything the store lacks (an event, a
   * column of the call or a leg); if so it is logged and counted as dropped (a change of state
   * once per call: later ones join it). It is kept with the unwritten changes, so
   * {@link whenWritten} and {@link whenCommitted} never answer for it.
   */
  private recordedAfterClose(call: Call, event: LifecycleEvent | undefined): boolean {
    if (!event) {
      if (this.dirty.has(call.id)) return true;
      const { callChanged, legs, snapshot } = this.changesOf(call, this.now());
      if (!callChanged && legs.length === 0) return false;
      this.droppedAfterClose(call.id, 'none', { state: snapshot.state });
      return true;
    }
    this.droppedAfterClose(call.id, event.type, { eventId: event.id, sequence: event.sequence });
    return true;
  }

  /** Log (warn) and count a change recorded after {@link close}. */
  private droppedAfterClose(callId: string, event: string, details: Record<string, unknown>): void {
    this.metrics.dropped.inc({ event });
    this.options.logger.warn(
      'call change recorded after the call journal closed: not stored by this run',
      {
        callId,
        ...(event === 'none' || event === 'recording' ? { change: event } : { eventType: event }),
        ...details,
      },
    );
  }

  private pendingOf(callId: string): Pending {
    let pending = this.dirty.get(callId);
    if (!pending) {
      pending = { id: callId, events: [] };
      this.dirty.set(callId, pending);
    }
    return pending;
  }

  /**
   * Call `written` once every change recorded so far for call `callId` is durable: at once
   * (synchronously) when nothing of it is waiting, else as soon as the write that takes those
   * changes is in the journal log (a `write(2)` on this thread, see the module comment) or,
   * without a log, right after its commit. Unlike {@link whenCommitted}, changes recorded later
   * do not make it wait longer: `POST /v1/calls` answers once the new call is durable, while the
   * call goes on changing. While the store fails (and nothing could be logged) it waits; after
   * {@link close} with unwritten changes it is never called.
   */
  whenWritten(callId: string, written: () => void): void {
    const dirty = this.dirty.get(callId);
    if (dirty) {
      (dirty.written ??= []).push(written);
      this.writeSoon();
      return;
    }
    const sent = this.latestWriteOf(callId);
    if (!sent || sent.write.durable) {
      written();
      return;
    }
    (sent.pending.written ??= []).push(written);
    // Sent without being logged (nobody was waiting then): log it now.
    if (this.inFlight.includes(sent.write)) this.logThrough(sent.write);
  }

  /**
   * Call `committed` once every change recorded so far for call `callId` is committed: at once
   * (synchronously) when nothing of the call is waiting to be written, else right after the
   * commit that holds its last recorded change (later records of the call make it wait for their
   * commit too). While the store fails it waits; after {@link close} with unwritten changes it is
   * never called. The call service uses it to drop an ended call from memory only once the store
   * can answer for it (`GET /v1/calls/{id}`).
   */
  whenCommitted(callId: string, committed: () => void): void {
    if (!this.dirty.has(callId) && !this.latestSentOf(callId)) {
      committed();
      return;
    }
    const waiters = this.commitWaiters.get(callId);
    if (waiters) waiters.push(committed);
    else this.commitWaiters.set(callId, [committed]);
  }

  /**
   * The call service let go of an ended call: forget what was written of it. A later change (e.g.
   * its recording) rewrites the whole row, which is idempotent.
   */
  release(callId: string): void {
    this.written.delete(callId);
  }

  /** True while the last write failed and is being retried (readiness: store not writable). */
  failing(): boolean {
    return this.failuresInARow > 0;
  }

  /** Calls whose written state the journal keeps (live calls, and ended ones not yet released). */
  tracked(): number {
    return this.written.size;
  }

  /** Calls with changes not yet committed. */
  backlog(): number {
    return this.dirty.size;
  }

  /**
   * Resolves true once everything recorded so far is committed, false if `timeoutMs` passed
   * first (the store keeps failing). Without a timeout it waits as long as it takes.
   */
  flush(timeoutMs?: number): Promise<boolean> {
    if (this.idle()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.idleWaiters.delete(done);
          resolve(false);
        }, timeoutMs);
      }
      this.idleWaiters.add(done);
    });
  }

  /**
   * Flush (for up to `timeoutMs`) and stop writing (the engine's stop calls it last, before
   * closing the store). Changes still unwritten after that are logged at error with their call
   * ids and counted in `aricrm_store_dropped_changes_total` (lost: the store is unusable). Changes
   * recorded later are not stored either: each is logged at warn and counted ({@link record}).
   */
  async close(timeoutMs: number): Promise<void> {
    const flushed = await this.flush(timeoutMs);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (!flushed) {
      const unwritten = [...this.dirty.values()];
      for (const pending of unwritten) {
        if (pending.events.length === 0)
          this.metrics.dropped.inc({
            event: pending.recording && !pending.call ? 'recording' : 'none',
          });
        for (const event of pending.events) this.metrics.dropped.inc({ event: event.type });
      }
      this.options.logger.error('call journal closed with unwritten changes', {
        calls: [...this.dirty.keys()],
        events: unwritten.reduce((n, p) => n + p.events.length, 0),
      });
    }
  }

  /** Run the {@link whenWritten} callbacks of a write that committed. */
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

  /**
   * The pending changes of `callId` in the newest transaction that holds them, in flight or
   * failed (those are retried); undefined when none does.
   */
  private latestSentOf(callId: string): Pending | undefined {
    return this.latestWriteOf(callId)?.pending;
  }

  /** {@link latestSentOf} with its transaction. */
  private latestWriteOf(callId: string): { write: Write; pending: Pending } | undefined {
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
   * Append the transactions in flight up to and including `upTo` that are not in the journal log
   * yet, in order, with one `write(2)`; then run their {@link whenWritten} callbacks and hand
   * their events to the dispatcher (they survive a crash now). Nothing is logged while a failed
   * transaction waits for its retry (its successors' entries would lack its changes); a write
   * error turns the log off for good (logged at error): writes then wait for their commits.
   */
  private logThrough(upTo: Write): void {
    const log = this.log;
    if (!log || this.failed.length > 0) return;
    const end = this.inFlight.indexOf(upTo);
    if (end < 0) return;
    const writes = this.inFlight.slice(0, end + 1).filter((write) => !write.durable);
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
        this.runWritten(pending);
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

  /**
   * SQLite: the outbox positions of `events` (kept from an earlier try, else allocated now, in
   * order); undefined on PostgreSQL or before the store numbers its outbox.
   */
  private positionsOf(events: readonly LifecycleEvent[]): number[] | undefined {
    const live = this.options.store.outboxPositions;
    if (!live?.started || events.length === 0) return undefined;
    const missing = events.filter((event) => !this.positions.has(event));
    if (missing.length > 0) {
      const fresh = live.allocate(missing.length);
      missing.forEach((event, i) => this.positions.set(event, fresh[i]!));
    }
    return events.map((event) => this.positions.get(event)!);
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

  /**
   * Empty the journal log when it is large and everything in it has committed: no logged change
   * is in flight, failed or waiting for its retry.
   */
  private truncateLog(): void {
    const log = this.log;
    if (!log || log.size < JOURNAL_LOG_TRUNCATE_BYTES) return;
    if (holdsLogged(this.dirty.values())) return;
    for (const writes of [this.inFlight, this.failed])
      for (const write of writes) if (holdsLogged(write.pending.values())) return;
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

  /** Run the {@link whenCommitted} callbacks of the calls just committed (not re-recorded since). */
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

  /**
   * The call's snapshot, whether it differs from the last committed one (the growing wait/talk
   * seconds of a live call do not count), and the legs that changed, with their positions.
   */
  private changesOf(call: Call, at: number): ChangeSet {
    const snapshot = snapshotCall(call, at);
    // What the store will hold once the transactions in flight commit.
    let previous = this.written.get(call.id);
    for (let i = this.inFlight.length - 1; i >= 0; i--) {
      const sent = this.inFlight[i]!.sent.get(call.id);
      if (sent) {
        previous = sent;
        break;
      }
    }
    // The call's row: the snapshot without its legs (they have rows of their own, compared one by
    // one below), and without the growing wait/talk seconds of a live call.
    const { legs: _legs, ...row } = snapshot;
    if (snapshot.state !== 'ended') {
      row.waitSec = 0;
      row.talkSec = 0;
    }
    const written: WrittenCall = { call: row, legs: new Map() };
    const legs: LegInput[] = [];
    let position = 0;
    for (const leg of call.legs.values()) {
      const input = legInput(leg, position++);
      written.legs.set(leg.channelId, input);
      const before = previous?.legs.get(leg.channelId);
      if (!before || !sameJson(before, input)) legs.push(input);
    }
    const callChanged = !previous || !sameJson(previous.call, row);
    return { snapshot, callChanged, legs, written };
  }

  private idle(): boolean {
    return this.dirty.size === 0 && this.inFlight.length === 0 && this.failed.length === 0;
  }

  /**
   * Someone waits for the pending changes ({@link whenWritten}, a screen pop): write them once the
   * code running now is done (a microtask) instead of on the next turn of the event loop. On a
   * busy turn the next turn comes only after every I/O callback already due has run (20 REST
   * answers of a wave of calls, say), and `POST /v1/calls` or the pop would wait for all of them.
   * Changes recorded later in the same turn go into the next transaction.
   */
  private writeSoon(): void {
    this.metrics.backlog.set(this.dirty.size);
    if (this.writeSoonQueued) return;
    this.writeSoonQueued = true;
    queueMicrotask(() => {
      this.writeSoonQueued = false;
      void this.write();
    });
  }

  private schedule(): void {
    this.metrics.backlog.set(this.dirty.size);
    if (this.scheduled || this.retryTimer || this.closed || this.failed.length > 0) return;
    if (this.inFlight.length >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private async write(): Promise<void> {
    if (this.dirty.size === 0 || this.closed || this.failed.length > 0) return;
    // With the journal log, changes someone waits for (a screen pop, a 202) do not wait for a
    // free place: they are logged at once, and their commit queues behind the others.
    if (this.inFlight.length >= this.maxInFlight && !(this.log && someAwaited(this.dirty.values())))
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
    const positions = this.positionsOf(events);
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
    if (this.log && batch.some(isAwaited)) this.logThrough(write);
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
    for (const event of events) if (!this.deliveredEarly.delete(event)) this.handOff(event);
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
    if (pending.call) earlier.call = pending.call;
    if (pending.logged) earlier.logged = true;
    if (pending.recording) earlier.recording = mergeRecording(earlier.recording, pending.recording);
    earlier.events.push(...pending.events);
    if (pending.written) (earlier.written ??= []).push(...pending.written);
  }
}

/**
 * Whether someone waits for these changes to be stored: a {@link CallJournal.whenWritten}
 * callback (a `202`) or a `call.ringing` (the screen pop).
 */
function isAwaited(pending: Pending): boolean {
  if (pending.written !== undefined) return true;
  for (const event of pending.events) if (event.type === 'call.ringing') return true;
  return false;
}

/** Whether someone waits for any of `pendings` ({@link isAwaited}). */
function someAwaited(pendings: Iterable<Pending>): boolean {
  for (const pending of pendings) if (isAwaited(pending)) return true;
  return false;
}

/** Whether any of `pendings` is in the journal log. */
function holdsLogged(pendings: Iterable<Pending>): boolean {
  for (const pending of pendings) if (pending.logged === true) return true;
  return false;
}

/** `earlier` updated with the fields `later` sets (an `undefined` field keeps the earlier value). */
function mergeRecording(
  earlier: RecordingFields | undefined,
  later: RecordingFields,
): RecordingFields {
  const merged: RecordingFields = { ...earlier };
  for (const [key, value] of Object.entries(later) as Array<[keyof RecordingFields, unknown]>)
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  return merged;
}

/**
 * Whether two values made of JSON data (plain objects, arrays, strings, numbers, booleans, null,
 * Dates) serialise to the same JSON: members that are `undefined` count as absent. Compares
 * without serialising (the journal compares every call it writes with what it last wrote). Where
 * it errs, it says "different" (a Date and its ISO text, NaN and NaN): one write more, never one
 * less.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const key in x) if (!sameJson(x[key], y[key])) return false;
  for (const key in y) if (!(key in x) && y[key] !== undefined) return false;
  return true;
}

/** A copy of a leg's stored fields (the live leg keeps changing while the write is pending). */
function legInput(leg: Leg, position: number): LegInput {
  // Built field by field: a leg is snapshotted at every write of its call.
  const input: LegInput = { channelId: leg.channelId, position, role: leg.role };
  if (leg.extension !== undefined) input.extension = leg.extension;
  if (leg.endpoint !== undefined) input.endpoint = leg.endpoint;
  if (leg.outcome !== undefined) input.outcome = leg.outcome;
  if (leg.cause !== undefined) input.cause = leg.cause;
  if (leg.causeText !== undefined) input.causeText = leg.causeText;
  input.createdAt = leg.createdAt;
  if (leg.answeredAt !== undefined) input.answeredAt = leg.answeredAt;
  if (leg.endedAt !== undefined) input.endedAt = leg.endedAt;
  return input;
}
