/**
 * The recordings service: every bridged call can be recorded; the file is taken from Asterisk
 * over ARI, stored by the engine and served to the CRM's audio player. It is the
 * call service's {@link CallRecorder}. The flow, and the module of this folder each step is in:
 *
 * 1. `bridgeCreated` (recorder.ts): when RECORD_CALLS (or the call's override) says so, the bridge
 *    is recorded (`POST /bridges/{id}/record`, format `wav`, name `rec-<callId>`, as in the
 *    inbound-answered trace). The store row gets `recording.status: recording`. No answer to the
 *    request (connection cut, timeout) leads to a look-up in Asterisk instead of a failure; when
 *    Asterisk has no such recording while the call still goes on, the request never reached it
 *    and is made again (at most `START_TRIES` requests in all, entry.ts; recovery.ts).
 * 2. `call.ended` carries the signed link ({@link RecordingService.recordingUrl}, recorder.ts).
 * 3. RecordingFinished (Asterisk sends it when the bridge empties or is destroyed) → download
 *    (download.ts): `GET /recordings/stored/{name}/file`, check the WAV against itself and the
 *    event's `duration` (`verifyWav`, wav.ts), keep it in the `RecordingStorage` (storage.ts). A
 *    failed try is retried with doubling delays; when every try failed the recording is `failed`
 *    in the store and counted (`aricrm_recording_failures_total{stage}`, metrics.ts). A recording
 *    Asterisk does not have (404, neither live nor stored) fails at once (`stage="missing"`). No
 *    RecordingFinished `finishCheckMs` after `call.ended`: the recording is looked up in Asterisk
 *    (stored → fetched, live → stopped; the record request still unanswered then → looked up at
 *    its answer); none `finishTimeoutMs` after it: the file is fetched anyway. Without the event,
 *    `durationSec` comes from the file, rounded down to whole seconds as Asterisk counts it.
 * 4. `recording.ready` goes out through the call notifier once the file is stored AND `call.ended`
 *    was emitted, on the call's own `Call` object (handed over by the call service, held here
 *    until the recording is settled) so the call's event sequence continues without a gap
 *    (download.ts).
 * 5. The store row gets `stored` with path, bytes and seconds in the call journal's transaction
 *    that commits `recording.ready` (the statuses go through the journal: no store round trip of
 *    their own; store.ts), and only once that is committed is the file deleted from Asterisk
 *    (`DELETE /recordings/stored/{name}`, configurable; download.ts). So whatever point the
 *    engine stops at, the store says `recording` until the CRM's event is safe, and Asterisk
 *    keeps its copy until the store says `stored`.
 *
 * Recovery ({@link RecordingService.resume}, {@link RecordingService.connected}; recovery.ts): at
 * start-up the recordings the store still shows as `recording` are taken up again (the call
 * adopted, or ended with its download pending); on every ARI (re)connect each recording not yet
 * finished is looked up in Asterisk (`GET /recordings/live/{name}`, then
 * `/recordings/stored/{name}`, asterisk.ts): still live → wait for RecordingFinished (a live
 * recording of an ended call is stopped); stored → download (its RecordingFinished was lost);
 * gone → failed, unless this run's request to start it got no answer and the call still goes on:
 * then the request never reached Asterisk and is made again. A look-up that fails while ARI stays
 * connected, or a stop Asterisk does not carry out, is made again after a growing delay (1 s,
 * doubled, at most 15 s apart; from 1 s again after each reconnect) until the recording is
 * settled, and at the reconnect when ARI dropped. ARI unreachable during a download
 * does not use up tries: the download waits for the reconnect. At the first connect of a run,
 * the copies left in Asterisk of recordings the store already says are `stored` are deleted
 * ({@link RecordingService.sweepStored}).
 *
 * The parts share the recordings held in memory (entry.ts: one `Entry` per recorded call) through
 * the runtime (runtime.ts: failing, settling and forgetting a recording); this class wires them
 * and is the one the composition root uses (index.ts). ARI events come in through stasis.ts.
 *
 * Nothing here throws into the call flows. Reference: docs/recordings.md.
 */
import type { Registry } from 'prom-client';
import type { AriEvent, AriGateway } from '../ari/types.ts';
import type { CallJournal } from '../calls/journal.ts';
import type { Call } from '../calls/model.ts';
import type { CallNotifier } from '../calls/notifier.ts';
import type { CallRecorder } from '../calls/service.ts';
import type { Logger } from '../logging/logger.ts';
import type { CallRepository, UnsettledRecordingRecord } from '../store/calls.ts';
import type { RecordMode } from './config.ts';
import { RecordingDownloads } from './download.ts';
import type { RecordingLinks } from './links.ts';
import { BridgeRecorder } from './recorder.ts';
import { RecordingRecovery } from './recovery.ts';
import { RecordingRuntime } from './runtime.ts';
import type { RecordingStorage } from './storage.ts';

export {
  RECORDING_FORMAT,
  START_TRIES,
  type RecordingFailureStage,
  type StoredRecordingStatus,
} from './entry.ts';

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

/** See the module comment. */
export class RecordingService implements CallRecorder {
  private readonly rt: RecordingRuntime;
  private readonly downloads: RecordingDownloads;
  private readonly recovery: RecordingRecovery;
  private readonly recorder: BridgeRecorder;

  constructor(deps: RecordingServiceDeps) {
    this.rt = new RecordingRuntime(deps);
    this.downloads = new RecordingDownloads(this.rt);
    this.recovery = new RecordingRecovery(this.rt, this.downloads);
    this.downloads.onStopFailed = (entry, err) => this.recovery.stopFailed(entry, err);
    this.recorder = new BridgeRecorder(this.rt, this.downloads, this.recovery);
  }

  // -------------------------------------------------------------------------------------------
  // CallRecorder (called by the call service): recorder.ts
  // -------------------------------------------------------------------------------------------

  /** Start recording the call's bridge when configured (see {@link CallRecorder.bridgeCreated}). */
  bridgeCreated(call: Call, bridgeId: string, record: boolean | undefined): Promise<void> {
    return this.recorder.bridgeCreated(call, bridgeId, record);
  }

  /** The signed link of a recorded call's recording, for `call.ended`; else undefined. */
  recordingUrl(callId: string): string | undefined {
    return this.recorder.recordingUrl(callId);
  }

  /** `call.ended` was emitted: `recording.ready` may follow (see {@link CallRecorder.callEnded}). */
  callEnded(call: Call): void {
    this.recorder.callEnded(call);
  }

  // -------------------------------------------------------------------------------------------
  // Recovery: engine restart, ARI reconnect (recovery.ts)
  // -------------------------------------------------------------------------------------------

  /**
   * Engine start-up, before the gateway connects: take up the recordings an earlier run left
   * unsettled (`store.calls.unsettledRecordings()`); returns how many were taken up. See
   * {@link RecordingRecovery.resume}.
   */
  resume(records: readonly UnsettledRecordingRecord[]): number {
    return this.recovery.resume(records);
  }

  /**
   * ARI is connected (the first time, or again after the WebSocket dropped): look up in Asterisk
   * every recording not yet fetched (its RecordingFinished may have been lost meanwhile) and act
   * on what is found; at the first connect, {@link sweepStored}. Never throws. See
   * {@link RecordingRecovery.connected}.
   */
  connected(): void {
    this.recovery.connected();
  }

  /**
   * Delete from Asterisk the copies of recordings an earlier run stored but could not delete
   * (`rec-<callId>` whose call the store says is `stored`). Once per run, at the first connect,
   * with `deleteFromAsterisk`. Resolves with how many were deleted; never throws. See
   * {@link RecordingRecovery.sweepStored}.
   */
  sweepStored(): Promise<number> {
    return this.recovery.sweepStored();
  }

  // -------------------------------------------------------------------------------------------
  // ARI events (stasis.ts)
  // -------------------------------------------------------------------------------------------

  /**
   * RecordingStarted / RecordingFinished / RecordingFailed of the Stasis app, for the recordings
   * this service holds (by name): RecordingFinished starts the download, RecordingFailed (or a
   * RecordingFinished that says failed or canceled) fails the recording (download.ts). Never throws.
   */
  handleEvent(event: AriEvent): void {
    if (
      event.type !== 'RecordingFinished' &&
      event.type !== 'RecordingFailed' &&
      event.type !== 'RecordingStarted'
    )
      return;
    const entry = this.rt.byName.get(event.recording.name);
    if (!entry) return;
    if (event.type === 'RecordingStarted') {
      entry.log.debug('recording started in Asterisk', { targetUri: event.recording.target_uri });
      return;
    }
    this.downloads.recordingEnded(entry, event);
  }

  // -------------------------------------------------------------------------------------------
  // Serving (routes.ts) and call details
  // -------------------------------------------------------------------------------------------

  /**
   * Link for `recording.url` of a stored call that has recording fields (the call details of
   * `src/calls/call-query-routes.ts`): undefined when the recording is known to have failed;
   * otherwise a fresh signed link (it answers 409 until the file is stored).
   */
  storedRecordingUrl(callId: string): string | undefined {
    const entry = this.rt.byCall.get(callId);
    if (entry?.status === 'failed') return undefined;
    return this.rt.deps.links.sign(callId).url;
  }

  /**
   * Where the recording of `callId` stands: from memory while it is recent, else from the store.
   *
   * @throws the store's error when it cannot be read
   */
  async lookup(callId: string): Promise<RecordingLookup> {
    const entry = this.rt.byCall.get(callId);
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
    const record = await this.rt.deps.calls.getCall(callId);
    if (!record)
      return this.rt.deps.callKnown?.(callId)
        ? { state: 'not_recorded' }
        : { state: 'unknown_call' };
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
    for (const entry of this.rt.byCall.values())
      if (entry.status !== 'stored' && entry.status !== 'failed') n++;
    return n;
  }

  /**
   * Engine shutdown, before {@link stop}: wait until the downloads in progress are done, those
   * that start meanwhile included. Resolves true when none is left in progress, false when
   * `timeoutMs` (ms) passed first. Never rejects. See {@link RecordingDownloads.finishDownloads}.
   */
  finishDownloads(timeoutMs: number): Promise<boolean> {
    return this.downloads.finishDownloads(timeoutMs);
  }

  /**
   * Stop: pending retries are abandoned (the recordings stay in Asterisk; nothing is deleted),
   * no more recordings start, and a `stored` not yet written is left to the next start (which
   * finds the recording unsettled and takes it up). Idempotent.
   */
  stop(): void {
    this.rt.stop();
  }
}
