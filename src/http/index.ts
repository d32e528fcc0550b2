/**
 * The HTTP side of the engine: the Express app (health, readiness, metrics, the public API of
 * src/http/api.ts, the operator console, the simulator's control routes), its server, and the
 * `Idempotency-Key` answers kept across restarts. Reference: docs/api.md.
 *
 * `main.ts` wires it with {@link restoreIdempotency} and {@link createHttp}.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, Router } from 'express';
import type { Registry } from 'prom-client';
import type { AriGateway } from '../ari/types.ts';
import type { AutocallService, StoredAutocallCreation } from '../autocalls/index.ts';
import type { CallJournal } from '../calls/journal.ts';
import type { StoredCallCreation } from '../calls/routes.ts';
import type { CallService } from '../calls/service.ts';
import type { Config } from '../config/schema.ts';
import type { Connector, ConnectorDeps } from '../connectors/index.ts';
import { createConsoleRoutes } from '../console/routes.ts';
import type { Logger } from '../logging/logger.ts';
import type { PresenceService } from '../operators/index.ts';
import type { RecordingHttp } from '../recordings/index.ts';
import type { Security } from '../security/index.ts';
import type { OperatorTokens } from '../security/operator-tokens.ts';
import type { Store } from '../store/store.ts';
import { createApi } from './api.ts';
import { createHttpApp } from './app.ts';
import { IdempotencyStore } from './idempotency.ts';
import { createHttpServer } from './server.ts';

/** Scope prefix of the stored `Idempotency-Key` answers of `POST /v1/autocalls`. */
const AUTOCALL_SCOPE = 'autocalls/';

/** The remembered `Idempotency-Key` answers, restored from the store. */
export interface EngineIdempotency {
  /** `POST /v1/calls` (and the connectors' click-to-calls). */
  calls: IdempotencyStore<StoredCallCreation>;
  /** `POST /v1/autocalls`, stored with the scope `autocalls/<API key name>`. */
  autocalls: IdempotencyStore<StoredAutocallCreation>;
}

/**
 * `Idempotency-Key` answers that survive a restart: each completed answer is written through to
 * the store (a failed write is logged at error, the answer still served from memory); expired
 * ones are purged and the live ones reloaded here. Keys live IDEMPOTENCY_TTL_MS.
 *
 * @throws the store's error when it cannot be read
 */
export async function restoreIdempotency(deps: {
  config: Pick<Config, 'IDEMPOTENCY_TTL_MS'>;
  store: Pick<Store, 'idempotency'>;
  logger: Logger;
}): Promise<EngineIdempotency> {
  const { config, store, logger } = deps;
  const calls = new IdempotencyStore<StoredCallCreation>(
    config.IDEMPOTENCY_TTL_MS,
    Date.now,
    ({ value, ...rest }) => {
      store.idempotency.save({ ...rest, value: JSON.stringify(value) }).catch((err: unknown) => {
        logger.error('could not store an idempotency key answer', { err });
      });
    },
  );
  const autocalls = new IdempotencyStore<StoredAutocallCreation>(
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
  await store.idempotency.purgeExpired(Date.now());
  const remembered = await store.idempotency.loadLive(Date.now());
  calls.restore(
    remembered
      .filter((r) => !r.scope.startsWith(AUTOCALL_SCOPE))
      .map(({ value, ...rest }) => ({ ...rest, value: JSON.parse(value) as StoredCallCreation })),
  );
  autocalls.restore(
    remembered
      .filter((r) => r.scope.startsWith(AUTOCALL_SCOPE))
      .map(({ value, scope, ...rest }) => ({
        ...rest,
        scope: scope.slice(AUTOCALL_SCOPE.length),
        value: JSON.parse(value) as StoredAutocallCreation,
      })),
  );
  return { calls, autocalls };
}

/** What {@link createHttp} needs. */
export interface CreateHttpDeps {
  config: Config;
  /** `/readyz` check `ari`: the ARI WebSocket is connected. */
  gateway: Pick<AriGateway, 'isConnected'>;
  /** `/readyz` check `store`: the call journal's writes succeed and the database answers. */
  journal: Pick<CallJournal, 'failing'>;
  /** The durable store: call history, the pull feed, the delivery log; pinged by `/readyz`. */
  store: Store;
  /** Call control behind `/v1/calls` and the compatibility path. */
  calls: CallService;
  /** The built-in PBX simulator (its control routes at `/sim`), when the engine runs on one. */
  simulator?: { controlRouter(): Router };
  /**
   * The engine's security objects (`createSecurity`): the API checks API keys, the IP allow-list
   * and call destinations with the same ones as the live stream and the operators' dial guard.
   */
  security: Pick<Security, 'apiKeys' | 'allowList' | 'destinations'>;
  /** Operator tokens: minted by the API, accepted on the console's routes. */
  tokens: OperatorTokens;
  idempotency: EngineIdempotency;
  recordings: RecordingHttp;
  autocalls: AutocallService;
  presence: PresenceService;
  /** The CRM connector's endpoints (CRM_CONNECTOR other than `webhook`). */
  connector?: {
    connector: Connector;
    setOperatorStatus: NonNullable<ConnectorDeps['setOperatorStatus']>;
  };
  /** True once the engine is stopping: API requests then answer 503 `shutting_down`. */
  isShuttingDown: () => boolean;
  logger: Logger;
  registry: Registry;
}

/** The HTTP app and its server. */
export interface Http {
  app: Express;
  /** Already told to listen on HTTP_HOST:HTTP_PORT; see {@link Http.listening}. */
  server: Server;
  /**
   * Resolves the base URL of the API once the server listens, e.g. `http://127.0.0.1:3000`
   * (`[::1]` for IPv6).
   *
   * @throws the server's error (e.g. `EADDRINUSE`)
   */
  listening(): Promise<string>;
}

/**
 * Build the app (the public API: API keys, IP allow-list, toll-fraud guard, `/v1` routes, the
 * asterisk.fcgi compatibility path, `/openapi.json`; the operator console at `/console`, a public
 * page whose data comes from the API with the operator token of its link) and start its server
 * listening on HTTP_HOST:HTTP_PORT with the HTTP_* limits.
 */
export function createHttp(deps: CreateHttpDeps): Http {
  const { config, registry, store, journal, gateway, simulator } = deps;
  const logger = deps.logger.child({ component: 'http' });
  const app = createHttpApp({
    logger,
    registry,
    trustProxy: config.TRUST_PROXY,
    isShuttingDown: deps.isShuttingDown,
    readiness: {
      ari: () => (gateway.isConnected() ? undefined : 'ARI WebSocket is not connected'),
      store: async () => {
        if (journal.failing()) return 'store writes are failing (see the logs)';
        await store.ping(); // the database answers even when nothing is being written
        return undefined;
      },
    },
    routers: {
      ...(simulator ? { '/sim': simulator.controlRouter() } : {}),
      '/console': createConsoleRoutes(),
    },
    ...createApi({
      config,
      control: deps.calls,
      registry,
      logger,
      store,
      security: deps.security,
      tokens: deps.tokens,
      idempotency: deps.idempotency.calls,
      recordings: deps.recordings,
      autocalls: { service: deps.autocalls, idempotency: deps.idempotency.autocalls },
      operators: { presence: deps.presence },
      ...(deps.connector ? { connector: deps.connector } : {}),
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
  return {
    app,
    server,
    async listening() {
      await once(server, 'listening');
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
  };
}
