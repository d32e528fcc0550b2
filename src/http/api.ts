/**
 * The public API's parts, built from the configuration over a {@link CallControl} and the
 * engine's shared security objects (src/security/index.ts `createSecurity`): API keys and the IP
 * allow-list, the toll-fraud guard, the `/v1` call routes, the asterisk.fcgi compatibility path
 * and the OpenAPI document. `createHttp` (./index.ts) hands them to {@link createHttpApp}; tests
 * do the same with a fake CallControl.
 */
import express from 'express';
import type { Registry } from 'prom-client';
import {
  createAutocallRoutes,
  type AutocallService,
  type StoredAutocallCreation,
} from '../autocalls/index.ts';
import type { CallControl } from '../calls/control.ts';
import {
  createCallRoutes,
  normaliseNumberOrThrow,
  startGuardedClickToCall,
  type StoredCallCreation,
} from '../calls/routes.ts';
import type { Connector, ConnectorDeps } from '../connectors/types.ts';
import { COMPAT_KEY_PARAMETER, compatErrorHandler, createCompatRouter } from '../compat/router.ts';
import type { Config } from '../config/schema.ts';
import { createEventRoutes } from '../events/routes.ts';
import type { Logger } from '../logging/logger.ts';
import {
  createOperatorRoutes,
  type OperatorAuthorizer,
  type PresenceService,
} from '../operators/index.ts';
import type { RecordingHttp } from '../recordings/index.ts';
import { requireApiKey } from '../security/api-keys.ts';
import { CallGuard } from '../security/guard.ts';
import type { Security } from '../security/index.ts';
import { allowListFilter } from '../security/ip.ts';
import { createSecurityMetrics } from '../security/metrics.ts';
import {
  acceptOperatorTokens,
  CONNECTOR_TOKEN_ROUTES,
  OperatorTokens,
  type CallParties,
} from '../security/operator-tokens.ts';
import { createStreamRoutes } from '../stream/routes.ts';
import type { CallRepository, EventRepository } from '../store/index.ts';
import type { HttpAppOptions } from './app.ts';
import { IdempotencyStore } from './idempotency.ts';
import { buildOpenApiDocument } from './openapi/index.ts';
import { WorkstationMap } from './workstations.ts';

/** What {@link createApi} needs. */
export interface ApiDeps {
  config: Pick<
    Config,
    | 'DEFAULT_REGION'
    | 'CALLS_RATE_LIMIT_PER_MIN'
    | 'MAX_LIVE_ORIGINATED_CALLS'
    | 'CLICK_TO_CALL_TRIES'
    | 'CLICK_TO_CALL_TRIES_PERIOD_SEC'
    | 'CLICK_TO_CALL_RING_TIMEOUT_SEC'
    | 'OUTBOUND_RING_TIMEOUT_SEC'
    | 'OPERATOR_IP_MAP'
    | 'COMPAT_PATH'
    | 'IDEMPOTENCY_TTL_MS'
    | 'API_STORE_WAIT_MS'
    | 'OPERATOR_TOKEN_DEFAULT_TTL_SEC'
  >;
  /**
   * The engine's security objects (src/security/index.ts `createSecurity`), the same ones the
   * live stream and the operators' dial guard use: API_KEYS (`apiKeys`), HTTP_ALLOWED_CIDRS
   * (`allowList`) and the toll-fraud guard's destination policy (`destinations`).
   */
  security: Pick<Security, 'apiKeys' | 'allowList' | 'destinations'>;
  /**
   * Operator tokens (src/security/operator-tokens.ts): minted by
   * `POST /v1/operators/{extension}/tokens` and accepted instead of an API key on the routes a
   * browser console needs. Absent: the route answers 503 `operator_tokens_not_configured` and
   * only API keys are accepted.
   */
  tokens?: OperatorTokens;
  control: CallControl;
  /** The engine's registry: the security counters go there. */
  registry: Registry;
  logger: Logger;
  /**
   * The durable store: call history, stored call details, the pull feed and the
   * delivery log read it (a `Store` fits). Without it those routes answer 503
   * `store_not_configured`.
   */
  store?: {
    calls: Pick<CallRepository, 'getCall' | 'listCalls'>;
    events: Pick<EventRepository, 'feed' | 'deliveries'>;
  };
  /** Download link of a call's recording (`recording.url` of stored calls), when served. */
  recordingUrl?: (callId: string) => string | undefined;
  /**
   * The recordings domain: `GET /v1/calls/{id}/recording`, reachable with an API key
   * or a signed link; also the default of `recordingUrl`.
   */
  recordings?: RecordingHttp;
  /**
   * Remembered `Idempotency-Key` answers (the engine passes one restored from the store);
   * default: a fresh in-memory one with IDEMPOTENCY_TTL_MS.
   */
  idempotency?: IdempotencyStore<StoredCallCreation>;
  /**
   * Notification calls: `/v1/autocalls`, `/v1/campaigns` and the compat path's `autocall` /
   * `autocallstatus` (answered 501 without it).
   */
  autocalls?: {
    service: AutocallService;
    /** Remembered `POST /v1/autocalls` answers; default a fresh in-memory one. */
    idempotency?: IdempotencyStore<StoredAutocallCreation>;
  };
  /**
   * Operator presence: `/v1/operators` (list, one, status). `authorize` decides what a request's
   * principal may do on an extension (default: an API key may do everything).
   */
  operators?: { presence: PresenceService; authorize?: OperatorAuthorizer };
  /**
   * The CRM connector (CRM_CONNECTOR): its endpoints for the CRM (click-to-call, status
   * changes) are mounted at `/` and authenticate themselves; their click-to-calls pass the same
   * toll-fraud guard as `POST /v1/calls`.
   */
  connector?: {
    connector: Pick<Connector, 'name' | 'router'>;
    setOperatorStatus?: ConnectorDeps['setOperatorStatus'];
  };
}

/** The parts of {@link HttpAppOptions} the public API fills. */
export type ApiParts = Required<
  Pick<
    HttpAppOptions,
    | 'authenticate'
    | 'apiRouters'
    | 'selfAuthenticatingRouters'
    | 'errorRenderers'
    | 'openApiDocument'
  >
> &
  Pick<HttpAppOptions, 'clientFilter' | 'largeBodies'>;

/**
 * Build the API. Logs a warning once when API_KEYS is empty (every API route then answers 503
 * `api_keys_not_configured`).
 */
export function createApi(deps: ApiDeps): ApiParts {
  const { config, control, registry, logger } = deps;
  const { apiKeys: keys, allowList, destinations } = deps.security;
  const metrics = createSecurityMetrics(registry);
  if (!keys.configured)
    logger.warn(
      'API_KEYS is not set: every API route answers 503 api_keys_not_configured (set API_KEYS=name:key)',
    );
  const guard = new CallGuard({
    destinations,
    callsPerMinute: config.CALLS_RATE_LIMIT_PER_MIN,
    maxLiveCalls: config.MAX_LIVE_ORIGINATED_CALLS,
    liveCalls: () => control.liveOriginatedCalls(),
    logger,
    metrics,
  });
  const workstations = new WorkstationMap(config.OPERATOR_IP_MAP);
  const defaults = {
    tries: config.CLICK_TO_CALL_TRIES,
    triesPeriodSec: config.CLICK_TO_CALL_TRIES_PERIOD_SEC,
  };
  const calls = createCallRoutes({
    control,
    guard,
    idempotency:
      deps.idempotency ?? new IdempotencyStore<StoredCallCreation>(config.IDEMPOTENCY_TTL_MS),
    region: config.DEFAULT_REGION,
    defaults,
    workstations,
    logger,
    storeWaitMs: config.API_STORE_WAIT_MS,
    calls: deps.store?.calls,
    recordingUrl: deps.recordingUrl ?? deps.recordings?.recordingUrl,
    ...(deps.recordings ? { scriptRecordings: deps.recordings.scriptRecordings } : {}),
  });
  const v1 = express.Router();
  if (deps.recordings) v1.use(deps.recordings.router);
  v1.use(calls, createEventRoutes({ events: deps.store?.events }));
  // Notification calls get the same destination policy and per-key rate (a budget of their
  // own); their live-call cap is the scheduler's (AUTOCALL_MAX_LIVE_CALLS): jobs queue.
  const autocalls = deps.autocalls
    ? {
        service: deps.autocalls.service,
        guard: new CallGuard({
          destinations,
          callsPerMinute: config.CALLS_RATE_LIMIT_PER_MIN,
          maxLiveCalls: Number.MAX_SAFE_INTEGER,
          liveCalls: () => 0,
          logger,
          metrics,
        }),
      }
    : undefined;
  if (deps.operators)
    v1.use(
      createOperatorRoutes({
        presence: deps.operators.presence,
        ...(deps.operators.authorize ? { authorize: deps.operators.authorize } : {}),
      }),
    );
  if (autocalls)
    v1.use(
      createAutocallRoutes({
        ...autocalls,
        idempotency:
          deps.autocalls!.idempotency ??
          new IdempotencyStore<StoredAutocallCreation>(config.IDEMPOTENCY_TTL_MS),
        logger,
      }),
    );
  const compat = createCompatRouter({
    path: config.COMPAT_PATH,
    control,
    guard,
    authenticate: requireApiKey({ keys, logger, metrics, queryParameter: COMPAT_KEY_PARAMETER }),
    workstations,
    region: config.DEFAULT_REGION,
    defaults,
    ...(autocalls ? { autocalls } : {}),
    // Every operator try rings and waits, then the customer rings; one more minute of margin.
    maxWaitMs:
      (config.CLICK_TO_CALL_TRIES *
        (config.CLICK_TO_CALL_RING_TIMEOUT_SEC + config.CLICK_TO_CALL_TRIES_PERIOD_SEC) +
        config.OUTBOUND_RING_TIMEOUT_SEC +
        60) *
      1000,
    logger,
  });
  const tokens = deps.tokens ?? new OperatorTokens({ secrets: [] });
  v1.use(
    createStreamRoutes({
      tokens,
      defaultTtlSec: config.OPERATOR_TOKEN_DEFAULT_TTL_SEC,
      logger,
    }),
  );
  /** A call's parties for the operator token's ownership check: live first, then stored. */
  const callParties = async (callId: string): Promise<CallParties | undefined> =>
    control.getCall(callId) ?? (await deps.store?.calls.getCall(callId));
  const connectorRouters = deps.connector
    ? [
        deps.connector.connector.router({
          async startClickToCall(request) {
            const forms = normaliseNumberOrThrow(request.to, config.DEFAULT_REGION, 'phone');
            const { id } = await startGuardedClickToCall(
              { control, guard, logger, storeWaitMs: config.API_STORE_WAIT_MS },
              {
                operator: request.operator,
                to: forms.e164,
                variables: request.variables,
                tries: defaults.tries,
                triesPeriodSec: defaults.triesPeriodSec,
                requestedBy: request.requestedBy,
              },
              forms,
              request.ip,
            );
            return { id };
          },
          ...(deps.connector.setOperatorStatus
            ? { setOperatorStatus: deps.connector.setOperatorStatus }
            : {}),
          // An API key, or an operator token for a click-to-call from its own extension (a CRM
          // widget in the operator's browser).
          authenticate: acceptOperatorTokens(requireApiKey({ keys, logger, metrics }), {
            tokens,
            callParties,
            routes: CONNECTOR_TOKEN_ROUTES,
          }),
        }),
      ]
    : [];
  const apiKeyAuth = deps.recordings
    ? deps.recordings.allowSignedLinks(requireApiKey({ keys, logger, metrics }))
    : requireApiKey({ keys, logger, metrics });
  return {
    authenticate: acceptOperatorTokens(apiKeyAuth, { tokens, callParties }),
    apiRouters: { '/v1': v1 },
    selfAuthenticatingRouters: [compat, ...connectorRouters],
    errorRenderers: { [config.COMPAT_PATH]: compatErrorHandler(logger) },
    openApiDocument: buildOpenApiDocument({
      compatPath: config.COMPAT_PATH,
      ...(deps.connector ? { connector: deps.connector.connector.name } : {}),
    }),
    clientFilter: allowList.enabled ? allowListFilter({ allowList, logger, metrics }) : undefined,
    // Up to MAX_JOBS_PER_REQUEST jobs in one request: 8 MiB.
    ...(deps.autocalls
      ? {
          largeBodies: {
            applies: (method: string, path: string) =>
              method === 'POST' && /^\/campaigns\/[^/]+\/jobs\/?$/.test(path),
            limitBytes: 8 * 1024 * 1024,
          },
        }
      : {}),
  };
}
