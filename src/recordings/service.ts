/**
 * The recordings service: every bridged call can be recorded; the file is taken from Asterisk
 * over ARI, stored by the engine and served to the CRM's audio player. It is the
 * call service's {@link CallRecorder}:
 *
 * 1. `bridgeCreated`: when RECORD_CALLS (or the call's override) says so, the bridge is recorded
 *    (`POST /bridges/{id}/record`, format `wav`, name `rec-<callId>`, as in the inbound-answered
 *    trace). The store row gets `recording.status: recording`. No answer to the request
 *    (connection cut, timeout) leads to a look-up in Asterisk instead of a failure; when
 *    Asterisk has no such recording while the call still goes on, the request never reached it
 *    and is made again (at most {@link START_TRIES} requests in all).
 * 2. `call.ended` carries the signed link ({@link RecordingService.recordingUrl}).
 * 3. RecordingFinished (Asterisk sends it when the bridge empties or is destroyed) → download:
 *    `GET /recordings/stored/{name}/file`, check the WAV against itself and the event's
 *    `duration` ({@link verifyWav}), keep it in the {@link RecordingStorage}. A failed try is
 *    retried with doubling delays; when every try failed the recording is `failed` in the store
 *    and counted (`aricrm_recording_failures_total{stage}`). A recording Asterisk does not have
 *    (404, neither live nor stored) fails at once (`stage="missing"`). No RecordingFinished
 *    `finishCheckMs` after `call.ended`: the recording is looked up in Asterisk (stored → fetched,
 *    live → stopped; the record request still unanswered then → looked up at its answer); none
 *    `finishTimeoutMs` after it: the file is fetched anyway. Without the event, `durationSec`
 *    comes from the file, rounded down to whole seconds as Asterisk counts it.
 * 4. `recording.ready` goes out through the call notifier once the file is stored AND `call.ended`
 *    was emitted, on the call's own `Call` object (handed over by the call service, held here
 *    until the recording is settled) so the call's event sequence continues without a gap.
 * 5. The store row gets `stored` with path, bytes and seconds in the call journal's transaction
 *    that commits `recording.ready` (the statuses go through the journal: no store round trip of
 *    their own), and only once that is committed is the file deleted from Asterisk
 *    (`DELETE /recordings/stored/{name}`, configurable). So whatever point the engine stops at,
 *    the store says `recording` until the CRM's event is safe, and Asterisk keeps its copy until
 *    the store says `stored`.
 *
 * Recovery ({@link RecordingService.resume}, {@link RecordingService.connected}): at start-up the
 * recordings the store still shows as `recording` are taken up again (the call adopted, or ended
 * with its download pending); on every ARI (re)connect each recording not yet finished is looked
 * up in Asterisk (`GET /recordings/live/{name}`, then `/recordings/stored/{name}`): still live →
 * wait for RecordingFinished (a live recording of an ended call is stopped); stored → download
 * (its RecordingFinished was lost); gone → failed, unless this run's request to start it got no
 * answer and the call still goes on: then the request never reached Asterisk and is made again.
 * ARI unreachable during a download does not use up tries: the download waits for the reconnect.
 * At the first connect of a run, the copies left in Asterisk of recordings the store already says
 * are `stored` are deleted ({@link RecordingService.sweepStored}).
 *
 * Nothing here throws into the call flows. Reference: docs/recordings.md.
 */
import type { Counter, Registry } from 'prom-client';
import { computeBackoffDelay } from '../ari/backoff.ts';
import { AriConflictError, AriConnectionError, AriNotFoundError } from '../ari/errors.ts';
import type { AriEvent, AriGateway, AriLiveRecording } from '../ari/types.ts';
import type { CallJournal } from '../calls/journal.ts';
import type { Call } from '../calls/model.ts';
import type { CallNotifier } from '../calls/notifier.ts';
import type { CallRecorder } from '../calls/service.ts';
import type { Logger } from '../logging/logger.ts';
import { counter } from '../metrics/registry.ts';
import type { CallRepository, RecordingFields, UnsettledRecordingRecord } from '../store/calls.ts';
import { bridgeState, locateRecording, type AsteriskLocation } from './asterisk.ts';
import { shouldRecord, type RecordMode } from './config.ts';
import type { RecordingLinks } from './links.ts';
import { endedCallFromRecord } from './recovery.ts';
import { recordingKey, type RecordingStorage } from './storage.ts';
import { verifyWav } from './wav.ts';

/** The recording format the engine asks Asterisk for (RIFF PCM 8 kHz 16-bit mono). */
export const RECORDING_FORMAT = 'wav';

/** `recording.status` values the engine writes to the store. */
export type StoredRecordingStatus = 'recording' | 'stored' | 'failed';

/** Where a recording failed (label of `aricrm_recording_failures_total`). */
export type RecordingFailureStage =
  /** `POST /bridges/{id}/record` was refused. */
  | 'start'
  /** Asterisk reported the recording failed or canceled (RecordingFailed, RecordingFinished). */
  | 'asterisk'
  /** Asterisk has no such recording, neither live nor stored (404), nor has the engine's storage. */
  | 'missing'
  /** `GET /recordings/stored/{name}/file` failed. */
  | 'download'
  /** The file was not a complete WAV of the reported length. */
  | 'verify'
  /** The engine's storage could not keep it. */
  | 'storage';

/** Where a call's recording stands (the HTTP route answers from this). */
export type RecordingLookup =
  | { state: 'unknown_call' }
  | { state: 'not_recorded' }
  | { state: 'pending' }
  | { state: 'failed' }
  | { state: 'stored'; key: string; bytes?: number; durationSec?: number };

/** Behaviour settings (from the configuration, see `config.ts`). */
export interface RecordingServiceOptions {
  mode: RecordMode;
  /** Delete the recording from Asterisk once stored. */
  deleteFromAsterisk: boolean;
  /** Download tries in all, and the delay before the 2nd (doubled each time, capped), ms. */
  download: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  /**
   * After `call.ended` (or after a restart, for a call that had ended), how long to wait for
   * RecordingFinished before fetching the file anyway (the event can be lost while the ARI
   * WebSocket reconnects: fixtures fact 13), ms. Default 30 000.
   */
  finishTimeoutMs?: number;
  /**
   * After `call.ended`, how long to wait for RecordingFinished before looking the recording up in
   * Asterisk (`GET /recordings/live/{name}`, then `/recordings/stored/{name}`): stored, it is
   * fetched at once (its RecordingFinished was lost: seen on Asterisk 22 about once in 30 recorded
   * calls, the recording ending as the engine destroys the call's bridge); still live, it is
   * stopped. When `POST /bridges/{id}/record` is still unanswered at that point, the look-up is
   * made as soon as it is answered. The fetch after `finishTimeoutMs` stays as the last resort.
   * ms, default 2 000.
   */
  finishCheckMs?: number;
  /**
   * How long a settled recording stays in memory, ms. Default: until its final status is written
   * to the store, which answers afterwards.
   */
  retainMs?: number;
  /** Delay before a store write is tried again (the call row not written yet, or an error), ms. Default 200. */
  storeRetryDelayMs?: number;
}

/** What the service needs. */
export interface RecordingServiceDeps {
  gateway: Pick<AriGateway, 'bridges' | 'recordings' | 'isConnected'>;
  notifier: Pick<CallNotifier, 'recordingReady'>;
  /** The store's call repository: recording fields are written and read there. */
  calls: Pick<CallRepository, 'setRecording' | 'getCall'>;
  /**
   * The call journal. With `recordRecording` the recording status goes into the journal's
   * transactions (`recording` after the call's row, `stored` in the same commit as
   * `recording.ready`); Asterisk's copy is deleted once that commit is done. With only
   * `whenCommitted`, `stored` is written with `calls.setRecording` after that commit. Without
   * it (tests), statuses are written with `calls.setRecording` at once.
   */
  journal?: Pick<CallJournal, 'whenCommitted'> & Partial<Pick<CallJournal, 'recordRecording'>>;
  /** True when the call service knows the call (live or recently ended, maybe not stored yet). */
  callKnown?: (callId: string) => boolean;
  storage: RecordingStorage;
  links: RecordingLinks;
  logger: Logger;
  registry: Registry;
  options: RecordingServiceOptions;
}

type EntryStatus = 'starting' | 'recording' | 'downloading' | 'stored' | 'failed';

/**
 * `POST /bridges/{id}/record` requests for one call's recording, the first included, when the
 * earlier ones got no answer and Asterisk turned out not to have the recording (the request never
 * reached it). Once they are used up, the recording failed (`stage="missing"`).
 */
export const START_TRIES = 3;

/** One recorded call, while it is recorded, downloaded and (for `retainMs`) after. */
interface Entry {
  callId: string;
  /** Asterisk's recording name. */
  name: string;
  /** Storage key. */
  key: string;
  /** The call's live model: held until `recording.ready` was sent or the recording failed. */
  call: Call | undefined;
  log: Logger;
  /**
   * `recording`: Asterisk records it, or it finished and waits to be fetched (`finished`);
   * `downloading`: a download loop runs; `stored`: the file is in the engine's storage.
   */
  status: EntryStatus;
  callEnded: boolean;
  /** Asterisk finished the recording (RecordingFinished, or found stored). */
  finished: boolean;
  /** From RecordingFinished, then from the file. */
  durationSec?: number;
  bytes?: number;
  /** `recording.ready` was emitted (by this run, or found in the store). */
  readySent: boolean;
  /** `recording.ready` is out: `stored` is being written, then Asterisk's copy deleted. */
  finalizing: boolean;
  /** A look-up in Asterisk ({@link RecordingService.connected}) is in flight. */
  checking: boolean;
  /**
   * This run asked Asterisk to record but got no answer: the look-up that finds the recording
   * counts it as started (`aricrm_recordings_started_total`).
   */
  startUnconfirmed?: boolean;
  /** The bridge this run asked Asterisk to record (the call's own `bridgeId` is used first). */
  bridgeId?: string;
  /** `POST /bridges/{id}/record` requests this run made for the recording ({@link START_TRIES}). */
  startTries?: number;
  finishTimer?: NodeJS.Timeout;
  /** The look-up in Asterisk `finishCheckMs` after the call's end. */
  checkTimer?: NodeJS.Timeout;
  /**
   * `finishCheckMs` after the call's end came while `POST /bridges/{id}/record` was still
   * unanswered (status `starting`): the look-up is made as soon as the request is answered.
   */
  checkDue?: boolean;
  /** Store writes of this recording, one after another. */
  writes: Promise<void>;
}

class StageError extends Error {
  constructor(
    readonly stage: RecordingFailureStage,
    readonly reason: unknown,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

const STORE_WRITE_TRIES = 6;

/** See the module comment. */
export class RecordingService implements CallRecorder {
  private readonly byCall = new Map<string, Entry>();
  private readonly byName = new Map<string, Entry>();
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly evictions = new Set<NodeJS.Timeout>();
  /**
   * Downloads in progress ({@link finishDownloads}): each try in flight, then the `stored` write,
   * `recording.ready` and the clean-up in Asterisk that follow a stored file.
   */
  private readonly busy = new Set<Promise<unknown>>();
  private stopped = false;
  /** Asterisk's stored recordings were swept once this run ({@link sweepStored}). */
  private swept = false;
  private readonly metrics: {
    started: Counter;
    stored: Counter;
    resumed: Counter;
    failures: Counter<'stage'>;
    retries: Counter<'stage'>;
    cleanupFailures: Counter;
  };

  constructor(private readonly deps: RecordingServiceDeps) {
    const { registry } = deps;
    this.metrics = {
      started: counter(registry, {
        name: 'aricrm_recordings_started_total',
        help: 'Bridge recordings started (POST /bridges/{id}/record accepted).',
      }),
      stored: counter(registry, {
        name: 'aricrm_recordings_stored_total',
        help: 'Recordings downloaded from Asterisk, verified and stored by the engine.',
      }),
      resumed: counter(registry, {
        name: 'aricrm_recordings_resumed_total',
        help: 'Recordings an earlier run left unsettled (recording or downloading), taken up again at start-up.',
      }),
      failures: counter(registry, {
        name: 'aricrm_recording_failures_total',
        help: 'Recordings that ended failed, by stage (start, asterisk, missing, download, verify, storage).',
        labelNames: ['stage'] as const,
      }),
      retries: counter(registry, {
        name: 'aricrm_recording_download_retries_total',
        help: 'Download tries of a finished recording that failed and were retried, by stage.',
        labelNames: ['stage'] as const,
      }),
      cleanupFailures: counter(registry, {
        name: 'aricrm_recording_cleanup_failures_total',
        help: 'Stored recordings that could not be deleted from Asterisk afterwards.',
      }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // CallRecorder (called by the call service)
  // -------------------------------------------------------------------------------------------

  /** Start recording the call's bridge when configured (see {@link CallRecorder.bridgeCreated}). */
  async bridgeCreated(call: Call, bridgeId: string, record: boolean | undefined): Promise<void> {
    try {
      if (this.stopped || this.byCall.has(call.id)) return;
      if (!shouldRecord(this.deps.options.mode, call.direction, record)) return;
      const name = `rec-${call.id}`;
      const entry = this.register({
        callId: call.id,
        name,
        key: recordingKey(call.id, call.startedAt, RECORDING_FORMAT),
        call,
        status: 'starting',
        callEnded: false,
        readySent: false,
      });
      entry.bridgeId = bridgeId;
      entry.startTries = 1;
      try {
        await this.deps.gateway.bridges.record(bridgeId, {
          name,
          format: RECORDING_FORMAT,
          ifExists: 'overwrite',
        });
      } catch (err) {
        if (err instanceof AriNotFoundError) {
          // The bridge went away (a party hung up at once): nothing was recorded.
          entry.log.info('bridge gone before its recording started; call not recorded', {
            bridgeId,
          });
          this.forget(entry);
          return;
        }
        if (err instanceof AriConnectionError || this.stopped) {
          // No answer: Asterisk may have started it or not. Like a recording taken up at
          // start-up, it is looked up in Asterisk (now, or at the reconnect): live or stored, it
          // is fetched in due course; missing, it is started again while the call goes on
          // (startAgain), else it failed.
          entry.status = 'recording';
          entry.startUnconfirmed = true;
          entry.checkDue = false;
          entry.log.warn('no answer to the recording start; looking it up in Asterisk', { err });
          void this.persist(entry, 'recording');
          if (!this.stopped && this.deps.gateway.isConnected()) void this.check(entry);
          return;
        }
        this.fail(entry, 'start', err);
        return;
      }
      if (entry.status === 'starting') entry.status = 'recording';
      this.metrics.started.inc();
      entry.log.info('recording the call', { bridgeId, format: RECORDING_FORMAT });
      void this.persist(entry, 'recording');
      if (entry.checkDue) {
        // The call ended and finishCheckMs passed while the request was unanswered: look the
        // recording up now rather than wait finishTimeoutMs. A RecordingFinished that comes
        // meanwhile (or came already) starts the download itself; check() and download() act
        // only on a recording still waiting (`recording`), so the file is fetched once.
        entry.checkDue = false;
        if (!entry.finished && !this.stopped) {
          entry.log.info('recording start answered after the call ended; looking it up');
          void this.check(entry);
        }
      }
    } catch (err) {
      this.deps.logger.error('recording could not be started', { callId: call.id, err });
    }
  }

  /** The signed link of a recorded call's recording, for `call.ended`; else undefined. */
  recordingUrl(callId: string): string | undefined {
    const entry = this.byCall.get(callId);
    if (!entry || entry.status === 'failed' || entry.status === 'starting') return undefined;
    return this.deps.links.sign(callId).url;
  }

  /** `call.ended` was emitted: `recording.ready` may follow (see {@link CallRecorder.callEnded}). */
  callEnded(call: Call): void {
    const entry = this.byCall.get(call.id);
    if (!entry || entry.callEnded) return;
    entry.callEnded = true;
    if (entry.status === 'failed' || entry.readySent) return;
    entry.call = call;
    if (!entry.finished && (entry.status === 'recording' || entry.status === 'starting')) {
      this.armFinishTimer(entry);
      this.armFinishCheck(entry);
    }
    this.maybeReady(entry);
  }

  // -------------------------------------------------------------------------------------------
  // Recovery: engine restart, ARI reconnect
  // -------------------------------------------------------------------------------------------

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
    let resumed = 0;
    for (const record of records) {
      if (this.stopped || this.byCall.has(record.id) || record.recording?.status !== 'recording')
        continue;
      const ended = record.state === 'ended';
      let entry: Entry;
      try {
        entry = this.register({
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
        this.deps.logger.error('recording of an earlier run could not be taken up', {
          callId: record.id,
          err,
        });
        continue;
      }
      this.metrics.resumed.inc();
      entry.log.info('taking up a recording an earlier run left unsettled', {
        callState: record.state,
        readySent: entry.readySent,
      });
      if (ended) this.armFinishTimer(entry);
      resumed++;
    }
    if (resumed > 0 && this.deps.gateway.isConnected()) this.connected();
    return resumed;
  }

  /**
   * ARI is connected (the first time, or again after the WebSocket dropped): look up in Asterisk
   * every recording not yet fetched, since its RecordingFinished may have been lost meanwhile
   * (fixtures fact 13: nothing is replayed). Live: wait for RecordingFinished (a live recording
   * of an ended call is stopped so it finishes); stored: download it now; missing: failed
   * (`stage="missing"`) unless the engine's storage already holds the file, or unless this run's
   * request to start it got no answer and the call still goes on ({@link startAgain}). Never
   * throws.
   */
  connected(): void {
    if (this.stopped) return;
    for (const entry of this.byCall.values())
      if (entry.status === 'recording') void this.check(entry);
    if (!this.swept && this.deps.options.deleteFromAsterisk) {
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
    let deleted = 0;
    try {
      const recordings = await this.deps.gateway.recordings.listStored();
      for (const { name } of recordings) {
        const callId = /^rec-([0-9a-f-]{36})$/.exec(name)?.[1];
        if (callId === undefined || this.byCall.has(callId) || this.stopped) continue;
        const call = await this.deps.calls.getCall(callId);
        if (call?.recording?.status !== 'stored') continue;
        try {
          await this.deps.gateway.recordings.deleteStored(name);
          deleted++;
        } catch (err) {
          if (err instanceof AriNotFoundError) continue;
          this.metrics.cleanupFailures.inc();
          this.deps.logger.warn('stored recording could not be deleted from Asterisk', {
            callId,
            err,
          });
        }
      }
    } catch (err) {
      this.deps.logger.warn('could not look for stored recordings left in Asterisk', { err });
    }
    if (deleted > 0)
      this.deps.logger.info('deleted recordings an earlier run had stored but left in Asterisk', {
        deleted,
      });
    return deleted;
  }

  /**
   * Look the recording up in Asterisk and act on what is found ({@link connected}); one look-up
   * at a time per recording. A start of the recording tried again meanwhile is followed by a new
   * look-up at once when ARI is connected (its outcome decides), else at the reconnect.
   */
  private async check(entry: Entry): Promise<void> {
    if (entry.checking || entry.status !== 'recording' || this.stopped) return;
    entry.checking = true;
    let again = false;
    try {
      again = await this.lookUp(entry);
    } finally {
      entry.checking = false;
    }
    if (again && !this.stopped && this.deps.gateway.isConnected()) void this.check(entry);
  }

  /** One look-up for {@link check}. Resolves true when another should follow at once. */
  private async lookUp(entry: Entry): Promise<boolean> {
    let where: AsteriskLocation;
    try {
      where = await locateRecording(this.deps.gateway.recordings, entry.name);
    } catch (err) {
      entry.log.warn('could not look the recording up in Asterisk; tried again later', { err });
      return false;
    }
    if (entry.status !== 'recording' || this.stopped) return false;
    if (entry.startUnconfirmed && where !== 'missing') {
      entry.startUnconfirmed = false;
      this.metrics.started.inc();
    }
    switch (where) {
      case 'stored':
        if (!entry.finished)
          entry.log.info('the recording finished while the engine was not listening');
        entry.finished = true;
        this.download(entry);
        return false;
      case 'live':
        entry.finished = false;
        if (entry.callEnded) await this.stopLive(entry);
        else entry.log.debug('the recording is still being made in Asterisk');
        return false;
      case 'missing':
        if (entry.startUnconfirmed && !entry.callEnded) return this.startAgain(entry);
        await this.missing(entry);
        return false;
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
   * Asterisk does not have ({@link missing}: `stage="missing"`); Asterisk refusing the request
   * fails it with `stage="start"`, as a refused first request. Resolves true when the recording
   * should be looked up again at once: no answer again, a recording of that name in the way, or
   * the call ended while the request was in flight (a live recording is then stopped).
   */
  private async startAgain(entry: Entry): Promise<boolean> {
    const call = entry.call;
    const bridgeId = call?.bridgeId ?? entry.bridgeId;
    const tries = entry.startTries ?? START_TRIES;
    if (call?.phase !== 'bridged' || bridgeId === undefined) {
      await this.missing(entry);
      return false;
    }
    if (tries >= START_TRIES) {
      entry.log.warn('the recording start never reached Asterisk; no tries left', { tries });
      await this.missing(entry);
      return false;
    }
    const { gateway } = this.deps;
    let bridge: Awaited<ReturnType<typeof bridgeState>>;
    try {
      bridge = await bridgeState(gateway.bridges, bridgeId);
    } catch (err) {
      entry.log.warn("could not look the call's bridge up in Asterisk; tried again later", {
        err,
      });
      return false;
    }
    if (entry.status !== 'recording' || this.stopped) return false;
    if (bridge !== 'talking' || entry.callEnded) {
      entry.log.info('the call ended before its recording could be started again', {
        bridgeId,
        bridge,
      });
      await this.missing(entry);
      return false;
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
      if (entry.status !== 'recording' || this.stopped) return false;
      if (err instanceof AriNotFoundError) {
        entry.log.info('bridge gone before its recording started again', { bridgeId });
        await this.missing(entry);
        return false;
      }
      if (err instanceof AriConnectionError) {
        entry.log.warn('no answer to the recording start again; looking it up in Asterisk', {
          err,
        });
        return true;
      }
      if (err instanceof AriConflictError) {
        entry.log.warn('Asterisk has a recording of that name after all; looking it up', { err });
        return true;
      }
      this.fail(entry, 'start', err);
      return false;
    }
    entry.startUnconfirmed = false;
    this.metrics.started.inc();
    entry.log.info('recording the call', { bridgeId, format: RECORDING_FORMAT, restarted: true });
    return entry.status === 'recording' && entry.callEnded && !entry.finished;
  }

  /**
   * The call has ended but Asterisk still records it (its bridge was not destroyed): stop the
   * recording (RecordingFinished follows) and wait for it as after any `call.ended`.
   */
  private async stopLive(entry: Entry): Promise<void> {
    entry.log.warn('the call has ended but Asterisk still records it; stopping the recording');
    if (!entry.finishTimer) this.armFinishTimer(entry);
    try {
      await this.deps.gateway.recordings.stopLive(entry.name);
    } catch (err) {
      // 404: it finished meanwhile (its RecordingFinished, or the timer, fetches it).
      if (!(err instanceof AriNotFoundError))
        entry.log.warn('could not stop the recording in Asterisk', { err });
    }
  }

  /**
   * Asterisk has no such recording (deleted from its spool, Asterisk lost it): if the engine's
   * storage already holds the file (an earlier run stored it but did not get to record that),
   * it is the recording; otherwise the recording failed (`stage="missing"`).
   */
  private async missing(entry: Entry): Promise<void> {
    let kept: Buffer | undefined;
    try {
      if (await this.deps.storage.stat(entry.key))
        kept = await readAll(this.deps.storage, entry.key);
    } catch (err) {
      entry.log.warn('could not read the recording from the storage', { err });
    }
    if (kept) {
      try {
        const info = verifyWav(kept);
        entry.log.info('Asterisk no longer has the recording; the storage already holds it');
        this.complete(entry, kept.length, info.durationSec);
        return;
      } catch (err) {
        entry.log.warn('the file in the storage is not a complete recording', { err });
      }
    }
    this.fail(
      entry,
      'missing',
      new Error(`Asterisk has no recording ${entry.name}, neither live nor stored`),
    );
  }

  // -------------------------------------------------------------------------------------------
  // ARI events (stasis.ts)
  // -------------------------------------------------------------------------------------------

  /** RecordingStarted / RecordingFinished / RecordingFailed of the Stasis app. Never throws. */
  handleEvent(event: AriEvent): void {
    if (
      event.type !== 'RecordingFinished' &&
      event.type !== 'RecordingFailed' &&
      event.type !== 'RecordingStarted'
    )
      return;
    const entry = this.byName.get(event.recording.name);
    if (!entry) return;
    const rec: AriLiveRecording = event.recording;
    if (event.type === 'RecordingStarted') {
      entry.log.debug('recording started in Asterisk', { targetUri: rec.target_uri });
      return;
    }
    entry.finished = true;
    this.clearFinishTimers(entry);
    if (event.type === 'RecordingFailed' || rec.state === 'failed' || rec.state === 'canceled') {
      this.fail(entry, 'asterisk', new Error(`Asterisk says the recording ${rec.state}`), {
        cause: rec.cause,
      });
      return;
    }
    if (typeof rec.duration === 'number') entry.durationSec = rec.duration;
    entry.log.info('recording finished in Asterisk', { durationSec: rec.duration });
    this.download(entry);
  }

  // -------------------------------------------------------------------------------------------
  // Serving (routes.ts) and call details
  // -------------------------------------------------------------------------------------------

  /**
   * Link for `recording.url` of a stored call that has recording fields (the call details of
   * `src/calls/routes.ts`): undefined when the recording is known to have failed; otherwise a
   * fresh signed link (it answers 409 until the file is stored).
   */
  storedRecordingUrl(callId: string): string | undefined {
    const entry = this.byCall.get(callId);
    if (entry?.status === 'failed') return undefined;
    return this.deps.links.sign(callId).url;
  }

  /**
   * Where the recording of `callId` stands: from memory while it is recent, else from the store.
   *
   * @throws the store's error when it cannot be read
   */
  async lookup(callId: string): Promise<RecordingLookup> {
    const entry = this.byCall.get(callId);
    if (entry) {
      switch (entry.status) {
        case 'stored': {
          const found: RecordingLookup = { state: 'stored', key: entry.key };
          if (entry.bytes !== undefined) found.bytes = entry.bytes;
          if (entry.durationSec !== undefined) found.durationSec = entry.durationSec;
          return found;
        }
        case 'failed':
          return { state: 'failed' };
        default:
          return { state: 'pending' };
      }
    }
    const record = await this.deps.calls.getCall(callId);
    if (!record)
      return this.deps.callKnown?.(callId) ? { state: 'not_recorded' } : { state: 'unknown_call' };
    const rec = record.recording;
    if (!rec?.status) return { state: 'not_recorded' };
    if (rec.status === 'stored' && rec.path) {
      const found: RecordingLookup = { state: 'stored', key: rec.path };
      if (rec.bytes !== undefined) found.bytes = rec.bytes;
      if (rec.durationSec !== undefined) found.durationSec = rec.durationSec;
      return found;
    }
    if (rec.status === 'failed' || rec.status === 'stored') return { state: 'failed' };
    return { state: 'pending' };
  }

  /** Recordings being recorded or downloaded (tests, shutdown logs). */
  inProgress(): number {
    let n = 0;
    for (const entry of this.byCall.values())
      if (entry.status !== 'stored' && entry.status !== 'failed') n++;
    return n;
  }

  /**
   * Engine shutdown, before {@link stop}: wait until the downloads in progress are done (a try in
   * flight, then the storing of the file, `recording.ready` once committed and the deletion from
   * Asterisk), those that start meanwhile included. A download waiting for its retry delay is not
   * waited for (it stays in Asterisk for the next start). Resolves true when none is left in
   * progress, false when `timeoutMs` (ms) passed first. Never rejects.
   */
  async finishDownloads(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.busy.size > 0) {
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.busy]).then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), leftMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) return this.busy.size === 0;
    }
    return true;
  }

  /**
   * Stop: pending retries are abandoned (the recordings stay in Asterisk; nothing is deleted),
   * no more recordings start, and a `stored` not yet written is left to the next start (which
   * finds the recording unsettled and takes it up). Idempotent.
   */
  stop(): void {
    this.stopped = true;
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.resolve();
    }
    this.sleepers.clear();
    for (const timer of this.evictions) clearTimeout(timer);
    this.evictions.clear();
    for (const entry of this.byCall.values()) {
      this.clearFinishTimers(entry);
      if (entry.status !== 'stored' && entry.status !== 'failed')
        entry.log.warn('engine stopping: recording left in Asterisk', { status: entry.status });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Download
  // -------------------------------------------------------------------------------------------

  private register(
    fields: Pick<Entry, 'callId' | 'name' | 'key' | 'call' | 'status' | 'callEnded' | 'readySent'>,
  ): Entry {
    const entry: Entry = {
      ...fields,
      log: this.deps.logger.child({ callId: fields.callId, recordingName: fields.name }),
      finished: false,
      finalizing: false,
      checking: false,
      writes: Promise.resolve(),
    };
    this.byCall.set(entry.callId, entry);
    this.byName.set(entry.name, entry);
    return entry;
  }

  /** After the call's end: fetch the file anyway if no RecordingFinished came by then. */
  private armFinishTimer(entry: Entry): void {
    if (this.stopped) return;
    if (entry.finishTimer) clearTimeout(entry.finishTimer);
    const waitMs = this.deps.options.finishTimeoutMs ?? 30_000;
    entry.finishTimer = setTimeout(() => {
      entry.finishTimer = undefined;
      if (entry.finished || this.stopped) return;
      entry.log.warn('no RecordingFinished after the call ended; fetching the recording', {
        waitedMs: waitMs,
      });
      this.download(entry);
    }, waitMs);
    entry.finishTimer.unref();
  }

  /**
   * Soon after the call's end: look the recording up in Asterisk if no RecordingFinished came by
   * then (see `finishCheckMs`), so that a lost event costs seconds, not `finishTimeoutMs`. When
   * `POST /bridges/{id}/record` is still unanswered then, the look-up is made at its answer
   * ({@link bridgeCreated}); no answer at all (connection cut, timeout) is looked up at once
   * there too.
   */
  private armFinishCheck(entry: Entry): void {
    if (this.stopped) return;
    if (entry.checkTimer) clearTimeout(entry.checkTimer);
    const waitMs = this.deps.options.finishCheckMs ?? 2_000;
    entry.checkTimer = setTimeout(() => {
      entry.checkTimer = undefined;
      if (entry.finished || this.stopped) return;
      if (entry.status === 'starting') {
        // Asterisk has not answered the record request yet: look up once it has.
        entry.checkDue = true;
        entry.log.info('no answer to the recording start yet after the call ended', {
          waitedMs: waitMs,
        });
        return;
      }
      if (entry.status !== 'recording') return;
      entry.log.info('no RecordingFinished yet after the call ended; looking the recording up', {
        waitedMs: waitMs,
      });
      void this.check(entry);
    }, waitMs);
    entry.checkTimer.unref();
  }

  /** Clear the timers that wait for RecordingFinished. */
  private clearFinishTimers(entry: Entry): void {
    if (entry.finishTimer) clearTimeout(entry.finishTimer);
    entry.finishTimer = undefined;
    if (entry.checkTimer) clearTimeout(entry.checkTimer);
    entry.checkTimer = undefined;
  }

  private download(entry: Entry): void {
    if (this.stopped || (entry.status !== 'starting' && entry.status !== 'recording')) return;
    this.clearFinishTimers(entry);
    entry.status = 'downloading';
    void this.downloadLoop(entry);
  }

  private async downloadLoop(entry: Entry): Promise<void> {
    const { attempts, initialDelayMs, maxDelayMs } = this.deps.options.download;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.track(this.fetchAndStore(entry));
        return;
      } catch (err) {
        const stage = err instanceof StageError ? err.stage : 'download';
        const cause = err instanceof StageError ? err.reason : err;
        if (this.stopped) return;
        if (cause instanceof AriNotFoundError && (await this.notInAsterisk(entry))) return;
        if (this.stopped) return;
        if (cause instanceof AriConnectionError && !this.deps.gateway.isConnected()) {
          // Not the recording's fault: try again once ARI is back (connected()), without
          // using up tries however long the outage lasts.
          entry.status = 'recording';
          entry.log.warn('Asterisk unreachable; the recording is fetched when ARI reconnects', {
            err: cause,
          });
          return;
        }
        if (attempt >= attempts) {
          this.fail(entry, stage, cause, { attempts: attempt });
          return;
        }
        const delayMs = computeBackoffDelay(attempt - 1, { initialDelayMs, maxDelayMs, jitter: 0 });
        this.metrics.retries.inc({ stage });
        entry.log.warn('recording download failed; retrying', {
          stage,
          attempt,
          attempts,
          retryInMs: delayMs,
          err: cause,
        });
        await this.sleep(delayMs);
      }
    }
  }

  /**
   * `GET /recordings/stored/{name}/file` answered 404: find out why. True when the
   * download loop is done with (the recording is still live, or missing); false to try again
   * (it is stored after all, or Asterisk could not be asked).
   */
  private async notInAsterisk(entry: Entry): Promise<boolean> {
    let where: AsteriskLocation;
    try {
      where = await locateRecording(this.deps.gateway.recordings, entry.name);
    } catch {
      return false;
    }
    if (this.stopped) return true;
    if (where === 'stored') return false;
    if (where === 'missing') {
      await this.missing(entry);
      return true;
    }
    // Still being recorded: fetched too early (the timer after call.ended). Wait again.
    entry.status = 'recording';
    entry.finished = false;
    if (entry.callEnded) await this.stopLive(entry);
    return true;
  }

  /** One try: fetch, verify, keep in the storage; then `recording.ready` when the call ended. */
  private async fetchAndStore(entry: Entry): Promise<void> {
    const { gateway, storage } = this.deps;
    let file: Buffer;
    try {
      // No metadata request first: a file that is not the WAV asked for fails verifyWav below.
      file = await gateway.recordings.getStoredFile(entry.name);
    } catch (err) {
      throw new StageError('download', err);
    }
    let durationSec: number;
    try {
      durationSec = verifyWav(file, entry.durationSec).durationSec;
    } catch (err) {
      throw new StageError('verify', err);
    }
    try {
      await storage.put(entry.key, file);
    } catch (err) {
      throw new StageError('storage', err);
    }
    this.complete(entry, file.length, durationSec);
  }

  /**
   * The file is in the engine's storage. `durationSec` is the file's length in whole seconds,
   * rounded down as Asterisk rounds its RecordingFinished `duration` (`WavInfo.durationSec`):
   * it is used only when no RecordingFinished gave the length, so a recording reports the same
   * `durationSec` whether or not its event came.
   */
  private complete(entry: Entry, bytes: number, durationSec: number): void {
    if (entry.status === 'stored' || entry.status === 'failed') return;
    entry.status = 'stored';
    entry.finished = true;
    entry.bytes = bytes;
    entry.durationSec ??= durationSec;
    this.clearFinishTimers(entry);
    this.metrics.stored.inc();
    entry.log.info('recording stored', {
      bytes: entry.bytes,
      durationSec: entry.durationSec,
      key: entry.key,
      storage: this.deps.storage.description,
    });
    this.maybeReady(entry);
  }

  /**
   * Once the file is stored and `call.ended` went out: send `recording.ready` (unless an earlier
   * run did), then, once the journal committed it, {@link finalize}.
   */
  private maybeReady(entry: Entry): void {
    if (entry.status !== 'stored' || !entry.callEnded || entry.finalizing) return;
    if (!entry.readySent) {
      if (!entry.call) return;
      const link = this.deps.links.sign(entry.callId);
      this.deps.notifier.recordingReady(entry.call, {
        recordingUrl: link.url,
        expiresAt: new Date(link.expiresAtSec * 1000).toISOString(),
        bytes: entry.bytes ?? 0,
        durationSec: entry.durationSec ?? 0,
        format: RECORDING_FORMAT,
      });
      entry.readySent = true;
      entry.log.info('recording ready', { bytes: entry.bytes, durationSec: entry.durationSec });
    }
    entry.finalizing = true;
    entry.call = undefined;
    // Through the journal, `stored` is recorded in this turn: it commits with `recording.ready`.
    const stored = this.deps.journal?.recordRecording ? this.persist(entry, 'stored') : undefined;
    const journal = this.deps.journal;
    if (!journal) {
      void this.track(this.finalize(entry, stored));
      return;
    }
    // Tracked from now (within the try that stored the file): a shutdown waits for the commit too.
    let finalized!: () => void;
    void this.track(new Promise<void>((resolve) => (finalized = resolve)));
    journal.whenCommitted(
      entry.callId,
      () => void this.finalize(entry, stored).then(finalized, finalized),
    );
  }

  /** `work` counts as a download in progress until it settles ({@link finishDownloads}). */
  private track<T>(work: Promise<T>): Promise<T> {
    this.busy.add(work);
    const done = (): void => void this.busy.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * `recording.ready` is committed: write `stored` (unless `stored` is that write, recorded with
   * it through the journal), then delete Asterisk's copy.
   */
  private async finalize(entry: Entry, stored?: Promise<boolean>): Promise<void> {
    if (this.stopped) {
      entry.log.info(
        stored
          ? "engine stopping: the recording is stored; Asterisk's copy is deleted at the next start"
          : 'engine stopping: the recording is marked stored at the next start',
      );
      return;
    }
    const written = await (stored ?? this.persist(entry, 'stored'));
    if (!written) {
      entry.log.error('recording stored but the store does not say so; kept in Asterisk');
    } else if (this.deps.options.deleteFromAsterisk && !this.stopped) {
      try {
        await this.deps.gateway.recordings.deleteStored(entry.name);
      } catch (err) {
        this.metrics.cleanupFailures.inc();
        entry.log.warn('stored recording could not be deleted from Asterisk', { err });
      }
    }
    this.settle(entry);
  }

  private fail(
    entry: Entry,
    stage: RecordingFailureStage,
    err: unknown,
    fields: Record<string, unknown> = {},
  ): void {
    if (entry.status === 'failed' || entry.status === 'stored') return;
    entry.status = 'failed';
    this.metrics.failures.inc({ stage });
    entry.log.error('recording failed', { stage, ...fields, err });
    void this.persist(entry, 'failed');
    this.settle(entry);
  }

  /**
   * The recording is settled: let go of the call; forget the entry once its final status is in
   * the store (which answers from then on), or after `retainMs` when that is set. Nothing of a
   * settled recording stays in memory (`npm run bench`: no heap growth over 50 000 calls).
   */
  private settle(entry: Entry): void {
    entry.call = undefined;
    this.clearFinishTimers(entry);
    if (this.stopped) return;
    const retainMs = this.deps.options.retainMs;
    if (retainMs === undefined) {
      void entry.writes.then(() => this.forget(entry));
      return;
    }
    const timer = setTimeout(() => {
      this.evictions.delete(timer);
      this.forget(entry);
    }, retainMs);
    timer.unref();
    this.evictions.add(timer);
  }

  private forget(entry: Entry): void {
    if (this.byCall.get(entry.callId) === entry) this.byCall.delete(entry.callId);
    if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
  }

  // -------------------------------------------------------------------------------------------
  // Store
  // -------------------------------------------------------------------------------------------

  /**
   * Write `status` to the call's row, after the earlier writes. Through the journal (when it
   * takes recording statuses) the status is recorded at once, in call order, and the promise
   * resolves true once it is committed (the journal retries failed writes; after the engine
   * stopped with it unwritten, never). Otherwise `calls.setRecording` writes it: a missing row
   * (the call journal has not written the call yet) or a store error is retried a few times,
   * and the promise resolves true once written, false when it gave up. Never rejects.
   */
  private persist(entry: Entry, status: StoredRecordingStatus): Promise<boolean> {
    const journal = this.deps.journal;
    let write: Promise<boolean>;
    if (journal?.recordRecording) {
      journal.recordRecording(entry.callId, recordingFields(entry, status));
      write = entry.writes.then(
        () =>
          new Promise<boolean>((resolve) =>
            journal.whenCommitted(entry.callId, () => resolve(true)),
          ),
      );
    } else {
      write = entry.writes.then(() => this.writeStore(entry, status));
    }
    entry.writes = write.then(() => undefined);
    return write;
  }

  private async writeStore(entry: Entry, status: StoredRecordingStatus): Promise<boolean> {
    const delayMs = this.deps.options.storeRetryDelayMs ?? 200;
    for (let attempt = 1; attempt <= STORE_WRITE_TRIES; attempt++) {
      const fields = recordingFields(entry, status);
      let problem: unknown;
      try {
        if (await this.deps.calls.setRecording(entry.callId, fields)) return true;
        problem = 'the call is not in the store yet';
      } catch (err) {
        problem = err;
      }
      if (attempt === STORE_WRITE_TRIES || this.stopped) {
        entry.log.error('recording state could not be written to the store', {
          status,
          err: problem,
        });
        return false;
      }
      await this.sleep(
        computeBackoffDelay(attempt - 1, {
          initialDelayMs: delayMs,
          maxDelayMs: delayMs * 16,
          jitter: 0,
        }),
      );
    }
    return false;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      sleeper.timer.unref();
      this.sleepers.add(sleeper);
    });
  }
}

/** The recording columns of `entry` with `status` (size and length once `stored`). */
function recordingFields(entry: Entry, status: StoredRecordingStatus): RecordingFields {
  const fields: RecordingFields = { name: entry.name, path: entry.key, status };
  if (status === 'stored') {
    fields.bytes = entry.bytes;
    fields.durationSec = entry.durationSec;
  }
  return fields;
}

/** The whole file under `key` in the storage. */
async function readAll(storage: RecordingStorage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of storage.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
