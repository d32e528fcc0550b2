/**
 * One recorded call as the recordings service holds it in memory, while it is recorded,
 * downloaded and (for `retainMs`) after: the names, where it stands, its flags and timers. Every
 * part of the service works on these entries: the recorder side (recorder.ts), the download
 * (download.ts), the recovery (recovery.ts), over the runtime that keeps them (runtime.ts). The
 * names and statuses shared with the store and the metrics are here too. No I/O.
 */
import type { Call } from '../calls/model.ts';
import type { Logger } from '../logging/logger.ts';

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

/**
 * `POST /bridges/{id}/record` requests for one call's recording, the first included, when the
 * earlier ones got no answer and Asterisk turned out not to have the recording (the request never
 * reached it). Once they are used up, the recording failed (`stage="missing"`).
 */
export const START_TRIES = 3;

/** Where an entry stands (see {@link Entry.status}). */
export type EntryStatus = 'starting' | 'recording' | 'downloading' | 'stored' | 'failed';

/** One recorded call, while it is recorded, downloaded and (for `retainMs`) after. */
export interface Entry {
  callId: string;
  /** Asterisk's recording name. */
  name: string;
  /** Storage key. */
  key: string;
  /** The call's live model: held until `recording.ready` was sent or the recording failed. */
  call: Call | undefined;
  log: Logger;
  /**
   * `starting`: `POST /bridges/{id}/record` is not answered yet; `recording`: Asterisk records
   * it, or it finished and waits to be fetched (`finished`); `downloading`: a download loop runs;
   * `stored`: the file is in the engine's storage; `failed`: given up.
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
  /** A look-up in Asterisk (`RecordingRecovery.check`, recovery.ts) is in flight. */
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
  /** The fetch `finishTimeoutMs` after the call's end (`RecordingDownloads.armFinishTimer`). */
  finishTimer?: NodeJS.Timeout;
  /** The look-up in Asterisk `finishCheckMs` after the call's end (`BridgeRecorder.armFinishCheck`). */
  checkTimer?: NodeJS.Timeout;
  /**
   * The look-up in Asterisk tried again after one failed while ARI stayed connected
   * (`RecordingRecovery.check`, recovery.ts).
   */
  lookUpTimer?: NodeJS.Timeout;
  /**
   * Look-ups in Asterisk (or stops of the live recording of an ended call) that failed in a row:
   * the delay before the next one grows with it; back to 0 at each ARI (re)connect.
   */
  lookUpFailures?: number;
  /**
   * ARI (re)connected while a look-up was in flight (`checking`): the reconnect's own look-up was
   * not made, so the recording is looked up again as soon as that one ends.
   */
  recheck?: boolean;
  /**
   * `finishCheckMs` after the call's end came while `POST /bridges/{id}/record` was still
   * unanswered (status `starting`): the look-up is made as soon as the request is answered.
   */
  checkDue?: boolean;
  /** Store writes of this recording, one after another (store.ts). */
  writes: Promise<void>;
}

/**
 * Clear the timers that wait for RecordingFinished after the call's end, and a look-up in
 * Asterisk waiting to be tried again.
 */
export function clearFinishTimers(entry: Entry): void {
  if (entry.finishTimer) clearTimeout(entry.finishTimer);
  entry.finishTimer = undefined;
  if (entry.checkTimer) clearTimeout(entry.checkTimer);
  entry.checkTimer = undefined;
  clearLookUpRetry(entry);
}

/** Clear the look-up in Asterisk waiting to be tried again ({@link Entry.lookUpTimer}). */
export function clearLookUpRetry(entry: Entry): void {
  if (entry.lookUpTimer) clearTimeout(entry.lookUpTimer);
  entry.lookUpTimer = undefined;
}
