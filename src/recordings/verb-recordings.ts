/**
 * Call script recordings (the `record` verb): once Asterisk finished a recording of the caller
 * (`vrec-<uuid>`, RecordingFinished), the engine takes the file over ARI
 * (`GET /recordings/stored/{name}/file`), checks it like a call recording ({@link verifyWav}
 * against itself and Asterisk's duration), keeps it in the {@link RecordingStorage} under
 * `verbs/<callId>/<name>.wav` ({@link verbRecordingKey}), deletes Asterisk's copy
 * (`DELETE /recordings/stored/{name}`, when RECORDING_DELETE_FROM_ASTERISK) and signs a link to
 * `GET /v1/calls/{id}/recordings/{name}`. A failed try is retried with doubling delays (the
 * call recording's download settings); a recording Asterisk does not have (404) fails at once.
 *
 * The stored file is the record: it is served after the call ended and after a restart without
 * a row of its own in the store. Until it is stored, the download is kept in the store
 * (`verb_recording_downloads`, {@link VerbRecordingDownloads}) from before the first try: a
 * download cut by an engine stop (or a crash, or every try failing) is taken up again by the
 * next start once ARI is connected ({@link VerbRecordings.resumePending}), so the recording
 * does not stay in Asterisk. Reference: docs/recordings.md "Call script recordings".
 */
import type { Counter, Registry } from 'prom-client';
import { computeBackoffDelay } from '../ari/backoff.ts';
import { AriNotFoundError } from '../ari/errors.ts';
import type { AriGateway } from '../ari/types.ts';
import type { Kysely } from 'kysely';
import type { Logger } from '../logging/logger.ts';
import type { Database } from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import { counter } from '../metrics/registry.ts';
import type { RecordingLinks } from './links.ts';
import type { RecordingStorage, StoredObject } from './storage.ts';
import { verifyWav } from './wav.ts';

/** Names the `record` verb gives its recordings (`vrec-<uuid>`). */
export const VERB_RECORDING_NAME =
  /^vrec-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The storage key of call script recording `name` of call `callId`:
 * `verbs/<callId>/<name>.wav`.
 *
 * @throws RangeError when `callId` or `name` holds anything but letters, digits, `_` and `-`
 */
export function verbRecordingKey(callId: string, name: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(callId)) throw new RangeError('invalid call id for a key');
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(name)) throw new RangeError('invalid recording name');
  return `verbs/${callId}/${name}.wav`;
}

/** A call script recording kept by the engine (what the verb's result reports). */
export interface KeptVerbRecording {
  /** Asterisk's recording name (`vrec-<uuid>`). */
  name: string;
  /** Signed link to `GET /v1/calls/{id}/recordings/{name}` (API key not needed). */
  url: string;
  /** When `url` stops working, ISO 8601 UTC. */
  expiresAt: string;
  /** File size, bytes. */
  bytes: number;
  /** Length, seconds: Asterisk's RecordingFinished duration, else measured from the file. */
  durationSec: number;
}

/** A stored call script recording as call details list it (`scriptRecordings`). */
export interface StoredVerbRecording {
  /** Asterisk's recording name (`vrec-<uuid>`). */
  name: string;
  /** File size, bytes. */
  bytes: number;
  /** Fresh signed link to `GET /v1/calls/{id}/recordings/{name}`. */
  url: string;
  /** When `url` stops working, ISO 8601 UTC. */
  expiresAt: string;
}

/** Where keeping a call script recording failed (label of `aricrm_verb_recording_failures_total`). */
export type VerbRecordingFailureStage = 'missing' | 'download' | 'verify' | 'storage' | 'stopped';

/** {@link VerbRecordings.keep} could not keep the recording. */
export class VerbRecordingError extends Error {
  constructor(
    readonly stage: VerbRecordingFailureStage,
    message: string,
  ) {
    super(message);
    this.name = 'VerbRecordingError';
  }
}

/** A call script recording Asterisk finished and the engine has not stored yet. */
export interface PendingVerbRecording {
  callId: string;
  name: string;
  /** Asterisk's RecordingFinished duration, seconds. */
  durationSec?: number;
}

/**
 * The downloads still to do, in the store (`verb_recording_downloads`, one row per recording
 * name): added before the first try, removed once the file is stored (or Asterisk has none).
 */
export class VerbRecordingDownloads {
  constructor(private readonly db: Kysely<Database>) {}

  /** Note that `pending` is to be fetched (idempotent). */
  async add(pending: PendingVerbRecording, now = Date.now()): Promise<void> {
    await this.db
      .insertInto('verb_recording_downloads')
      .values({
        name: pending.name,
        call_id: pending.callId,
        duration_sec: pending.durationSec ?? null,
        created_at: toIsoTime(now),
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }

  /** The download of `name` is over (stored, or nothing to fetch). */
  async remove(name: string): Promise<void> {
    await this.db.deleteFrom('verb_recording_downloads').where('name', '=', name).execute();
  }

  /** Every download still to do, oldest first. */
  async list(): Promise<PendingVerbRecording[]> {
    const rows = await this.db
      .selectFrom('verb_recording_downloads')
      .selectAll()
      .orderBy('created_at')
      .orderBy('name')
      .execute();
    return rows.map((row) => ({
      callId: row.call_id,
      name: row.name,
      ...(row.duration_sec === null ? {} : { durationSec: Number(row.duration_sec) }),
    }));
  }
}

/** What {@link VerbRecordings} needs. */
export interface VerbRecordingsDeps {
  gateway: Pick<AriGateway, 'recordings'>;
  storage: RecordingStorage;
  links: Pick<RecordingLinks, 'sign'>;
  logger: Logger;
  registry: Registry;
  /** Where downloads still to do are kept across restarts; absent: not kept. */
  pending?: VerbRecordingDownloads;
  options: {
    /** Delete the recording from Asterisk once stored (RECORDING_DELETE_FROM_ASTERISK). */
    deleteFromAsterisk: boolean;
    /** Download tries in all, and the delay before the 2nd (doubled each time, capped), ms. */
    download: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  };
}

/** See the module comment. */
export class VerbRecordings {
  private readonly stopping = new AbortController();
  /** Recordings being fetched now (never fetched twice at once). */
  private readonly inFlight = new Set<string>();
  private resuming = false;
  private readonly metrics: { stored: Counter; failures: Counter<'stage'>; resumed: Counter };

  constructor(private readonly deps: VerbRecordingsDeps) {
    this.metrics = {
      stored: counter(deps.registry, {
        name: 'aricrm_verb_recordings_stored_total',
        help: 'Call script recordings (record verb) downloaded from Asterisk, verified and stored.',
      }),
      failures: counter(deps.registry, {
        name: 'aricrm_verb_recording_failures_total',
        help: 'Call script recordings that could not be stored, by stage (missing, download, verify, storage, stopped).',
        labelNames: ['stage'] as const,
      }),
      resumed: counter(deps.registry, {
        name: 'aricrm_verb_recordings_resumed_total',
        help: 'Call script recordings an earlier run did not store, fetched and stored at start-up.',
      }),
    };
  }

  /**
   * Take the finished recording `name` of call `callId` from Asterisk, verify it (`durationSec`:
   * the length Asterisk reported, checked against the file), store it, delete Asterisk's copy
   * when configured, and sign a link to it.
   *
   * @throws VerbRecordingError when every try failed (or Asterisk has no such recording, or the
   *   engine is stopping); the recording then stays in Asterisk
   */
  async keep(callId: string, name: string, durationSec?: number): Promise<KeptVerbRecording> {
    const log = this.deps.logger.child({ callId, recordingName: name });
    const key = verbRecordingKey(callId, name);
    const { pending } = this.deps;
    try {
      await pending?.add({ callId, name, ...(durationSec === undefined ? {} : { durationSec }) });
    } catch (err) {
      log.warn('could not note the call script recording download in the store', { err });
    }
    this.inFlight.add(name);
    try {
      const kept = await this.download(callId, name, key, durationSec, log);
      await this.forget(name, log);
      return kept;
    } catch (err) {
      // Nothing to fetch: forgotten. Any other failure (the engine stopping included) stays
      // noted and is tried again at the next start or ARI reconnect.
      if (err instanceof VerbRecordingError && err.stage === 'missing')
        await this.forget(name, log);
      throw err;
    } finally {
      this.inFlight.delete(name);
    }
  }

  /**
   * Engine start-up (and every ARI reconnect), once ARI is connected: complete the downloads an
   * earlier run (or an earlier try of this one) noted and did not finish (stopped, killed, or
   * every try failed); those being fetched right now are left to their own tries. Resolves with how many were stored;
   * never rejects. Each runs as {@link keep} (the same tries, verification, deletion from
   * Asterisk); one Asterisk no longer has is forgotten.
   */
  async resumePending(): Promise<number> {
    const { pending, logger } = this.deps;
    if (!pending || this.resuming) return 0;
    this.resuming = true;
    try {
      return await this.resumeRows(pending, logger);
    } finally {
      this.resuming = false;
    }
  }

  private async resumeRows(pending: VerbRecordingDownloads, logger: Logger): Promise<number> {
    let rows: PendingVerbRecording[];
    try {
      rows = (await pending.list()).filter((row) => !this.inFlight.has(row.name));
    } catch (err) {
      logger.error('could not list the call script recordings still to fetch', { err });
      return 0;
    }
    if (rows.length === 0) return 0;
    logger.info('fetching call script recordings an earlier run did not store', {
      recordings: rows.length,
    });
    let stored = 0;
    for (const row of rows) {
      if (this.stopping.signal.aborted) break;
      try {
        await this.keep(row.callId, row.name, row.durationSec);
        this.metrics.resumed.inc();
        stored++;
      } catch (err) {
        logger.warn('a call script recording an earlier run left could not be stored', {
          callId: row.callId,
          recordingName: row.name,
          err,
        });
      }
    }
    return stored;
  }

  private async forget(name: string, log: Logger): Promise<void> {
    try {
      await this.deps.pending?.remove(name);
    } catch (err) {
      log.warn('could not clear the call script recording download in the store', { err });
    }
  }

  private async download(
    callId: string,
    name: string,
    key: string,
    durationSec: number | undefined,
    log: Logger,
  ): Promise<KeptVerbRecording> {
    const { gateway, storage, options } = this.deps;
    const { attempts, initialDelayMs, maxDelayMs } = options.download;
    let stored: { file: StoredObject; durationMs: number } | undefined;
    for (let attempt = 1; !stored; attempt++) {
      if (this.stopping.signal.aborted) throw this.failure('stopped', 'the engine is stopping');
      let stage: VerbRecordingFailureStage = 'download';
      try {
        const data = await gateway.recordings.getStoredFile(name);
        stage = 'verify';
        const durationMs = verifyWav(data, durationSec).durationMs;
        stage = 'storage';
        stored = { file: await storage.put(key, data), durationMs };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof AriNotFoundError)
          throw this.failure('missing', `Asterisk has no recording ${name}`);
        if (attempt >= attempts) {
          log.error('call script recording could not be stored', { stage, attempts, err });
          throw this.failure(stage, message);
        }
        const delayMs = computeBackoffDelay(attempt - 1, { initialDelayMs, maxDelayMs, jitter: 0 });
        log.warn('call script recording download failed; retrying', {
          stage,
          attempt,
          retryInMs: delayMs,
          err,
        });
        await this.sleep(delayMs);
      }
    }
    this.metrics.stored.inc();
    if (options.deleteFromAsterisk) {
      try {
        await gateway.recordings.deleteStored(name);
      } catch (err) {
        log.warn('stored call script recording could not be deleted from Asterisk', { err });
      }
    }
    const link = this.deps.links.sign(callId, name);
    const kept: KeptVerbRecording = {
      name,
      url: link.url,
      expiresAt: new Date(link.expiresAtSec * 1000).toISOString(),
      bytes: stored.file.bytes,
      durationSec: durationSec ?? Math.floor(stored.durationMs / 1000),
    };
    log.info('call script recording stored', {
      bytes: kept.bytes,
      durationSec: kept.durationSec,
      key,
    });
    return kept;
  }

  /**
   * The stored file of recording `name` of call `callId`, or undefined when there is none (an
   * unknown call or name, or a recording not stored yet).
   *
   * @throws the storage's error when it cannot be read
   */
  async lookup(callId: string, name: string): Promise<StoredObject | undefined> {
    if (!VERB_RECORDING_NAME.test(name)) return undefined;
    return this.deps.storage.stat(verbRecordingKey(callId, name));
  }

  /**
   * The call script recordings stored for call `callId`, oldest first, each with a fresh signed
   * link ([] when none, or when the storage cannot list).
   *
   * @throws the storage's error when it cannot be read
   */
  async list(callId: string): Promise<StoredVerbRecording[]> {
    const { storage, links } = this.deps;
    if (!storage.list || !/^[A-Za-z0-9_-]{1,128}$/.test(callId)) return [];
    const files = await storage.list(`verbs/${callId}`);
    return files
      .map((file) => ({
        file,
        name: file.key.slice(file.key.lastIndexOf('/') + 1, -'.wav'.length),
      }))
      .filter(({ file, name }) => file.key.endsWith('.wav') && VERB_RECORDING_NAME.test(name))
      .sort((a, b) => a.file.modifiedAt.getTime() - b.file.modifiedAt.getTime())
      .map(({ file, name }) => {
        const link = links.sign(callId, name);
        return {
          name,
          bytes: file.bytes,
          url: link.url,
          expiresAt: new Date(link.expiresAtSec * 1000).toISOString(),
        };
      });
  }

  /** Stop: downloads waiting for a retry give up (their recordings stay in Asterisk). */
  stop(): void {
    this.stopping.abort();
  }

  private failure(stage: VerbRecordingFailureStage, message: string): VerbRecordingError {
    this.metrics.failures.inc({ stage });
    return new VerbRecordingError(stage, message);
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
