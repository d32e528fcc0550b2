/**
 * The engine's clients of the CRM, built by the composition root (src/main.ts): the CRM connector
 * of CRM_CONNECTOR and the route client over it or over CRM_ROUTE_URL, sharing one outbound HTTP
 * pool.
 */
import type { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/schema.ts';
import { createConnector, type Connector } from '../connectors/index.ts';
import { createRouteClient, parseRouteSpec, type RouteClient } from '../crm/index.ts';
import { createOutboundClient, type OutboundClient } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import { createConnectorState } from '../store/connector-state.ts';
import type { Store } from '../store/store.ts';

/** The engine's clients of the CRM, see {@link createCrmClients}. */
export interface CrmClients {
  /** The CRM connector (CRM_CONNECTOR other than `webhook`), not started yet. */
  connector?: Connector;
  /** The keep-alive undici pool of every CRM request (route lookups, webhooks), closed at stop. */
  outbound: OutboundClient;
  /** Route lookups: the connector's, else CRM_ROUTE_URL's, with FALLBACK_ROUTE. */
  routes: RouteClient;
  /** Give the connector the store once it exists (it reads stored calls and keeps its state). */
  storeOpened(store: Store): void;
}

/**
 * The CRM connector (CRM_CONNECTOR, src/connectors/: route lookups, call events and the call
 * history in the vendor's API) and the route client over it or CRM_ROUTE_URL (src/crm/). Built
 * before the store opens: the connector reads stored calls and its state through it once
 * `storeOpened` gave it.
 *
 * @param connectorDispatcher the undici dispatcher of the connector's requests (tests: a mock)
 */
export function createCrmClients(
  config: Config,
  logger: Logger,
  registry: Registry,
  connectorDispatcher?: Dispatcher,
): CrmClients {
  const storeRef: { store?: Store } = {};
  const connector = createConnector(config, {
    calls: { getCall: (id) => storeRef.store!.calls.getCall(id) },
    state: () =>
      storeRef.store ? createConnectorState(storeRef.store.db, config.CRM_CONNECTOR) : undefined,
    logger,
    ...(connectorDispatcher ? { dispatcher: connectorDispatcher } : {}),
  });
  const fallbackRoute = parseRouteSpec(config.FALLBACK_ROUTE, config.RING_TIMEOUT_SEC);
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
  return {
    ...(connector ? { connector } : {}),
    outbound,
    routes,
    storeOpened(store) {
      storeRef.store = store;
    },
  };
}
