/**
 * Recovery of the bridge recordings (the "Recovery" paragraph of src/recordings/service.ts):
 *
 * - at start-up, the recordings an earlier run left unsettled (`store.calls.unsettledRecordings()`,
 *   status `recording`) are taken up again ({@link RecordingRecovery.resume}): the call adopted,
 *   or ended with its download pending; for an ended call the call's model is rebuilt from the
 *   store ({@link endedCallFromRecord}) so that `recording.ready` continues its event sequence;
 * - at every ARI (re)connect, and whenever the engine has to find out where a recording stands
 *   rather than wait for an event (a record request with no answer, no RecordingFinished soon
 *   after the call's end), the recording is looked up in Asterisk ({@link RecordingRecovery.check},
 *   over the look-ups of asterisk.ts): still live → wait for RecordingFinished (a live recording of
 *   an ended call is stopped); stored → download (its RecordingFinished was lost); gone → failed,
 *   unless this run's request to start it got no answer and the call still goes on: then the
 *   request never reached Asterisk and is made again ({@link RecordingRecovery.startAgain}). A
 *   look-up that fails while ARI stays connected (no answer in time, a 5xx), or a stop of a live
 *   recording that Asterisk does not carry out, is tried again after {@link LOOK_UP_RETRY} delays
 *   (from 1 s again after each reconnect) until it gets an answer or the recording is settled;
 *   one that fails as ARI drops is made again at the reconnect (at once after it, when ARI came
 *   back while it was in flight);
 * - at the first connect of a run, the copies left in Asterisk of recordings the store already
 *   says are `stored` are deleted ({@link RecordingRecovery.sweepStored}).
 *
 * Reference: docs/recordings.md "After a restart or an ARI outage". Nothing here throws.
 */
import { computeBackoffDelay } from '../ari/backoff.ts';
import { AriConflictError, AriConnectionError, AriNotFoundError } from '../ari/errors.ts';
import type { Call } from '../calls/model.ts';
import { adoptedCallFromRecord } from '../calls/adoption.ts';
import type { UnsettledRecordingRecord } from '../store/calls.ts';
import { bridgeState, locateRecording, type AsteriskLocation } from './asterisk.ts';
import type { RecordingDownloads } from './download.ts';
import { clearLookUpRetry, RECORDING_FORMAT, START_TRIES, type Entry } from './entry.ts';
import type { RecordingRuntime } from './runtime.ts';
import { recordingKey } from './storage.ts';

/**
 * Delays before a look-up in Asterisk (or the stop of the live recording of an ended call) is
 * tried again after it failed while ARI stayed connected (a command timeout, a 5xx): 1 s before
 * the first retry, doubled each time up to 15 s, as long as the recording is not settled; back to
 * 1 s after each ARI (re)connect (ms).
 */
export const LOOK_UP_RETRY = { initialDelayMs: 1_000, maxDelayMs: 15_000 } as const;

/**
 * A look-up in Asterisk that got no usable answer, or a stop Asterisk did not carry out: what
 * could not be done (`look the recording up`, `stop the recording`…), and the error. `unexpected`:
 * the error was thrown by the engine's own code or a dependency, not answered by Asterisk.
 */
interface LookUpFailure {
  failed: string;
  err: unknown;
  unexpected?: boolean;
}

/**
 * What follows one look-up ({@link RecordingRecovery.check}): nothing (`done`), another look-up
 * at once (`again`), or, after a failure, one after a delay.
 */
type LookUpOutcome = 'done' | 'again' | LookUpFailure;

/**
 * The model of an ended call rebuilt from its stored record: numbers, DID, customer, variables,
 * times, operator, disposition, who hung up, end reason and legs as stored, and
 * `nextSequence` = the last stored event sequence + 1. Its snapshot (`snapshotCall`) equals the
 * stored call, so the call journal writing it again with `recording.ready` changes nothing else.
 * (Built with the restart adoption of src/calls/adoption.ts, then ended.) Pure.
 */
export function endedCallFromRecord(record: UnsettledRecordingRecord): Call {
  const { call } = adoptedCallFromRecord(record);
  call.phase = 'ended';
  call.endedAt = record.endedAt === undefined ? undefined : Date.parse(record.endedAt);
  call.disposition = record.disposition;
  call.hangupBy = record.hangupBy;
  call.endReason = record.endReason;
  return call;
}

/** Start-up, reconnects and look-ups in Asterisk, over the runtime's recordings. */
export class RecordingRecovery {
  /** Asterisk's stored recordings were swept once this run ({@link sweepStored}). */
  private swept = false;

  constructor(
    private readonly rt: RecordingRuntime,
    private readonly downloads: RecordingDownloads,
  ) {}

  /**
   * Engine start-up: take up the recordings an earlier run left unsettled
   * (`store.calls.unsettledRecordings()`, recording status `recording`). A call not yet ended
   * (the call service adopts it) is watched as if this run had started its recording: its
   * RecordingFinished, or what {@link connected} finds, leads to the download, and its
   * `call.ended` to `recording.ready`. A call that had ended gets its model rebuilt from the
   * store (`recording.ready` continues its event sequence) and its file fetched once ARI is
   * connected (or after `finishTimeoutMs` at the latest). A `recording.ready` already in the
   * outbox is not sent again. Call before the gateway connects; returns how many were taken up.
   */
  resume(records: readonly UnsettledRecordingRecord[]): number {
    const { rt } = this;
    let resumed = 0;
    for (const record of records) {
      if (rt.stopped || rt.byCall.has(record.id) || record.recording?.status !== 'recording')
        continue;
      const ended = record.state === 'ended';
      let entry: Entry;
      try {
        entry = rt.register({
          callId: record.id,
          name: record.recording.name ?? `rec-${record.id}`,
          key:
            record.recording.path ??
            recordingKey(record.id, Date.parse(record.startedAt), RECORDING_FORMAT),
          call: ended ? endedCallFromRecord(record) : undefined,
          status: 'recording',
          callEnded: ended,
          readySent: record.recordingReadyStored,
        });
      } catch (err) {
        rt.deps.logger.error('recording of an earlier run could not be taken up', {
          callId: record.id,
          err,
        });
        continue;
      }
      rt.metrics.resumed.inc();
      entry.log.info('taking up a recording an earlier run left unsettled', {
        callState: record.state,
        readySent: entry.readySent,
      });
      if (ended) this.downloads.armFinishTimer(entry);
      resumed++;
    }
    if (resumed > 0 && rt.deps.gateway.isConnected()) this.connected();
    return resumed;
  }

  /**
   * ARI is connected (the first time, or again after the WebSocket dropped): look up in Asterisk
   * every recording not yet fetched, since its RecordingFinished may have been lost meanwhile
   * (fixtures fact 13: nothing is replayed); a recording whose look-up is in flight is looked up
   * again once it ends; the retry delays start again from 1 s ({@link LOOK_UP_RETRY}). Live: wait for RecordingFinished (a live recording
   * of an ended call is stopped so it finishes); stored: download it now; missing: failed
   * (`stage="missing"`) unless the engine's storage already holds the file, or unless this run's
   * request to start it got no answer and the call still goes on ({@link startAgain}). Then, once
   * per run and with `deleteFromAsterisk`, {@link sweepStored}. Never throws.
   */
  connected(): void {
    if (this.rt.stopped) return;
    for (const entry of this.rt.byCall.values()) {
      // The failures before the outage say nothing of the Asterisk now answering.
      entry.lookUpFailures = 0;
      if (entry.status !== 'recording') continue;
      // A look-up in flight began before the reconnect: look up again once it ends.
      if (entry.checking) entry.recheck = true;
      else void this.check(entry);
    }
    if (!this.swept && this.rt.deps.options.deleteFromAsterisk) {
      this.swept = true;
      void this.sweepStored();
    }
  }

  /**
   * Delete from Asterisk the copies an earlier run stored but could not delete (it stopped or
   * crashed between the two, or `DELETE /recordings/stored/{name}` failed): every stored
   * recording named `rec-<callId>` whose call the store says is `stored`, and that this run does
   * not hold. Other recordings (other names, calls the store does not know, recordings not
   * stored) are left alone. Once per run, at the first connect, with `deleteFromAsterisk`.
   * Resolves with how many were deleted; never throws (logged, tried again at the next start).
   */
  async sweepStored(): Promise<number> {
    const { rt } = this;
    const { gateway, calls, logger } = rt.deps;
    let deleted = 0;
    try {
      const recordings = await gateway.recordings.listStored();
      for (const { name } of recordings) {
        const callId = /^rec-([0-9a-f-]{36})$/.exec(name)?.[1];
        if (callId === undefined || rt.byCall.has(callId) || rt.stopped) continue;
        const call = await calls.getCall(callId);
        if (call?.recording?.status !== 'stored') continue;
        try {
          await gateway.recordings.deleteStored(name);
          deleted++;
        } catch (err) {
          if (err instanceof AriNotFoundError) continue;
          rt.metrics.cleanupFailures.inc();
          logger.warn('stored recording could not be deleted from Asterisk', { callId, err });
        }
      }
    } catch (err) {
      logger.warn('could not look for stored recordings left in Asterisk', { err });
    }
    if (deleted > 0)
      logger.info('deleted recordings an earlier run had stored but left in Asterisk', {
        deleted,
      });
    return deleted;
  }

  /**
   * Look the recording up in Asterisk and act on what is found ({@link connected}); one look-up
   * at a time per recording. A start of the recording tried again meanwhile is followed by a new
   * look-up at once when ARI is connected (its outcome decides), else at the reconnect. A
   * look-up that fails (the recording's, or the bridge's before a start tried again), or a stop
   * of the live recording of an ended call that Asterisk does not carry out (any answer but 404,
   * or none), is tried again after a delay while ARI is connected ({@link LOOK_UP_RETRY}: 1 s,
   * doubled each time, at most 15 s), and at the reconnect otherwise (at once when ARI reconnected
   * while it was in flight); a settled recording or the engine's stop cancels it. Anything thrown
   * unexpectedly meanwhile is logged at error and retried the same way. Never rejects.
   */
  async check(entry: Entry): Promise<void> {
    try {
      if (entry.checking || entry.status !== 'recording' || this.rt.stopped) return;
      clearLookUpRetry(entry);
      entry.checking = true;
      entry.recheck = false;
      let outcome: LookUpOutcome;
      try {
        outcome = await this.lookUp(entry);
      } catch (err) {
        outcome = { failed: 'look the recording up', err, unexpected: true };
      } finally {
        entry.checking = false;
      }
      this.follow(entry, outcome);
    } catch (err) {
      // Even the logging or the retry failed: the next reconnect looks the recording up.
      try {
        this.rt.deps.logger.error('recording look-up failed unexpectedly', {
          callId: entry.callId,
          err,
        });
      } catch {
        // The logger itself fails: nothing left to tell.
      }
    }
  }

  /**
   * A stop of the live recording of an ended call, asked for by the download
   * (`RecordingDownloads.stopLive`), failed: tried again as a failed look-up ({@link check}).
   */
  stopFailed(entry: Entry, err: unknown): void {
    try {
      this.retryLater(entry, { failed: 'stop the recording', err });
    } catch (thrown) {
      this.rt.deps.logger.error('recording stop could not be retried', {
        callId: entry.callId,
        err: thrown,
      });
    }
  }

  /**
   * What follows a look-up ({@link check}): a failure is tried again ({@link retryLater}), at
   * once when ARI reconnected while it was in flight; `again`, or a reconnect meanwhile, looks
   * the recording up again at once (when ARI is connected).
   */
  private follow(entry: Entry, outcome: LookUpOutcome): void {
    const { rt } = this;
    const reconnected = entry.recheck === true;
    entry.recheck = false;
    const now = reconnected && !rt.stopped && rt.deps.gateway.isConnected();
    if (typeof outcome === 'object') {
      if (!now) {
        this.retryLater(entry, outcome);
        return;
      }
      this.logFailure(entry, outcome, 'ARI reconnected meanwhile; trying again now', {});
      void this.check(entry);
      return;
    }
    entry.lookUpFailures = 0;
    if (now || (outcome === 'again' && !rt.stopped && rt.deps.gateway.isConnected()))
      void this.check(entry);
  }

  /** Log a failed look-up or stop: at error when unexpected (a bug, a dependency), else warn. */
  private logFailure(
    entry: Entry,
    failure: LookUpFailure,
    next: string,
    fields: Record<string, unknown>,
  ): void {
    const { failed, err, unexpected } = failure;
    if (unexpected)
      entry.log.error(`unexpected error as the engine tried to ${failed} in Asterisk; ${next}`, {
        callId: entry.callId,
        ...fields,
        err,
      });
    else entry.log.warn(`could not ${failed} in Asterisk; ${next}`, { ...fields, err });
  }

  /**
   * A look-up failed: while ARI is connected and the recording still waits (`recording`), try
   * {@link check} again after {@link LOOK_UP_RETRY}'s delay for the failures so far; with ARI
   * disconnected, leave it to the reconnect ({@link connected}).
   */
  private retryLater(entry: Entry, failure: LookUpFailure): void {
    const { rt } = this;
    if (rt.stopped || entry.status !== 'recording') return;
    if (!rt.deps.gateway.isConnected()) {
      this.logFailure(entry, failure, 'tried again at the reconnect', {});
      return;
    }
    const attempt = (entry.lookUpFailures ?? 0) + 1;
    entry.lookUpFailures = attempt;
    const delayMs = computeBackoffDelay(attempt - 1, { ...LOOK_UP_RETRY, jitter: 0 });
    this.logFailure(entry, failure, 'trying again', { failures: attempt, retryInMs: delayMs });
    clearLookUpRetry(entry);
    entry.lookUpTimer = setTimeout(() => {
      entry.lookUpTimer = undefined;
      // ARI dropped meanwhile: the reconnect looks it up.
      if (!rt.stopped && rt.deps.gateway.isConnected()) void this.check(entry);
    }, delayMs);
    entry.lookUpTimer.unref();
  }

  /** One look-up for {@link check}: what should follow. */
  private async lookUp(entry: Entry): Promise<LookUpOutcome> {
    let where: AsteriskLocation;
    try {
      where = await locateRecording(this.rt.deps.gateway.recordings, entry.name);
    } catch (err) {
      return { failed: 'look the recording up', err };
    }
    if (entry.status !== 'recording' || this.rt.stopped) return 'done';
    if (entry.startUnconfirmed && where !== 'missing') {
      entry.startUnconfirmed = false;
      this.rt.metrics.started.inc();
    }
    switch (where) {
      case 'stored':
        if (!entry.finished)
          entry.log.info('the recording finished while the engine was not listening');
        entry.finished = true;
        this.downloads.download(entry);
        return 'done';
      case 'live': {
        entry.finished = false;
        if (!entry.callEnded) {
          entry.log.debug('the recording is still being made in Asterisk');
          return 'done';
        }
        const err = await this.downloads.stopLive(entry);
        return err === undefined ? 'done' : { failed: 'stop the recording', err };
      }
      case 'missing':
        if (entry.startUnconfirmed && !entry.callEnded) return this.startAgain(entry);
        await this.downloads.missing(entry);
        return 'done';
    }
  }

  /**
   * This run's request to start the recording got no answer and Asterisk has no recording of that
   * name: the request never reached it. While the call goes on (bridged for the engine, and its
   * bridge in Asterisk still holding two channels or more), the recording is asked for again on
   * the call's bridge under the same name, with `ifExists=fail`: a recording of that name that
   * appeared meanwhile is the first request's after all, and is looked up rather than
   * overwritten. At most {@link START_TRIES} requests in all. Otherwise (the call ended, its
   * bridge gone or left with one party, the tries used up) the recording failed as any recording
   * Asterisk does not have (`RecordingDownloads.missing`: `stage="missing"`); Asterisk refusing
   * the request fails it with `stage="start"`, as a refused first request. Resolves `again` when
   * the recording should be looked up again at once: no answer again, a recording of that name in
   * the way, or the call ended while the request was in flight (a live recording is then stopped);
   * a failure when the bridge could not be looked up (tried again later, {@link check}).
   */
  private async startAgain(entry: Entry): Promise<LookUpOutcome> {
    const { rt, downloads } = this;
    const call = entry.call;
    const bridgeId = call?.bridgeId ?? entry.bridgeId;
    const tries = entry.startTries ?? START_TRIES;
    if (call?.phase !== 'bridged' || bridgeId === undefined) {
      await downloads.missing(entry);
      return 'done';
    }
    if (tries >= START_TRIES) {
      entry.log.warn('the recording start never reached Asterisk; no tries left', { tries });
      await downloads.missing(entry);
      return 'done';
    }
    const { gateway } = rt.deps;
    let bridge: Awaited<ReturnType<typeof bridgeState>>;
    try {
      bridge = await bridgeState(gateway.bridges, bridgeId);
    } catch (err) {
      return { failed: "look the call's bridge up", err };
    }
    if (entry.status !== 'recording' || rt.stopped) return 'done';
    if (bridge !== 'talking' || entry.callEnded) {
      entry.log.info('the call ended before its recording could be started again', {
        bridgeId,
        bridge,
      });
      await downloads.missing(entry);
      return 'done';
    }
    entry.startTries = tries + 1;
    entry.log.warn('the recording start never reached Asterisk; starting the recording again', {
      bridgeId,
      attempt: entry.startTries,
      attempts: START_TRIES,
    });
    try {
      await gateway.bridges.record(bridgeId, {
        name: entry.name,
        format: RECORDING_FORMAT,
        ifExists: 'fail',
      });
    } catch (err) {
      if (entry.status !== 'recording' || rt.stopped) return 'done';
      if (err instanceof AriNotFoundError) {
        entry.log.info('bridge gone before its recording started again', { bridgeId });
        await downloads.missing(entry);
        return 'done';
      }
      if (err instanceof AriConnectionError) {
        entry.log.warn('no answer to the recording start again; looking it up in Asterisk', {
          err,
        });
        return 'again';
      }
      if (err instanceof AriConflictError) {
        entry.log.warn('Asterisk has a recording of that name after all; looking it up', { err });
        return 'again';
      }
      rt.fail(entry, 'start', err);
      return 'done';
    }
    entry.startUnconfirmed = false;
    rt.metrics.started.inc();
    entry.log.info('recording the call', { bridgeId, format: RECORDING_FORMAT, restarted: true });
    return entry.status === 'recording' && entry.callEnded && !entry.finished ? 'again' : 'done';
  }
}
