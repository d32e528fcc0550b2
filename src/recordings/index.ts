/**
 * The recordings domain: record bridged calls, take the files from Asterisk over ARI,
 * keep them in the engine's storage and serve them with HTTP Range behind an API key or a signed
 * expiring link. Reference: docs/recordings.md.
 *
 * `main.ts` wires it with {@link createRecordings}; the parts are exported for tests and for
 * other storages.
 */
import { randomBytes } from 'node:crypto';
import type { RequestHandler, Router } from 'express';
import type { Registry } from 'prom-client';
import type { AriGateway } from '../ari/types.ts';
import type { CallJournal } from '../calls/journal.ts';
import type { CallNotifier } from '../calls/notifier.ts';
import type { CallService } from '../calls/service.ts';
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import type { CallRepository } from '../store/calls.ts';
import { recordingSettings, recordingsConfigCheck } from './config.ts';
import { RecordingLinks } from './links.ts';
import { allowSignedRecordingLinks, createRecordingRoutes } from './routes.ts';
import { RecordingService } from './service.ts';
import { registerRecordingStasisHandlers } from './stasis.ts';
import { LocalRecordingStorage, type RecordingStorage } from './storage.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import {
  VerbRecordingDownloads,
  VerbRecordings,
  type StoredVerbRecording,
} from './verb-recordings.ts';

export {
  recordingSettings,
  recordingsConfigCheck,
  shouldRecord,
  type RecordMode,
} from './config.ts';
export { RecordingLinks, type LinkVerdict, type SignedLink } from './links.ts';
export { contentRange, parseRange, type RangeDecision } from './range.ts';
export { allowSignedRecordingLinks, createRecordingRoutes } from './routes.ts';
export {
  RECORDING_FORMAT,
  RecordingService,
  type RecordingFailureStage,
  type RecordingLookup,
  type RecordingServiceDeps,
  type RecordingServiceOptions,
} from './service.ts';
export { endedCallFromRecord } from './recovery.ts';
export { registerRecordingStasisHandlers } from './stasis.ts';
export {
  LocalRecordingStorage,
  recordingKey,
  type RecordingStorage,
  type StoredObject,
} from './storage.ts';
export { RecordingVerifyError, verifyWav, type WavInfo } from './wav.ts';
export {
  VERB_RECORDING_NAME,
  VerbRecordingDownloads,
  VerbRecordingError,
  VerbRecordings,
  verbRecordingKey,
  type PendingVerbRecording,
  type KeptVerbRecording,
  type StoredVerbRecording,
  type VerbRecordingFailureStage,
  type VerbRecordingsDeps,
} from './verb-recordings.ts';

/** What the HTTP API mounts (see `src/http/api.ts`). */
export interface RecordingHttp {
  /** `GET /calls/{id}/recording` and `GET /calls/{id}/recordings/{name}`, for the `/v1` router. */
  router: Router;
  /** Wraps the `/v1` API key check so that signed links reach the route. */
  allowSignedLinks(keyCheck: RequestHandler): RequestHandler;
  /** `recording.url` of stored calls (call details), see {@link RecordingService.storedRecordingUrl}. */
  recordingUrl: (callId: string) => string | undefined;
  /** `scriptRecordings` of call details: the call's stored call script recordings, with links. */
  scriptRecordings: (callId: string) => Promise<StoredVerbRecording[]>;
}

/** The wired recordings domain. */
export interface Recordings {
  service: RecordingService;
  /** Call script recordings (the `record` verb), kept and served like call recordings. */
  verbs: VerbRecordings;
  links: RecordingLinks;
  storage: RecordingStorage;
  http: RecordingHttp;
  /**
   * Tell the domain the address the HTTP API listens on (`http://127.0.0.1:3000`): links start
   * with it unless PUBLIC_URL is set.
   */
  setListenUrl(url: string): void;
  /**
   * Engine start-up, before the gateway connects: take up the recordings an earlier run left
   * unsettled (see {@link RecordingService.resume}). Resolves how many.
   *
   * @throws the store's error when it cannot be read
   */
  resume(): Promise<number>;
  /**
   * Engine shutdown, before {@link stop}: wait up to `timeoutMs` (ms) for the downloads in
   * progress to be stored, announced (`recording.ready`) and deleted from Asterisk (see
   * {@link RecordingService.finishDownloads}). Resolves false when some were still in progress.
   */
  finishDownloads(timeoutMs: number): Promise<boolean>;
  /** Abandon pending download retries (the files stay in Asterisk) and stop listening. */
  stop(): void;
}

/** What {@link createRecordings} needs. */
export interface CreateRecordingsDeps {
  config: Config;
  gateway: AriGateway;
  notifier: CallNotifier;
  /** The call service: it gets the recorder and answers whether a call exists. */
  calls: Pick<CallService, 'setRecorder' | 'getCall'>;
  /**
   * The store: recording fields of the calls table; `db` keeps call script recording downloads
   * still to do (`verb_recording_downloads`), not kept when absent.
   */
  store: {
    calls: Pick<CallRepository, 'setRecording' | 'getCall' | 'unsettledRecordings'>;
    db?: Kysely<Database>;
  };
  /**
   * The call journal: recording statuses go into its transactions, `stored` in the commit of
   * `recording.ready`, and Asterisk's copy is deleted after that commit. Without it, they are
   * written with `store.calls.setRecording` at once.
   */
  journal?: Pick<CallJournal, 'whenCommitted'> & Partial<Pick<CallJournal, 'recordRecording'>>;
  logger: Logger;
  registry: Registry;
  /** Another storage than RECORDINGS_DIR (tests, other backends). */
  storage?: RecordingStorage;
}

/**
 * Build and wire the domain: the recorder is plugged into the call service, the Stasis handlers
 * and a connection listener (every ARI (re)connect looks up the recordings not yet fetched) into
 * the gateway. Call {@link Recordings.resume} before the gateway connects.
 *
 * @throws ConfigError when RECORDING_LINK_SECRET is missing in production with recording on
 */
export function createRecordings(deps: CreateRecordingsDeps): Recordings {
  const { config, gateway } = deps;
  const problems = recordingsConfigCheck(config);
  if (problems.length > 0) throw new ConfigError(problems);
  const settings = recordingSettings(config);
  const logger = deps.logger.child({ component: 'recordings' });
  let secret = settings.linkSecret;
  if (!secret) {
    secret = randomBytes(32).toString('hex');
    if (settings.mode !== 'none')
      logger.warn(
        'RECORDING_LINK_SECRET is not set: recording links are signed with a random key and stop working when the engine restarts',
      );
  }
  const links = new RecordingLinks({
    secret,
    ttlSec: settings.linkTtlSec,
    baseUrl: settings.publicUrl ?? `http://${config.HTTP_HOST}:${config.HTTP_PORT}`,
  });
  const storage = deps.storage ?? new LocalRecordingStorage(settings.directory);
  const service = new RecordingService({
    gateway,
    notifier: deps.notifier,
    calls: deps.store.calls,
    ...(deps.journal ? { journal: deps.journal } : {}),
    callKnown: (callId) => deps.calls.getCall(callId) !== undefined,
    storage,
    links,
    logger,
    registry: deps.registry,
    options: {
      mode: settings.mode,
      deleteFromAsterisk: settings.deleteFromAsterisk,
      download: settings.download,
    },
  });
  const verbs = new VerbRecordings({
    gateway,
    storage,
    links,
    logger,
    registry: deps.registry,
    ...(deps.store.db ? { pending: new VerbRecordingDownloads(deps.store.db) } : {}),
    options: { deleteFromAsterisk: settings.deleteFromAsterisk, download: settings.download },
  });
  deps.calls.setRecorder({
    bridgeCreated: (call, bridgeId, record) => service.bridgeCreated(call, bridgeId, record),
    recordingUrl: (callId) => service.recordingUrl(callId),
    callEnded: (call) => service.callEnded(call),
    keepVerbRecording: (callId, name, durationSec) => verbs.keep(callId, name, durationSec),
  });
  const unsubscribe = registerRecordingStasisHandlers(gateway, service);
  // Every (re)connect: recordings whose RecordingFinished may have been lost are looked up.
  const unsubscribeConnection = gateway.onConnectionChange((state) => {
    if (state === 'connected') {
      service.connected();
      void verbs.resumePending();
    }
  });
  logger.info('recordings', {
    recordCalls: settings.mode,
    storage: storage.description,
    linkTtlSec: settings.linkTtlSec,
    deleteFromAsterisk: settings.deleteFromAsterisk,
  });
  return {
    service,
    verbs,
    links,
    storage,
    http: {
      router: createRecordingRoutes({ service, storage, links, logger, verbs }),
      allowSignedLinks: allowSignedRecordingLinks,
      recordingUrl: (callId) => service.storedRecordingUrl(callId),
      scriptRecordings: (callId) => verbs.list(callId),
    },
    setListenUrl(url) {
      if (!settings.publicUrl) links.setBaseUrl(url);
    },
    async resume() {
      const resumed = service.resume(await deps.store.calls.unsettledRecordings());
      if (resumed > 0)
        logger.info('taking up recordings an earlier run left unsettled', { recordings: resumed });
      return resumed;
    },
    finishDownloads: (timeoutMs) => service.finishDownloads(timeoutMs),
    stop() {
      unsubscribe();
      unsubscribeConnection();
      service.stop();
      verbs.stop();
    },
  };
}
