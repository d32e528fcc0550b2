/**
 * Composition root: config → logger → (PBX simulator) → ARI gateway → domains → HTTP.
 * The only module that wires objects together. Run directly (`npm start`) it starts the engine
 * from the environment and stops it cleanly on SIGTERM/SIGINT; tests call {@link startEngine}.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { pathToFileURL } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createAriGateway } from './ari/gateway.ts';
import type { AriGateway } from './ari/types.ts';
import { CallNotifier, type EventSink } from './calls/notifier.ts';
import { CallService } from './calls/service.ts';
import { registerCallStasisHandlers } from './calls/stasis.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { createRouteClient, parseRouteSpec } from './crm/index.ts';
import { createWebhookDispatcher, type WebhookDispatcher } from './events/dispatcher.ts';
import { createApi } from './http/api.ts';
import { createHttpApp } from './http/app.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { securityConfigCheck } from './security/config.ts';
import { startSimulator, type PbxSimulator } from './simulator/index.ts';

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
  readonly registry: Registry;
  readonly logger: Logger;
  /** The Express app of the HTTP API (route introspection in tests). */
  readonly app: Express;
  /** The HTTP server of the API (benchmarks time requests on it). */
  readonly server: Server;
  /**
   * Graceful stop: close the HTTP server, deliver pending webhooks for up to
   * SHUTDOWN_TIMEOUT_MS, disconnect from ARI, stop the simulator. Calls stay up in Asterisk.
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
}

/**
 * Start the engine from a validated configuration.
 *
 * @throws ConfigError when the security settings are unusable (e.g. no API_KEYS in production)
 */
export async function startEngine(
  config: Config,
  overrides: EngineOverrides = {},
): Promise<Engine> {
  const securityProblems = securityConfigCheck(config);
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
    });
    simulator = await startSimulator({
      port: config.SIM_ARI_PORT,
      username: config.ARI_USERNAME,
      password: config.ARI_PASSWORD,
      extensions: config.SIM_EXTENSIONS,
      timeScale: config.SIM_TIME_SCALE,
      logger: logger.child({ component: 'simulator' }),
    });
    ownSimulator = true;
  }
  const ariUrl = config.ARI_URL ?? simulator!.url;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'aricrm_' });

  const gateway = createAriGateway({
    url: ariUrl,
    username: simulator && !config.ARI_URL ? simulator.username : config.ARI_USERNAME,
    password: simulator && !config.ARI_URL ? simulator.password : config.ARI_PASSWORD,
    app: config.ARI_APP,
    logger: logger.child({ component: 'ari' }),
    registry,
    reconnect: { maxDelayMs: config.ARI_RECONNECT_MAX_DELAY_MS },
  });

  const routes = createRouteClient({
    url: config.CRM_ROUTE_URL,
    apiKey: config.CRM_API_KEY,
    timeoutMs: config.CRM_TIMEOUT_MS,
    cacheTtlMs: config.CRM_ROUTE_CACHE_TTL_MS,
    fallback: parseRouteSpec(config.FALLBACK_ROUTE, config.RING_TIMEOUT_SEC),
    logger: logger.child({ component: 'crm' }),
    registry,
  });

  const webhooks = createWebhookDispatcher({
    url: config.CRM_WEBHOOK_URL,
    secret: config.WEBHOOK_SECRET ?? '',
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    retry: { initialDelayMs: 500, maxDelayMs: 30_000, maxAgeMs: config.WEBHOOK_MAX_AGE_MS },
    logger: logger.child({ component: 'webhooks' }),
    registry,
  });

  const notifier = new CallNotifier([webhooks, ...(overrides.eventSinks ?? [])], logger);
  const calls = new CallService({
    gateway,
    routes,
    notifier,
    logger,
    registry,
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
    },
  });
  registerCallStasisHandlers(gateway, calls);

  // The public API (BRIEF F2, F7, F8, F13): API keys, IP allow-list, toll-fraud guard, /v1 call
  // routes, the seed-003 compatibility path, /openapi.json.
  const httpLogger = logger.child({ component: 'http' });
  const app = createHttpApp({
    logger: httpLogger,
    registry,
    trustProxy: config.TRUST_PROXY,
    readiness: {
      ari: () => (gateway.isConnected() ? undefined : 'ARI WebSocket is not connected'),
    },
    routers: simulator ? { '/sim': simulator.controlRouter() } : {},
    ...createApi({ config, control: calls, registry, logger: httpLogger }),
  });

  await gateway.start();
  const server: Server = app.listen(config.HTTP_PORT, config.HTTP_HOST);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const httpUrl = `http://${host}:${address.port}`;
  logger.info('ari-crm started', {
    httpUrl,
    app: config.ARI_APP,
    crmRoute: config.CRM_ROUTE_URL ? 'configured' : 'not configured (fallback route)',
    webhooks: config.CRM_WEBHOOK_URL ? 'configured' : 'not configured',
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const drained = await webhooks.drain(config.SHUTDOWN_TIMEOUT_MS);
      if (!drained)
        logger.warn('pending webhooks were not all delivered before shutdown', {
          pending: webhooks.pending(),
        });
      webhooks.stop();
      await gateway.stop();
      if (ownSimulator) await simulator!.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  return {
    config,
    httpUrl,
    simulator,
    gateway,
    calls,
    webhooks,
    registry,
    logger,
    app,
    server,
    stop,
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(undefined, [
      securityConfigCheck,
      (c) => {
        try {
          parseRouteSpec(c.FALLBACK_ROUTE, c.RING_TIMEOUT_SEC);
          return [];
        } catch (err) {
          return [`FALLBACK_ROUTE: ${err instanceof Error ? err.message : String(err)}`];
        }
      },
    ]);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const engine = await startEngine(config);
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
