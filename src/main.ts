/**
 * Composition root: config → logger → (PBX simulator) → ARI gateway → domains → HTTP.
 * The only module that wires objects together. Run directly (`npm start`) it starts the engine
 * from the environment and stops it cleanly on SIGTERM/SIGINT; tests call {@link startEngine}.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createAriGateway } from './ari/gateway.ts';
import { createVerbCrm } from './calls/verbs/crm.ts';
import {
  AutocallNotifier,
  AutocallScheduler,
  AutocallService,
  AutocallStore,
  type NotificationDialer,
  type StoredAutocallCreation,
} from './autocalls/index.ts';
import type { AriGateway } from './ari/types.ts';
import { CallJournal } from './calls/journal.ts';
import { CallNotifier, type EventSink } from './calls/notifier.ts';
import { CallService } from './calls/service.ts';
import { registerReconciliation } from './calls/reconcile.ts';
import { registerCallStasisHandlers } from './calls/stasis.ts';
import { ConfigError, loadConfig, type ConfigCheck } from './config/load.ts';
import { publicUrlConfigCheck, publicUrlWarning } from './config/public-url.ts';
import { createConsoleRoutes } from './console/routes.ts';
import type { Config } from './config/schema.ts';
import {
  connectorBaseUrl,
  connectorConfigCheck,
  createConnector,
  createConnectorDelivery,
  type Connector,
  type ConnectorDeps,
} from './connectors/index.ts';
import { createRouteClient, parseRouteSpec } from './crm/index.ts';
import { createWebhookDispatcher, type WebhookDispatcher } from './events/dispatcher.ts';
import type { EventQueue } from './events/queue.ts';
import { createApi } from './http/api.ts';
import { IdempotencyStore } from './http/idempotency.ts';
import { createOutboundClient } from './http/outbound.ts';
import type { StoredCallCreation } from './calls/routes.ts';
import { createHttpApp } from './http/app.ts';
import { HttpError } from './http/errors.ts';
import { createHttpServer } from './http/server.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import {
  OperatorNotFoundError,
  OperatorNotifier,
  OperatorStore,
  PresenceService,
  registerPresenceStasisHandlers,
} from './operators/index.ts';
import { operatorExtensions } from './operators/config.ts';
import { recordingsConfigCheck } from './recordings/config.ts';
import { createRecordings } from './recordings/index.ts';
import { collectProcessMetrics } from './metrics/process.ts';
import { securityConfigCheck } from './security/config.ts';
import { DestinationPolicy } from './security/destinations.ts';
import { OperatorDialGuard } from './security/guard.ts';
import { createSecurityMetrics } from './security/metrics.ts';
import { startSimulator, type PbxSimulator } from './simulator/index.ts';
import { ApiKeyRing } from './security/api-keys.ts';
import { IpAllowList } from './security/ip.ts';
import { createStream, operatorTokensFromConfig, type StreamServer } from './stream/index.ts';
import { DurableEventQueue } from './store/durable-queue.ts';
import { JournalLog, journalLogPath, recoverJournalLog } from './store/journal-log.ts';
import { createConnectorState } from './store/connector-state.ts';
import { createStore, parseStoreUrl, type Store } from './store/store.ts';

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
  let simulator = overrides.simulator;
  let ownSimulator = false;
  if (!config.ARI_URL && !simulator) {
    logger.info('ARI_URL is not set: running on the built-in PBX simulator', {
      extensions: config.SIM_EXTENSIONS,
      timeScale: config.SIM_TIME_SCALE,
      answerStaggerMs: config.SIM_ANSWER_STAGGER_MS,
    });
    simulator = await startSimulator({
      port: config.SIM_ARI_PORT,
      username: config.ARI_USERNAME,
      password: config.ARI_PASSWORD,
      extensions: config.SIM_EXTENSIONS,
      timeScale: config.SIM_TIME_SCALE,
      operatorAnswerStaggerMs: config.SIM_ANSWER_STAGGER_MS,
      logger: logger.child({ component: 'simulator' }),
    });
    ownSimulator = true;
  }
  const ariUrl = config.ARI_URL ?? simulator!.url;

  const registry = new Registry();
  collectProcessMetrics(registry);

  const gateway = createAriGateway({
    url: ariUrl,
    username: simulator && !config.ARI_URL ? simulator.username : config.ARI_USERNAME,
    password: simulator && !config.ARI_URL ? simulator.password : config.ARI_PASSWORD,
    app: config.ARI_APP,
    logger: logger.child({ component: 'ari' }),
    registry,
    reconnect: { maxDelayMs: config.ARI_RECONNECT_MAX_DELAY_MS },
  });

  // The CRM connector (CRM_CONNECTOR, src/connectors/): route lookups, call events and the
  // call history in the vendor's API. It reads stored calls through `storeRef` (set below).
  const storeRef: { store?: Store } = {};
  const connector = createConnector(config, {
    calls: { getCall: (id) => storeRef.store!.calls.getCall(id) },
    state: () =>
      storeRef.store ? createConnectorState(storeRef.store.db, config.CRM_CONNECTOR) : undefined,
    logger,
    ...(overrides.connectorDispatcher ? { dispatcher: overrides.connectorDispatcher } : {}),
  });
  const fallbackRoute = parseRouteSpec(config.FALLBACK_ROUTE, config.RING_TIMEOUT_SEC);

  // One keep-alive undici pool for the CRM (route lookups and webhooks), closed at stop.
  const outbound = createOutboundClient();
  const routes = createRouteClient({
    url: connector ? undefined : config.CRM_ROUTE_URL,
    ...(connector
      ? {
          source: (request, signal) => connector.lookupRoute(request, fallbackRoute, signal),
        }
      : {}),
    post: outbound.post,
    apiKey: config.CRM_API_KEY,
    timeoutMs: config.CRM_TIMEOUT_MS,
    cacheTtlMs: config.CRM_ROUTE_CACHE_TTL_MS,
    fallback: fallbackRoute,
    logger: logger.child({ component: 'crm' }),
    registry,
  });

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
  storeRef.store = store;
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
  let queue: EventQueue | undefined;
  if (config.CRM_WEBHOOK_URL) {
    queue = await startStep(
      DurableEventQueue.open(store.events, {
        logger: logger.child({ component: 'webhooks' }),
        url: config.CRM_WEBHOOK_URL,
        persistAppends: false, // the journal commits every event before it is queued
        transaction: (fn) => store.writeBatch((repos) => fn(repos.events)),
      }),
    );
    if (queue.size() > 0)
      logger.info('resuming undelivered webhooks of an earlier run', { events: queue.size() });
  }

  const webhooks = createWebhookDispatcher({
    url: config.CRM_WEBHOOK_URL,
    secret: config.WEBHOOK_SECRET ?? '',
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    concurrency: config.WEBHOOK_CONCURRENCY,
    retry: {
      initialDelayMs: config.WEBHOOK_RETRY_INITIAL_DELAY_MS,
      maxDelayMs: config.WEBHOOK_RETRY_MAX_DELAY_MS,
      maxAgeMs: config.WEBHOOK_MAX_AGE_MS,
    },
    logger: logger.child({ component: 'webhooks' }),
    registry,
    post: outbound.post,
    ...(queue ? { queue } : {}),
  });

  // The connector's vendor requests: the same outbox machinery, over its own delivery state.
  let connectorDelivery: WebhookDispatcher | undefined;
  if (connector) {
    const connectorLogger = logger.child({ component: 'connector', connector: connector.name });
    const connectorQueue = await startStep(
      DurableEventQueue.open(store.connectorOutbox!, {
        logger: connectorLogger,
        url: connectorBaseUrl(config),
        persistAppends: false, // the journal commits each event with its connector row
        transaction: (fn) => store.writeBatch((repos) => fn(repos.connectorOutbox!)),
      }),
    );
    if (connectorQueue.size() > 0)
      logger.info('resuming undelivered CRM connector requests of an earlier run', {
        events: connectorQueue.size(),
      });
    connectorDelivery = createConnectorDelivery({
      connector,
      client: connector.client,
      queue: connectorQueue,
      url: connectorBaseUrl(config) ?? connector.name,
      timeoutMs: config.CONNECTOR_TIMEOUT_MS * 3,
      retry: {
        initialDelayMs: config.WEBHOOK_RETRY_INITIAL_DELAY_MS,
        maxDelayMs: config.WEBHOOK_RETRY_MAX_DELAY_MS,
        maxAgeMs: config.WEBHOOK_MAX_AGE_MS,
      },
      logger: connectorLogger,
      registry,
    });
    connector.start();
  }
  const connectorTypes = connector?.eventTypes;

  const journal = new CallJournal({
    store,
    logger: logger.child({ component: 'store' }),
    registry,
    deliver: (event) => {
      webhooks.enqueue(event);
      if (connectorDelivery && connectorTypes?.has(event.type)) connectorDelivery.enqueue(event);
    },
    // Without a URL events are for the pull feed only: a URL set later does not get old calls.
    skipDelivery: !config.CRM_WEBHOOK_URL,
    ...journalLog,
  });
  // Operator presence (src/operators/): learned from Asterisk's device states (stasis.ts) and
  // the engine's calls (read through `engineCalls`, set once the call service exists below, and
  // told of every call event through the notifier's sinks); statuses from the store.
  const engineCalls: { service?: CallService } = {};
  const presence = new PresenceService({
    extensions: operatorExtensions(config, simulator !== undefined && !config.ARI_URL),
    store: new OperatorStore(store, { skipDelivery: !config.CRM_WEBHOOK_URL }),
    logger: logger.child({ component: 'operators' }),
    engineView: (extension) => engineCalls.service?.operatorActivity(extension),
    // Called once a change is committed, long after the notifier below exists.
    committed: (event) => operatorNotifier.committed(event),
  });
  const operatorNotifier = new OperatorNotifier(
    registry,
    logger.child({ component: 'operators' }),
    () => presence.list(),
    (event) => webhooks.enqueue(event),
  );
  await startStep(presence.load());
  const presenceSink: EventSink = { enqueue: (event) => presence.callEvent(event) };
  const notifier = new CallNotifier(
    [...(overrides.eventSinks ?? []), presenceSink],
    logger,
    Date.now,
    journal,
  );
  // Call scripts' CRM requests (gather actionUrl, redirect): the route lookup's timeout and key,
  // signed like the webhooks (docs/verbs.md).
  const verbCrm = createVerbCrm({
    timeoutMs: config.CRM_TIMEOUT_MS,
    ...(config.CRM_API_KEY ? { apiKey: config.CRM_API_KEY } : {}),
    ...(config.WEBHOOK_SECRET ? { secret: config.WEBHOOK_SECRET } : {}),
    post: outbound.post,
    logger: logger.child({ component: 'crm' }),
    registry,
  });
  // The toll-fraud guard's destination policy (allow-list, denied number types), shared by the
  // numbers operators dial from their phones and notification calls (the API builds its own from
  // the same settings, src/http/api.ts).
  const destinations = new DestinationPolicy(
    config.DESTINATION_ALLOWLIST,
    config.DEFAULT_REGION,
    config.DESTINATION_DENIED_TYPES,
  );
  const calls = new CallService({
    gateway,
    routes,
    verbCrm,
    notifier,
    journal,
    // The toll-fraud guard's destination policy, for numbers operators dial from their phones
    // (the API applies it to click-to-call, src/http/api.ts).
    outboundGuard: new OperatorDialGuard({
      destinations,
      region: config.DEFAULT_REGION,
      logger,
      metrics: createSecurityMetrics(registry),
    }),
    logger,
    registry,
    // Inbound routing skips operators who do not take calls now (OPERATOR_PRESENCE_ROUTING).
    ...(config.OPERATOR_PRESENCE_ROUTING ? { presence } : {}),
    // At each connect: a channel in the app of no live call is a leftover of a stored call (hung
    // up) or a caller whose StasisStart was missed (routed).
    knownChannels: (channelIds) => store.calls.knownChannels(channelIds),
    options: {
      operatorEndpoint: config.OPERATOR_ENDPOINT,
      callerIdPrefix: config.OPERATOR_CALLERID_PREFIX,
      defaultRingTimeoutSec: config.RING_TIMEOUT_SEC,
      outboundRingTimeoutSec: config.OUTBOUND_RING_TIMEOUT_SEC,
      noAnswerDialplan: config.NO_ANSWER_DIALPLAN,
      trunks: config.TRUNKS.map((trunk) => ({ ...trunk, region: config.DEFAULT_REGION })),
      companyCallerId: config.COMPANY_CALLER_ID,
      clickToCallCallerIdName: config.CLICK_TO_CALL_CALLERID_NAME,
      clickToCallRingTimeoutSec: config.CLICK_TO_CALL_RING_TIMEOUT_SEC,
      serviceContext: config.SERVICE_CONTEXT,
      notificationRingTimeoutSec: config.AUTOCALL_RING_TIMEOUT_SEC,
      amdContext: config.AUTOCALL_AMD_CONTEXT,
    },
  });
  registerCallStasisHandlers(gateway, calls);
  engineCalls.service = calls;
  // Subscribed to the operators' device states at every (re)connect, read afresh each time.
  registerPresenceStasisHandlers(gateway, presence, {
    endpointTemplate: config.OPERATOR_ENDPOINT,
    logger: logger.child({ component: 'operators' }),
  });
  // Resilience: calls left unfinished by an earlier run are adopted before ARI
  // connects; every (re)connect reconciles the live calls with Asterisk's channels and bridges.
  const adopted = calls.adoptCalls(await startStep(store.calls.unfinishedCalls()));
  if (adopted > 0) logger.info('adopting calls left unfinished by an earlier run', { adopted });
  registerReconciliation(gateway, calls, logger.child({ component: 'reconcile' }));

  // Recordings (src/recordings/): bridges recorded per RECORD_CALLS (or per call), files
  // fetched over ARI into RECORDINGS_DIR, served at GET /v1/calls/{id}/recording. Recordings an
  // earlier run left unsettled are taken up before ARI connects.
  const recordings = createRecordings({
    config,
    gateway,
    notifier,
    calls,
    store,
    journal,
    logger,
    registry,
  });
  await startStep(recordings.resume());

  // Notification calls (src/autocalls/): jobs and campaigns in the store; the scheduler places
  // each attempt through the notification-call flow of the call runtime (a test may give its own
  // dialer).
  const autocallStore = new AutocallStore(store, { skipDelivery: !config.CRM_WEBHOOK_URL });
  const autocallNotifier = new AutocallNotifier(
    registry,
    logger.child({ component: 'autocalls' }),
    (event) => webhooks.enqueue(event),
  );
  const dialer = overrides.notificationDialer ?? calls.notificationDialer;
  const scheduler = new AutocallScheduler({
    store: autocallStore,
    dialer,
    notifier: autocallNotifier,
    logger: logger.child({ component: 'autocalls' }),
    owner: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    maxLiveCalls: config.AUTOCALL_MAX_LIVE_CALLS,
    leaseMs: config.AUTOCALL_LEASE_MS,
    ready: () => gateway.isConnected() && !journal.failing(),
  });
  autocallNotifier.countLiveCalls(() => scheduler.liveCalls());
  // Notification calls an earlier run left in progress (adopted above): their attempts are taken
  // over (leases moved to this engine) before the scheduler's first pass could reclaim them.
  const takenOver = await startStep(scheduler.adoptAttempts(calls.adoptedNotificationAttempts()));
  if (takenOver.length > 0)
    logger.info('taking over notification calls in progress', { calls: takenOver.length });
  const autocallService = new AutocallService({
    store: autocallStore,
    notifier: autocallNotifier,
    destinations,
    trunks: config.TRUNKS.map((trunk) => ({ ...trunk, region: config.DEFAULT_REGION })),
    region: config.DEFAULT_REGION,
    wake: () => scheduler.wake(),
  });

  // Idempotency-Key answers survive a restart: written through to the store, reloaded here.
  const idempotency = new IdempotencyStore<StoredCallCreation>(
    config.IDEMPOTENCY_TTL_MS,
    Date.now,
    ({ value, ...rest }) => {
      store.idempotency.save({ ...rest, value: JSON.stringify(value) }).catch((err: unknown) => {
        logger.error('could not store an idempotency key answer', { err });
      });
    },
  );
  // `POST /v1/autocalls` answers, stored with the scope `autocalls/<API key name>`.
  const autocallIdempotency = new IdempotencyStore<StoredAutocallCreation>(
    config.IDEMPOTENCY_TTL_MS,
    Date.now,
    ({ value, scope, ...rest }) => {
      store.idempotency
        .save({ ...rest, scope: `${AUTOCALL_SCOPE}${scope}`, value: JSON.stringify(value) })
        .catch((err: unknown) => {
          logger.error('could not store an idempotency key answer', { err });
        });
    },
  );
  await startStep(store.idempotency.purgeExpired(Date.now()));
  const remembered = await startStep(store.idempotency.loadLive(Date.now()));
  idempotency.restore(
    remembered
      .filter((r) => !r.scope.startsWith(AUTOCALL_SCOPE))
      .map(({ value, ...rest }) => ({ ...rest, value: JSON.parse(value) as StoredCallCreation })),
  );
  autocallIdempotency.restore(
    remembered
      .filter((r) => r.scope.startsWith(AUTOCALL_SCOPE))
      .map(({ value, scope, ...rest }) => ({
        ...rest,
        scope: scope.slice(AUTOCALL_SCOPE.length),
        value: JSON.parse(value) as StoredAutocallCreation,
      })),
  );

  // The public API: API keys, IP allow-list, toll-fraud guard, /v1 call
  // routes, the asterisk.fcgi compatibility path, /openapi.json.
  const httpLogger = logger.child({ component: 'http' });
  // Operator tokens (src/security/operator-tokens.ts): minted by the API, accepted by the API's
  // console routes and the live stream.
  const tokens = operatorTokensFromConfig(config, logger);
  let shuttingDown = false;
  const app = createHttpApp({
    logger: httpLogger,
    registry,
    trustProxy: config.TRUST_PROXY,
    isShuttingDown: () => shuttingDown,
    readiness: {
      ari: () => (gateway.isConnected() ? undefined : 'ARI WebSocket is not connected'),
      store: async () => {
        if (journal.failing()) return 'store writes are failing (see the logs)';
        await store.ping(); // the database answers even when nothing is being written
        return undefined;
      },
    },
    // The operator console (src/console/, docs/console.md): a public page; its data comes from the
    // API with the operator token of its link.
    routers: {
      ...(simulator ? { '/sim': simulator.controlRouter() } : {}),
      '/console': createConsoleRoutes(),
    },
    ...createApi({
      config,
      control: calls,
      registry,
      logger: httpLogger,
      store,
      tokens,
      idempotency,
      recordings: recordings.http,
      autocalls: { service: autocallService, idempotency: autocallIdempotency },
      operators: { presence },
      ...(connector
        ? {
            connector: {
              connector,
              // A status the CRM sets (retailCRM's changeUserStatusUrl) is the operator's
              // status of the presence service, as PUT /v1/operators/{extension}/status sets it.
              setOperatorStatus:
                overrides.setOperatorStatus ??
                (async (extension, status) => {
                  try {
                    await presence.setStatus(extension, status);
                  } catch (err) {
                    if (err instanceof OperatorNotFoundError)
                      throw new HttpError(
                        404,
                        'operator_not_found',
                        `extension ${extension} is not an operator of this engine`,
                      );
                    throw err;
                  }
                }),
            },
          }
        : {}),
    }),
  });

  const server: Server = createHttpServer(
    app,
    {
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: config.HTTP_MAX_CONNECTIONS,
    },
    registry,
  ).listen(config.HTTP_PORT, config.HTTP_HOST);
  // The live stream (src/stream/): WebSocket upgrades of GET /v1/stream on the same server.
  const allowList = new IpAllowList(config.HTTP_ALLOWED_CIDRS);
  const stream = createStream({
    config,
    tokens,
    apiKeys: new ApiKeyRing(config.API_KEYS),
    store,
    liveCalls: (extension) => calls.liveCallIds(extension),
    callExtensions: async (callId) => {
      const call = calls.getCall(callId) ?? (await store.calls.getCall(callId));
      if (!call) return undefined;
      const extensions = new Set<string>();
      for (const leg of call.legs) if (leg.extension) extensions.add(leg.extension);
      if (call.answeredBy) extensions.add(call.answeredBy);
      if (call.direction === 'out') extensions.add(call.from);
      return [...extensions];
    },
    ...(allowList.enabled ? { allowsIp: (ip: string | undefined) => allowList.allows(ip) } : {}),
    isShuttingDown: () => shuttingDown,
    logger: logger.child({ component: 'stream' }),
    registry,
  });
  stream.server.attach(server);
  await startStep(once(server, 'listening'));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const httpUrl = `http://${host}:${address.port}`;
  recordings.setListenUrl(httpUrl);
  const linkWarning = publicUrlWarning(config, httpUrl);
  if (linkWarning) logger.warn(linkWarning.message, { linkBase: httpUrl, uses: linkWarning.uses });
  // ARI connects in the background (the gateway retries forever; start() rejects only when the
  // engine stops first).
  const ariConnected = gateway.start();
  // Claims nothing until ARI is connected (its `ready`).
  scheduler.start();
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

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // New API requests get 503 shutting_down, /readyz 503; calls in progress stay up and are
      // still handled (ARI stays connected) while pending webhooks are delivered.
      shuttingDown = true;
      // Browsers reconnect (to another instance, or to this one once it is back) with ?after=.
      stream.server.close();
      logger.info('stopping: new API requests are refused, delivering pending webhooks', {
        pendingWebhooks: webhooks.pending(),
        timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
      });
      // One budget for the whole drain: SHUTDOWN_TIMEOUT_MS from now.
      const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
      const left = (): number => Math.max(0, deadline - Date.now());
      // No new notification call. Attempts in progress are recorded if they end while webhooks
      // drain; the others' leases expire and the next engine reclaims them (recorded `lost`).
      await scheduler.stop();
      // Recording downloads in progress finish: their recording.ready goes out with the pending
      // webhooks below and Asterisk's copy is deleted. Retries waiting for their delay do not
      // hold the stop (the next start takes them up).
      await recordings.finishDownloads(left());
      // Events recorded but not yet committed reach the dispatcher when their write commits.
      await journal.flush(left());
      const drained = await webhooks.drain(left());
      if (!drained)
        logger.warn('pending webhooks were not all delivered before shutdown', {
          pending: webhooks.pending(),
        });
      if (connectorDelivery && !(await connectorDelivery.drain(left())))
        logger.warn('pending CRM connector requests were not all delivered before shutdown', {
          pending: connectorDelivery.pending(),
        });
      connector?.stop();
      recordings.stop();
      presence.stop();
      // Call scripts stop where they are (their calls stay up for the next engine to adopt); a
      // click-to-call waiting to ring its operator again is not retried.
      calls.stop();
      await gateway.stop();
      webhooks.stop();
      connectorDelivery?.stop();
      // Webhooks are stopped and ARI is closed: no more CRM requests (route lookups still in
      // flight end within CRM_TIMEOUT_MS).
      await outbound.close();
      // The call steps still running finish before the journal closes: a route answer that came
      // while ARI was closing (a `hangup` route ends its call), an ARI command's answer. Their
      // changes are committed below, not dropped (the journal logs a change after its close).
      if (!(await calls.settled(Math.max(left(), 1000))))
        logger.warn('call steps still running at shutdown; their later changes are not stored', {
          calls: calls.activeCalls().length,
        });
      // Changes made while ARI was closing; a healthy store commits them at once. Their events
      // are not sent by this run: pending in the outbox, the next start sends them.
      await journal.close(Math.max(left(), 1000));
      journalLog.log?.close();
      // Closed for good: from now on nothing is sent to Asterisk (a late step's command is
      // refused). Every timer of the engine that could act was cleared above.
      await gateway.seal();
      // Presence changes made meanwhile are stored (and their events queued) before the end.
      await presence.flush();
      await webhooks.flush();
      await connectorDelivery?.flush();
      await store.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownSimulator) await simulator!.close();
      logger.info('stopped');
    })();
    return stopping;
  };

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
    calls,
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
    autocalls: { service: autocallService, scheduler },
    presence,
    stop,
  };
}

/** Scope prefix of the stored `Idempotency-Key` answers of `POST /v1/autocalls`. */
const AUTOCALL_SCOPE = 'autocalls/';

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

/** DATABASE_URL, or the SQLite file in DATA_DIR. */
export function storeUrl(config: Config): string {
  return config.DATABASE_URL ?? `sqlite:${join(config.DATA_DIR, 'ari-crm.sqlite')}`;
}

/**
 * Every check of the configuration the engine makes before it starts, beyond the schema: the
 * security settings (API_KEYS in production, destination patterns), the recordings settings
 * (RECORDING_LINK_SECRET in production), PUBLIC_URL (in production, when links would name a
 * wildcard or loopback listen address) and FALLBACK_ROUTE. `npm start` and `node dist/main.js`
 * run them all; so does the test that checks docker/compose.yaml with docker/env.example.
 */
export const ENGINE_CONFIG_CHECKS: readonly ConfigCheck[] = [
  securityConfigCheck,
  connectorConfigCheck,
  recordingsConfigCheck,
  publicUrlConfigCheck,
  (c) => {
    try {
      parseRouteSpec(c.FALLBACK_ROUTE, c.RING_TIMEOUT_SEC);
      return [];
    } catch (err) {
      return [`FALLBACK_ROUTE: ${err instanceof Error ? err.message : String(err)}`];
    }
  },
];

/**
 * The engine's configuration from `env` (default: the process environment over `./.env`), with
 * every start-up check of {@link ENGINE_CONFIG_CHECKS}.
 *
 * @throws ConfigError naming each bad or missing variable
 */
export function loadEngineConfig(env?: Record<string, string | undefined>): Config {
  return loadConfig(env, [...ENGINE_CONFIG_CHECKS]);
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
