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
 * Its parts: journal-writer.ts batches the changes into transactions (group commit, several in
 * flight on SQLite, in order, retried after a failure); journal-changes.ts compares a call with
 * what was last written of it, so only what changed is written; journal-durability.ts makes a
 * write someone waits for durable early through the journal log and hands the events to the
 * dispatcher; journal-metrics.ts counts commits, failures and the changes not stored.
 *
 * At shutdown the engine closes the journal last, just before the store ({@link CallJournal.close}),
 * once the call steps and route lookups still running have finished. A change recorded after that
 * is not stored by this run: it is logged at warn (call id, event type) and counted
 * (`aricrm_store_dropped_changes_total`), never dropped silently; the next start reconciles the
 * calls the store still has unfinished and takes up unsettled recordings.
 */
import type { Registry } from 'prom-client';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { RecordingFields } from '../store/calls.ts';
import type { JournalLog } from '../store/journal-log.ts';
import type { Store } from '../store/store.ts';
import { mergeRecording } from './journal-changes.ts';
import { droppedAfterClose, droppedAtClose } from './journal-metrics.ts';
import { JournalWriter } from './journal-writer.ts';
import type { Call } from './model.ts';

export { sameJson } from './journal-changes.ts';

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

/** Writes call state and lifecycle events to the store (see the module comment). */
export class CallJournal {
  /** The changes waiting, the transactions in flight, what was written of each call. */
  private readonly writer: JournalWriter;

  constructor(private readonly options: CallJournalOptions) {
    const maxInFlight = Math.max(
      1,
      options.maxWritesInFlight ?? (options.store.pipelinedWrites ? DEFAULT_WRITES_IN_FLIGHT : 1),
    );
    this.writer = new JournalWriter(options, maxInFlight);
  }

  /**
   * Record that `call` changed, with the lifecycle `event` the change produced (if any). Never
   * throws, never waits: the write happens on a later turn of the event loop. Events of a call
   * must be recorded in sequence order. After {@link close} the change is not stored: logged at
   * warn with the call id and event type and counted (a call whose state did not change is
   * ignored).
   */
  record(call: Call, event?: LifecycleEvent): void {
    if (this.writer.closed && !this.recordedAfterClose(call, event)) return;
    const pending = this.writer.pendingOf(call.id);
    pending.call = call;
    if (event) pending.events.push(event);
    // The screen pop: the CRM shows the customer's card when `call.ringing` arrives, and it is
    // sent once durable (logged or committed). Written at once rather than after the turn's other
    // callbacks (with DEFAULT_WRITES_IN_FLIGHT writes in flight it waits its turn, batched with
    // the rest).
    if (event?.type === 'call.ringing') this.writer.writeSoon();
    else this.writer.schedule();
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
    if (this.writer.closed)
      this.droppedAfterClose(callId, 'recording', { recordingStatus: fields.status });
    const pending = this.writer.pendingOf(callId);
    pending.recording = mergeRecording(pending.recording, fields);
    this.writer.schedule();
  }

  /**
   * A change recorded after {@link close}: whether it holds anything the store lacks (an event, a
   * column of the call or a leg); if so it is logged and counted as dropped (a change of state
   * once per call: later ones join it). It is kept with the unwritten changes, so
   * {@link whenWritten} and {@link whenCommitted} never answer for it.
   */
  private recordedAfterClose(call: Call, event: LifecycleEvent | undefined): boolean {
    if (!event) {
      if (this.writer.dirty.has(call.id)) return true;
      const { callChanged, legs, snapshot } = this.writer.changesOf(call, this.writer.now());
      if (!callChanged && legs.length === 0) return false;
      this.droppedAfterClose(call.id, 'none', { state: snapshot.state });
      return true;
    }
    this.droppedAfterClose(call.id, event.type, { eventId: event.id, sequence: event.sequence });
    return true;
  }

  /** Log (warn) and count a change recorded after {@link close}. */
  private droppedAfterClose(callId: string, event: string, details: Record<string, unknown>): void {
    droppedAfterClose(this.writer.metrics, this.options.logger, callId, event, details);
  }

  /**
   * Call `written` once every change recorded so far for call `callId` is durable: at once
   * (synchronously) when nothing of it is waiting, else as soon as the write that takes those
   * changes is in the journal log (a `write(2)` on this thread, see journal-durability.ts) or,
   * without a log, right after its commit. Unlike {@link whenCommitted}, changes recorded later
   * do not make it wait longer: `POST /v1/calls` answers once the new call is durable, while the
   * call goes on changing. While the store fails (and nothing could be logged) it waits; after
   * {@link close} with unwritten changes it is never called.
   */
  whenWritten(callId: string, written: () => void): void {
    const dirty = this.writer.dirty.get(callId);
    if (dirty) {
      (dirty.written ??= []).push(written);
      this.writer.writeSoon();
      return;
    }
    const sent = this.writer.latestWriteOf(callId);
    if (!sent || sent.write.durable) {
      written();
      return;
    }
    (sent.pending.written ??= []).push(written);
    // Sent without being logged (nobody was waiting then): log it now if it is still in flight
    // (a failed write is logged again when its retry is sent).
    this.writer.logThrough(sent.write);
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
    if (!this.writer.dirty.has(callId) && !this.writer.latestSentOf(callId)) {
      committed();
      return;
    }
    const waiters = this.writer.commitWaiters.get(callId);
    if (waiters) waiters.push(committed);
    else this.writer.commitWaiters.set(callId, [committed]);
  }

  /**
   * The call service let go of an ended call: forget what was written of it. A later change (e.g.
   * its recording) rewrites the whole row, which is idempotent.
   */
  release(callId: string): void {
    this.writer.written.delete(callId);
  }

  /** True while the last write failed and is being retried (readiness: store not writable). */
  failing(): boolean {
    return this.writer.failuresInARow > 0;
  }

  /** Calls whose written state the journal keeps (live calls, and ended ones not yet released). */
  tracked(): number {
    return this.writer.written.size;
  }

  /** Calls with changes not yet committed. */
  backlog(): number {
    return this.writer.dirty.size;
  }

  /**
   * Resolves true once everything recorded so far is committed, false if `timeoutMs` passed
   * first (the store keeps failing). Without a timeout it waits as long as it takes.
   */
  flush(timeoutMs?: number): Promise<boolean> {
    if (this.writer.idle()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.writer.idleWaiters.delete(done);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.writer.idleWaiters.delete(done);
          resolve(false);
        }, timeoutMs);
      }
      this.writer.idleWaiters.add(done);
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
    this.writer.stop();
    if (!flushed) droppedAtClose(this.writer.metrics, this.options.logger, this.writer.dirty);
  }
}
