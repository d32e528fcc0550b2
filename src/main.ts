/**
 * Composition root: config → logger → (PBX simulator) → ARI gateway → domains → HTTP.
 * The only module that wires objects together. Each domain wires its own parts in its `index.ts`
 * factory from the dependencies given here; this module connects the domains to each other,
 * decides the order of start-up and of {@link Engine.stop}. Run directly (`npm start`) it starts
 * the engine from the environment and stops it cleanly on SIGTERM/SIGINT; tests call
 * {@link startEngine}.
 */
import type { Server } from 'node:http';
import type { Express } from 'express';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { createAriGateway } from './ari/gateway.ts';
import type { AriGateway } from './ari/types.ts';
import {
  createAutocalls,
  type AutocallScheduler,
  type AutocallService,
  type NotificationDialer,
} from './autocalls/index.ts';
import { createCalls } from './calls/index.ts';
import type { CallJournal } from './calls/journal.ts';
import type { EventSink } from './calls/notifier.ts';
import type { CallService } from './calls/service.ts';
import { ConfigError } from './config/load.ts';
import { publicUrlConfigCheck, publicUrlWarning } from './config/public-url.ts';
import type { Config } from './config/schema.ts';
import {
  connectorConfigCheck,
  openConnectorDelivery,
  type Connector,
  type ConnectorDeps,
} from './connectors/index.ts';
import { openWebhooks, type WebhookDispatcher } from './events/index.ts';
import { createHttp, restoreIdempotency } from './http/index.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { collectProcessMetrics } from './metrics/process.ts';
import { createOperators, type PresenceService } from './operators/index.ts';
import { createRecordings } from './recordings/index.ts';
import { createSecurity, securityConfigCheck } from './security/index.ts';
import { startSimulator, type PbxSimulator } from './simulator/index.ts';
import { createStream, operatorTokensFromConfig, type StreamServer } from './stream/index.ts';
import { JournalLog, journalLogPath, recoverJournalLog } from './store/journal-log.ts';
import { createStore, parseStoreUrl, type Store } from './store/store.ts';
import { loadEngineConfig, storeUrl } from './engine/config.ts';
import { createCrmClients } from './engine/crm-clients.ts';
import { stopOnce } from './engine/stop.ts';

export { ENGINE_CONFIG_CHECKS, loadEngineConfig, storeUrl } from './engine/config.ts';

/** A running engine. */
export interface Engine {
  readonly config: Config;
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:3000`. */
  readonly httpUrl: string;
  /** The built-in PBX simulator when ARI_URL is unset, else undefined. */
  readonly simulator?: PbxSimulator;
  readonly gateway: AriGateway;
  readonly calls: CallService;
  readonly webhooks: WebhookDispatcher;
  /**
   * The CRM connector (CRM_CONNECTOR other than `webhook`) and the delivery of its vendor
   * requests over its durable outbox; undefined with the default `webhook`.
   */
  readonly connector?: { connector: Connector; delivery: WebhookDispatcher };
  /** The durable store (calls, legs, the event outbox, the delivery log). */
  readonly store: Store;
  /** Writes each call change and its events to the store before webhooks are sent. */
  readonly journal: CallJournal;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The Express app of the HTTP API (route introspection in tests). */
  readonly app: Express;
  /** The HTTP server of the API (benchmarks time requests on it). */
  readonly server: Server;
  /** The live stream's WebSocket server (`GET /v1/stream`, src/stream/). */
  readonly stream: StreamServer;
  /**
   * Notification calls: the service behind `/v1/autocalls` and `/v1/campaigns`, and the scheduler
   * that places their attempts through the notification-call flow (or
   * {@link EngineOverrides.notificationDialer}).
   */
  readonly autocalls: { service: AutocallService; scheduler: AutocallScheduler };
  /**
   * Operator presence (src/operators/): the state of every operator's phone and the status they
   * chose, behind `/v1/operators`; `presence.on('change', …)` follows every change.
   */
  readonly presence: PresenceService;
  /**
   * Graceful stop (SIGTERM): new API requests answer 503 `shutting_down` and `/readyz` 503 at
   * once (`/healthz` and `/metrics` keep answering); recording downloads in progress finish and
   * pending webhooks are delivered, within SHUTDOWN_TIMEOUT_MS in all, while ARI stays connected;
   * then the engine disconnects from ARI, lets CRM requests and call steps in flight finish (for
   * the rest of that time, at least 1 s), commits and closes the call journal (a change recorded
   * later is logged and counted, not stored), closes the store and the HTTP server and stops the
   * simulator. Calls in progress stay up in Asterisk (never hung up). Once it resolves, the
   * engine acts no more: its timers are cleared (a click-to-call retry, the notification-call
   * scheduler, webhook retries...) and its ARI gateway is sealed (a late command is refused with
   * `AriConnectionError`), so nothing further is sent to Asterisk or the CRM. Idempotent: later
   * calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Test and embedding hooks for {@link startEngine}. */
export interface EngineOverrides {
  logger?: Logger;
  /** Extra event sinks (e.g. a test recorder) next to the webhook dispatcher. */
  eventSinks?: EventSink[];
  /** Use this simulator instead of starting one (its URL becomes ARI_URL). */
  simulator?: PbxSimulator;
  /**
   * Resolve only once ARI is connected (default true; the HTTP API already listens meanwhile).
   * false: resolve as soon as the API listens, ARI connecting in the background (`npm start`).
   */
  waitForAri?: boolean;
  /**
   * Places notification-call attempts instead of the engine's own notification-call flow
   * (src/calls/flows/notification.ts): tests script outcomes with it.
   */
  notificationDialer?: NotificationDialer;
  /**
   * Set an operator's status for the connectors' status endpoints (retailCRM
   * `changeUserStatusUrl`); absent: status changes from the CRM are validated and logged only.
   */
  setOperatorStatus?: ConnectorDeps['setOperatorStatus'];
  /** undici dispatcher of the connector's vendor requests (tests); default undici's global one. */
  connectorDispatcher?: import('undici').Dispatcher;
}

/**
 * Start the engine from a validated configuration. The HTTP API listens before ARI connects:
 * while Asterisk is unreachable `/healthz`, `/readyz` (503, check `ari`), `/metrics` and the
 * store's routes answer, call commands answer 503 `ari_unavailable`, and the gateway retries
 * forever; calls an earlier run left unfinished are reconciled when it connects.
 *
 * The steps, in order (docs/architecture.md): the checks, the logger, the simulator, the ARI
 * gateway, the CRM clients, the store (claimed, migrated, its journal log replayed), the
 * deliveries (webhooks, the connector's), operators, security, calls (adopted), recordings
 * (resumed), notification calls (taken over), the HTTP API and the live stream; then ARI
 * connects and the scheduler starts.
 *
 * @throws ConfigError when the security settings are unusable (e.g. no API_KEYS in production),
 *   or PUBLIC_URL is missing where production needs it (see src/config/public-url.ts)
 */
export async function startEngine(
  config: Config,
  overrides: EngineOverrides = {},
): Promise<Engine> {
  const securityProblems = [
    ...securityConfigCheck(config),
    ...connectorConfigCheck(config),
    ...publicUrlConfigCheck(config),
  ];
  if (securityProblems.length > 0) throw new ConfigError(securityProblems);
  const logger =
    overrides.logger ??
    createLogger({ level: config.LOG_LEVEL, defaultMeta: { service: 'ari-crm' } });
  const { simulator, ownSimulator } = await simulatorFor(config, overrides, logger);
  const onSimulator = simulator !== undefined && !config.ARI_URL;

  const registry = new Registry();
  collectProcessMetrics(registry);

  const gateway = createAriGateway({
    url: config.ARI_URL ?? simulator!.url,
    username: simulator && !config.ARI_URL ? simulator.username : config.ARI_USERNAME,
    password: simulator && !config.ARI_URL ? simulator.password : config.ARI_PASSWORD,
    app: config.ARI_APP,
    logger: logger.child({ component: 'ari' }),
    registry,
    reconnect: { maxDelayMs: config.ARI_RECONNECT_MAX_DELAY_MS },
  });

  const crm = createCrmClients(config, logger, registry, overrides.connectorDispatcher);
  const { connector, outbound } = crm;

  // The store: calls, legs, the event outbox and the delivery log. Migrated before
  // anything runs; undelivered events of an earlier run are resumed by the dispatcher.
  const store = createStore({
    url: storeUrl(config),
    logger: logger.child({ component: 'store' }),
    synchronous: config.SQLITE_SYNCHRONOUS,
    ...(config.DATABASE_SCHEMA ? { schema: config.DATABASE_SCHEMA } : {}),
    ...(connector
      ? { connectorOutbox: { name: connector.name, types: connector.eventTypes } }
      : {}),
  });
  crm.storeOpened(store);
  // The journal log, once opened (below).
  let journalLog: { log?: JournalLog; lastSeq?: number } = {};
  // A start-up step that fails closes what is already open (store, journal log, ARI, own
  // simulator) before the error reaches the caller.
  const startStep = <T>(step: Promise<T>): Promise<T> =>
    step.catch(async (err: unknown) => {
      journalLog.log?.close();
      await gateway.seal().catch(() => undefined);
      await store.close().catch(() => undefined);
      await outbound.close().catch(() => undefined);
      if (ownSimulator) await simulator!.close().catch(() => undefined);
      throw err;
    });
  // One engine per store: a second one would adopt this one's calls and resend its webhooks.
  await startStep(store.claim());
  await startStep(store.migrate());
  // The journal log (src/store/journal-log.ts): what an earlier run logged and did not commit is
  // replayed before anything reads the store (webhook outbox, unfinished calls).
  journalLog = await startStep(openJournalLog(config, store, logger.child({ component: 'store' })));

  // Deliveries: webhooks (CRM_WEBHOOK_URL) and the connector's vendor requests, each over its
  // durable outbox; what an earlier run did not deliver is resumed.
  const deliveryDeps = { config, store, post: outbound.post, logger, registry };
  const webhooks = await startStep(openWebhooks(deliveryDeps));
  const connectorDelivery = connector
    ? await startStep(openConnectorDelivery(connector, deliveryDeps))
    : undefined;
  connector?.start();

  // Operator presence (src/operators/): learned from Asterisk's device states and the engine's
  // calls (told of every call event through the call notifier's sinks); statuses from the store.
  const operators = createOperators({
    config,
    onSimulator,
    gateway,
    store,
    deliver: (event) => webhooks.enqueue(event),
    logger,
    registry,
  });
  await startStep(operators.load());
  const { presence } = operators;
  // API keys, the IP allow-list and the toll-fraud guard's destination policy (allow-list,
  // denied number types), one set shared by the HTTP API, the live stream, the numbers operators
  // dial from their phones and notification calls.
  const security = createSecurity({ config, logger, registry });

  // Calls (src/calls/): each change is committed by the journal, then its events are delivered
  // to the webhooks and, for the types it takes, to the connector.
  const connectorTypes = connector?.eventTypes;
  const calls = createCalls({
    config,
    gateway,
    store,
    journalLog,
    deliver: (event) => {
      webhooks.enqueue(event);
      if (connectorDelivery && connectorTypes?.has(event.type)) connectorDelivery.enqueue(event);
    },
    routes: crm.routes,
    post: outbound.post,
    sinks: [...(overrides.eventSinks ?? []), operators.callEvents],
    presence,
    outboundGuard: security.operatorDialGuard,
    logger,
    registry,
  });
  const { journal } = calls;
  operators.followCalls(calls.service);
  await startStep(calls.adoptUnfinished());

  // Recordings (src/recordings/): bridges recorded per RECORD_CALLS (or per call), files
  // fetched over ARI into RECORDINGS_DIR, served at GET /v1/calls/{id}/recording. Recordings an
  // earlier run left unsettled are taken up before ARI connects.
  const recordings = createRecordings({
    config,
    gateway,
    notifier: calls.notifier,
    calls: calls.service,
    store,
    journal,
    logger,
    registry,
  });
  await startStep(recordings.resume());

  // Notification calls (src/autocalls/): the scheduler places each attempt through the
  // notification-call flow of the call service (a test may give its own dialer). Those an
  // earlier run left in progress (adopted above) are taken over before its first pass.
  const autocalls = createAutocalls({
    config,
    store,
    dialer: overrides.notificationDialer ?? calls.service.notificationDialer,
    deliver: (event) => webhooks.enqueue(event),
    ready: () => gateway.isConnected() && !journal.failing(),
    destinations: security.destinations,
    logger,
    registry,
  });
  await startStep(autocalls.takeOver(calls.service.adoptedNotificationAttempts()));

  // The HTTP API (src/http/) and, on the same server, the live stream (src/stream/). Operator
  // tokens (src/security/operator-tokens.ts) are minted by the API and accepted by its console
  // routes and the live stream.
  const idempotency = await startStep(restoreIdempotency({ config, store, logger }));
  const tokens = operatorTokensFromConfig(config, logger);
  let shuttingDown = false;
  const http = createHttp({
    config,
    gateway,
    journal,
    store,
    calls: calls.service,
    ...(simulator ? { simulator } : {}),
    security,
    tokens,
    idempotency,
    recordings: recordings.http,
    autocalls: autocalls.service,
    presence,
    ...(connector
      ? {
          connector: {
            connector,
            // A status the CRM sets (retailCRM's changeUserStatusUrl) is the operator's status
            // of the presence service, as PUT /v1/operators/{extension}/status sets it.
            setOperatorStatus: overrides.setOperatorStatus ?? operators.setStatusFromCrm,
          },
        }
      : {}),
    isShuttingDown: () => shuttingDown,
    logger,
    registry,
  });
  const { app, server } = http;
  const stream = createStream({
    config,
    tokens,
    apiKeys: security.apiKeys,
    store,
    liveCalls: (extension) => calls.service.liveCallIds(extension),
    callExtensions: (callId) => calls.extensionsOf(callId),
    ...(security.allowList.enabled
      ? { allowsIp: (ip: string | undefined) => security.allowList.allows(ip) }
      : {}),
    isShuttingDown: () => shuttingDown,
    logger: logger.child({ component: 'stream' }),
    registry,
  });
  stream.server.attach(server);
  const httpUrl = await startStep(http.listening());
  recordings.setListenUrl(httpUrl);
  const linkWarning = publicUrlWarning(config, httpUrl);
  if (linkWarning) logger.warn(linkWarning.message, { linkBase: httpUrl, uses: linkWarning.uses });

  // ARI connects in the background (the gateway retries forever; start() rejects only when the
  // engine stops first).
  const ariConnected = gateway.start();
  // Claims nothing until ARI is connected (its `ready`).
  autocalls.scheduler.start();
  logger.info('ari-crm started', {
    httpUrl,
    app: config.ARI_APP,
    ari: gateway.isConnected() ? 'connected' : 'connecting',
    crmConnector: config.CRM_CONNECTOR,
    crmRoute: connector
      ? `${connector.name} connector`
      : config.CRM_ROUTE_URL
        ? 'configured'
        : 'not configured (fallback route)',
    webhooks: config.CRM_WEBHOOK_URL ? 'configured' : 'not configured',
  });

  const stop = stopOnce({
    config,
    logger,
    refuseRequests: () => {
      shuttingDown = true;
    },
    stream: stream.server,
    scheduler: autocalls.scheduler,
    recordings,
    journal,
    journalLog,
    webhooks,
    connector,
    connectorDelivery,
    presence,
    calls: calls.service,
    gateway,
    outbound,
    store,
    server,
    ...(ownSimulator ? { ownSimulator: simulator } : {}),
  });

  if (overrides.waitForAri ?? true) {
    try {
      await ariConnected;
    } catch (err) {
      await stop();
      throw err;
    }
  }

  return {
    config,
    httpUrl,
    simulator,
    gateway,
    calls: calls.service,
    webhooks,
    ...(connector && connectorDelivery
      ? { connector: { connector, delivery: connectorDelivery } }
      : {}),
    store,
    journal,
    registry,
    logger,
    app,
    server,
    stream: stream.server,
    autocalls: { service: autocalls.service, scheduler: autocalls.scheduler },
    presence,
    stop,
  };
}

/**
 * The PBX simulator the engine runs on: the one of {@link EngineOverrides.simulator}; else, with
 * ARI_URL unset, one started here on SIM_ARI_PORT with the SIM_* settings (`ownSimulator`: the
 * engine stops it); else none.
 */
async function simulatorFor(
  config: Config,
  overrides: EngineOverrides,
  logger: Logger,
): Promise<{ simulator?: PbxSimulator; ownSimulator: boolean }> {
  if (config.ARI_URL || overrides.simulator)
    return {
      ...(overrides.simulator ? { simulator: overrides.simulator } : {}),
      ownSimulator: false,
    };
  logger.info('ARI_URL is not set: running on the built-in PBX simulator', {
    extensions: config.SIM_EXTENSIONS,
    timeScale: config.SIM_TIME_SCALE,
    answerStaggerMs: config.SIM_ANSWER_STAGGER_MS,
  });
  const simulator = await startSimulator({
    port: config.SIM_ARI_PORT,
    username: config.ARI_USERNAME,
    password: config.ARI_PASSWORD,
    extensions: config.SIM_EXTENSIONS,
    timeScale: config.SIM_TIME_SCALE,
    operatorAnswerStaggerMs: config.SIM_ANSWER_STAGGER_MS,
    logger: logger.child({ component: 'simulator' }),
  });
  return { simulator, ownSimulator: true };
}

/**
 * Replay the journal log of the SQLite database file, if any (whatever SQLITE_SYNCHRONOUS is now),
 * and open it for the journal when SQLITE_SYNCHRONOUS=normal and JOURNAL_LOG is on.
 *
 * @throws the store's or the file's error (start-up stops; the log keeps its entries)
 */
async function openJournalLog(
  config: Config,
  store: Store,
  logger: Logger,
): Promise<{ log?: JournalLog; lastSeq?: number }> {
  const target = parseStoreUrl(storeUrl(config));
  if (target.dialect !== 'sqlite' || target.filename === ':memory:') return {};
  const path = journalLogPath(target.filename);
  const { lastSeq } = await recoverJournalLog(store, path, logger);
  if (config.SQLITE_SYNCHRONOUS !== 'normal' || !config.JOURNAL_LOG) return {};
  return { log: JournalLog.open(path), lastSeq };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadEngineConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const engine = await startEngine(config, { waitForAri: false });
  const shutdown = (signal: string): void => {
    engine.logger.info('signal received', { signal });
    engine.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        engine.logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('unhandledRejection', (reason) => {
    engine.logger.error('unhandled promise rejection (bug): the process keeps running', {
      err: reason,
    });
  });
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `ari-crm failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  });
}
