/**
 * The recordings service (BRIEF F5 "every bridged call can be recorded; the file is taken from
 * Asterisk over ARI, stored by the engine and served to the CRM's audio player"). It is the
 * call service's {@link CallRecorder}:
 *
 * 1. `bridgeCreated`: when RECORD_CALLS (or the call's override) says so, the bridge is recorded
 *    (`POST /bridges/{id}/record`, format `wav`, name `rec-<callId>`, as in the inbound-answered
 *    trace). The store row gets `recording.status: recording`.
 * 2. `call.ended` carries the signed link ({@link RecordingService.recordingUrl}).
 * 3. RecordingFinished (Asterisk sends it when the bridge empties or is destroyed) → download:
 *    `GET /recordings/stored/{name}` and `…/file`, check the WAV against itself and the event's
 *    `duration` ({@link verifyWav}), keep it in the {@link RecordingStorage}. A failed try is
 *    retried with doubling delays; when every try failed the recording is `failed` in the store
 *    and counted (`aricrm_recording_failures_total{stage}`). A recording Asterisk does not have
 *    (404, neither live nor stored) fails at once (`stage="missing"`).
 * 4. `recording.ready` goes out through the call notifier once the file is stored AND `call.ended`
 *    was emitted, on the call's own `Call` object (handed over by the call service, held here
 *    until the recording is settled) so the call's event sequence continues without a gap.
 * 5. Once the call journal has committed `recording.ready`, the store row gets `stored` with path,
 *    bytes and seconds, and only then is the file deleted from Asterisk
 *    (`DELETE /recordings/stored/{name}`, configurable). So whatever point the engine stops at,
 *    the store says `recording` until the CRM's event is safe, and Asterisk keeps its copy until
 *    the store says `stored`.
 *
 * Recovery ({@link RecordingService.resume}, {@link RecordingService.connected}): at start-up the
 * recordings the store still shows as `recording` are taken up again (the call adopted, or ended
 * with its download pending); on every ARI (re)connect each recording not yet finished is looked
 * up in Asterisk (`GET /recordings/live/{name}`, then `/recordings/stored/{name}`): still live →
 * wait for RecordingFinished (a live recording of an ended call is stopped); stored → download
 * (its RecordingFinished was lost); gone → failed. ARI unreachable during a download does not use
 * up tries: the download waits for the reconnect.
 *
 * Nothing here throws into the call flows. Reference: docs/recordings.md.
 */
import type { Counter, Registry } from 'prom-client';
import { AriNotFoundError } from '../ari/errors.ts';
import type { AriEvent, AriGateway, AriLiveRecording } from '../ari/types.ts';
import type { Call } from '../calls/model.ts';
import type { CallNotifier } from '../calls/notifier.ts';
import type { CallRecorder } from '../calls/service.ts';
import type { Logger } from '../logging/logger.ts';
import { counter } from '../metrics/registry.ts';
import type { CallRepository, RecordingFields } from '../store/calls.ts';
import { shouldRecord, type RecordMode } from './config.ts';
import type { RecordingLinks } from './links.ts';
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
  /** `GET /recordings/stored/{name}` or its `/file` failed. */
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
   * After `call.ended`, how long to wait for RecordingFinished before fetching the file anyway
   * (the event can be lost while the ARI WebSocket reconnects: fixtures fact 13), ms. Default
   * 30 000.
   */
  finishTimeoutMs?: number;
  /** How long a settled recording stays in memory (the store answers afterwards), ms. Default 1 h. */
  retainMs?: number;
  /** Delay before a store write is tried again (the call row not written yet, or an error), ms. Default 200. */
  storeRetryDelayMs?: number;
}

/** What the service needs. */
export interface RecordingServiceDeps {
  gateway: Pick<AriGateway, 'bridges' | 'recordings'>;
  notifier: Pick<CallNotifier, 'recordingReady'>;
  /** The store's call repository: recording fields are written and read there. */
  calls: Pick<CallRepository, 'setRecording' | 'getCall'>;
  /** True when the call service knows the call (live or recently ended, maybe not stored yet). */
  callKnown?: (callId: string) => boolean;
  storage: RecordingStorage;
  links: RecordingLinks;
  logger: Logger;
  registry: Registry;
  options: RecordingServiceOptions;
}

type EntryStatus = 'starting' | 'recording' | 'downloading' | 'stored' | 'failed';

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
  status: EntryStatus;
  callEnded: boolean;
  finished: boolean;
  /** From RecordingFinished, then from the file. */
  durationSec?: number;
  bytes?: number;
  readySent: boolean;
  finishTimer?: NodeJS.Timeout;
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
  private stopped = false;
  private readonly metrics: {
    started: Counter;
    stored: Counter;
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
      failures: counter(registry, {
        name: 'aricrm_recording_failures_total',
        help: 'Recordings that ended failed, by stage (start, asterisk, download, verify, storage).',
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
      const entry: Entry = {
        callId: call.id,
        name,
        key: recordingKey(call.id, call.startedAt, RECORDING_FORMAT),
        call,
        log: this.deps.logger.child({ callId: call.id, recordingName: name }),
        status: 'starting',
        callEnded: false,
        finished: false,
        readySent: false,
        writes: Promise.resolve(),
      };
      this.byCall.set(call.id, entry);
      this.byName.set(name, entry);
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
        this.fail(entry, 'start', err);
        return;
      }
      if (entry.status === 'starting') entry.status = 'recording';
      this.metrics.started.inc();
      entry.log.info('recording the call', { bridgeId, format: RECORDING_FORMAT });
      this.persist(entry);
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
    this.maybeReady(entry);
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
    if (entry.finishTimer) clearTimeout(entry.finishTimer);
    entry.finishTimer = undefined;
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
   * Stop: pending retries are abandoned (the recordings stay in Asterisk; nothing is deleted) and
   * no more recordings start. Idempotent.
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
      if (entry.finishTimer) clearTimeout(entry.finishTimer);
      entry.finishTimer = undefined;
      if (entry.status !== 'stored' && entry.status !== 'failed')
        entry.log.warn('engine stopping: recording left in Asterisk', { status: entry.status });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Download
  // -------------------------------------------------------------------------------------------

  private download(entry: Entry): void {
    if (entry.status !== 'starting' && entry.status !== 'recording') return;
    entry.status = 'downloading';
    void this.downloadLoop(entry);
  }

  private async downloadLoop(entry: Entry): Promise<void> {
    const { attempts, initialDelayMs, maxDelayMs } = this.deps.options.download;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.fetchAndStore(entry);
        return;
      } catch (err) {
        const stage = err instanceof StageError ? err.stage : 'download';
        const cause = err instanceof StageError ? err.reason : err;
        if (this.stopped) return;
        if (attempt >= attempts) {
          this.fail(entry, stage, cause, { attempts: attempt });
          return;
        }
        const delayMs = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
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

  /** One try: fetch, verify, store, then clean up Asterisk and maybe send `recording.ready`. */
  private async fetchAndStore(entry: Entry): Promise<void> {
    const { gateway, storage } = this.deps;
    let file: Buffer;
    try {
      const stored = await gateway.recordings.getStored(entry.name);
      if (stored.format !== RECORDING_FORMAT)
        throw new Error(`Asterisk stored the recording as ${stored.format}, not wav`);
      file = await gateway.recordings.getStoredFile(entry.name);
    } catch (err) {
      throw new StageError('download', err);
    }
    let durationMs: number;
    try {
      durationMs = verifyWav(file, entry.durationSec).durationMs;
    } catch (err) {
      throw new StageError('verify', err);
    }
    try {
      await storage.put(entry.key, file);
    } catch (err) {
      throw new StageError('storage', err);
    }
    entry.status = 'stored';
    entry.bytes = file.length;
    entry.durationSec ??= Math.floor(durationMs / 1000);
    this.metrics.stored.inc();
    entry.log.info('recording stored', {
      bytes: entry.bytes,
      durationSec: entry.durationSec,
      key: entry.key,
      storage: storage.description,
    });
    this.persist(entry);
    if (this.deps.options.deleteFromAsterisk) {
      try {
        await gateway.recordings.deleteStored(entry.name);
      } catch (err) {
        this.metrics.cleanupFailures.inc();
        entry.log.warn('stored recording could not be deleted from Asterisk', { err });
      }
    }
    this.maybeReady(entry);
  }

  /** Send `recording.ready` once the file is stored and `call.ended` went out. */
  private maybeReady(entry: Entry): void {
    if (entry.status !== 'stored' || entry.readySent || !entry.callEnded || !entry.call) return;
    entry.readySent = true;
    const link = this.deps.links.sign(entry.callId);
    this.deps.notifier.recordingReady(entry.call, {
      recordingUrl: link.url,
      expiresAt: new Date(link.expiresAtSec * 1000).toISOString(),
      bytes: entry.bytes ?? 0,
      durationSec: entry.durationSec ?? 0,
      format: RECORDING_FORMAT,
    });
    entry.log.info('recording ready', { bytes: entry.bytes, durationSec: entry.durationSec });
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
    this.persist(entry);
    this.settle(entry);
  }

  /** The recording is settled: let go of the call, keep the entry in memory for a while. */
  private settle(entry: Entry): void {
    entry.call = undefined;
    if (entry.finishTimer) clearTimeout(entry.finishTimer);
    entry.finishTimer = undefined;
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.evictions.delete(timer);
      this.forget(entry);
    }, this.deps.options.retainMs ?? 3_600_000);
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
   * Write the recording's current state to the call's row, after the earlier writes. A missing
   * row (the call journal has not written the call yet) or a store error is retried a few times.
   */
  private persist(entry: Entry): void {
    entry.writes = entry.writes.then(() => this.writeStore(entry));
  }

  private async writeStore(entry: Entry): Promise<void> {
    const delayMs = this.deps.options.storeRetryDelayMs ?? 200;
    for (let attempt = 1; attempt <= STORE_WRITE_TRIES; attempt++) {
      const fields: RecordingFields = {
        name: entry.name,
        path: entry.key,
        status: storedStatus(entry.status),
      };
      if (entry.status === 'stored') {
        fields.bytes = entry.bytes;
        fields.durationSec = entry.durationSec;
      }
      let problem: unknown;
      try {
        if (await this.deps.calls.setRecording(entry.callId, fields)) return;
        problem = 'the call is not in the store yet';
      } catch (err) {
        problem = err;
      }
      if (attempt === STORE_WRITE_TRIES || this.stopped) {
        entry.log.error('recording state could not be written to the store', {
          status: fields.status,
          err: problem,
        });
        return;
      }
      await this.sleep(delayMs * 2 ** (attempt - 1));
    }
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

function storedStatus(status: EntryStatus): StoredRecordingStatus {
  if (status === 'stored' || status === 'failed') return status;
  return 'recording';
}
