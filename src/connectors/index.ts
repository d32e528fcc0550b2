/**
 * CRM connectors (`CRM_CONNECTOR`): the contract (./types.ts), the vendor HTTP client
 * (./http.ts), the delivery target over the durable outbox (./delivery.ts), the employee ↔
 * extension directory (./extensions.ts), and one folder per vendor. Guide: docs/connectors.md.
 */
import type { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { ConfigCheck } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { WebhookDispatcher } from '../events/dispatcher.ts';
import { deliveryRetry } from '../events/index.ts';
import type { Logger } from '../logging/logger.ts';
import { DurableEventQueue } from '../store/durable-queue.ts';
import type { Store } from '../store/store.ts';
import type { CallRepository, ConnectorStateRepository } from '../store/index.ts';
import { createConnectorDelivery } from './delivery.ts';
import { createAmoCrmConnector, type AmoCrmConnector } from './amocrm/connector.ts';
import { createBitrix24Connector, type Bitrix24Connector } from './bitrix24/connector.ts';
import { createRetailCrmConnector, type RetailCrmConnector } from './retailcrm/connector.ts';
import type { Connector } from './types.ts';

export type * from './types.ts';
export { CONNECTOR_NAMES } from './types.ts';
export {
  createConnectorDelivery,
  TranslationDeferred,
  type ConnectorDeliveryOptions,
} from './delivery.ts';
export {
  createAmoCrmConnector,
  type AmoCrmConnector,
  type AmoCrmOptions,
} from './amocrm/connector.ts';
export { ExtensionDirectory, type ExtensionDirectoryOptions } from './extensions.ts';
export { createVendorHttpClient, type VendorHttpClientOptions } from './http.ts';
export {
  createRetailCrmConnector,
  type RetailCrmConnector,
  type RetailCrmOptions,
} from './retailcrm/connector.ts';
export {
  createBitrix24Connector,
  type Bitrix24Connector,
  type Bitrix24Options,
} from './bitrix24/connector.ts';
export { ringFirst } from './route.ts';

/** The variables each connector requires. */
const REQUIRED: Readonly<Record<string, ReadonlyArray<keyof Config>>> = {
  retailcrm: ['RETAILCRM_URL', 'RETAILCRM_API_KEY', 'RETAILCRM_CLIENT_ID'],
  amocrm: ['AMOCRM_URL', 'AMOCRM_TOKEN'],
};

/**
 * The base URL of the CRM the configured connector talks to (the delivery log's label of
 * events that need no request); undefined for `webhook`.
 */
export function connectorBaseUrl(config: Config): string | undefined {
  switch (config.CRM_CONNECTOR) {
    case 'retailcrm':
      return config.RETAILCRM_URL;
    case 'amocrm':
      return config.AMOCRM_URL;
    case 'bitrix24':
      return (
        config.BITRIX24_URL ??
        (config.BITRIX24_WEBHOOK_URL ? new URL(config.BITRIX24_WEBHOOK_URL).origin : undefined)
      );
    default:
      return undefined;
  }
}

/**
 * Problems of the connector settings, one line each: a variable the chosen connector requires
 * is missing, or the connector is not available in this version.
 */
export const connectorConfigCheck: ConfigCheck = (config) => {
  const name = config.CRM_CONNECTOR;
  if (name === 'webhook') return [];
  if (name === 'bitrix24') return bitrix24ConfigProblems(config);
  const required = REQUIRED[name];
  if (!required) return [`CRM_CONNECTOR: the ${name} connector is not available in this version`];
  return required
    .filter((key) => config[key] === undefined || config[key] === '')
    .map((key) => `${key}: required when CRM_CONNECTOR=${name}`);
};

/**
 * Bitrix24 needs an inbound webhook URL, or the portal with the local application (its client
 * id and secret; tokens come from the configuration or the install handler).
 */
function bitrix24ConfigProblems(config: Config): string[] {
  if (config.BITRIX24_WEBHOOK_URL) return [];
  if (!config.BITRIX24_URL)
    return [
      'BITRIX24_URL (with BITRIX24_CLIENT_ID and BITRIX24_CLIENT_SECRET) or BITRIX24_WEBHOOK_URL: required when CRM_CONNECTOR=bitrix24',
    ];
  return (['BITRIX24_CLIENT_ID', 'BITRIX24_CLIENT_SECRET'] as const)
    .filter((key) => !config[key])
    .map((key) => `${key}: required when CRM_CONNECTOR=bitrix24 with BITRIX24_URL`);
}

/** What {@link createConnector} needs besides the configuration. */
export interface ConnectorFactoryDeps {
  calls: Pick<CallRepository, 'getCall'>;
  logger: Logger;
  /** undici dispatcher for vendor requests (tests); default undici's global one. */
  dispatcher?: Dispatcher;
  /**
   * The connector's state in the store (`connector_state`: Bitrix24's OAuth tokens and
   * CALL_IDs), read lazily because the store opens after the connector is built; undefined:
   * in memory only.
   */
  state?: () => ConnectorStateRepository | undefined;
}

/**
 * The connector `CRM_CONNECTOR` names; undefined for `webhook` (no connector).
 *
 * @throws Error when the connector's settings are incomplete (see {@link connectorConfigCheck})
 */
export function createConnector(config: Config, deps: ConnectorFactoryDeps): Connector | undefined {
  const problems = connectorConfigCheck(config);
  if (problems.length > 0) throw new Error(problems.join('; '));
  switch (config.CRM_CONNECTOR) {
    case 'webhook':
      return undefined;
    case 'retailcrm':
      return retailCrmFromConfig(config, deps);
    case 'bitrix24':
      return bitrix24FromConfig(config, deps);
    case 'amocrm':
      return amoCrmFromConfig(config, deps);
    default: {
      const unknown: never = config.CRM_CONNECTOR;
      throw new Error(`unknown connector ${String(unknown)}`);
    }
  }
}

/** The retailCRM connector from the configuration (RETAILCRM_*). */
export function retailCrmFromConfig(
  config: Config,
  deps: ConnectorFactoryDeps,
): RetailCrmConnector {
  return createRetailCrmConnector({
    url: config.RETAILCRM_URL!,
    apiKey: config.RETAILCRM_API_KEY!,
    clientId: config.RETAILCRM_CLIENT_ID!,
    moduleCode: config.RETAILCRM_MODULE_CODE,
    timeZone: config.RETAILCRM_TIME_ZONE,
    ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
    overrides: config.RETAILCRM_EXTENSIONS,
    refreshMs: config.CONNECTOR_EXTENSIONS_REFRESH_MS,
    timeoutMs: config.CONNECTOR_TIMEOUT_MS,
    ratePerSec: config.RETAILCRM_RATE_LIMIT_PER_SEC,
    telephonyRatePerSec: config.RETAILCRM_TELEPHONY_RATE_LIMIT_PER_SEC,
    defaultRingTimeoutSec: config.RING_TIMEOUT_SEC,
    calls: deps.calls,
    logger: deps.logger.child({ component: 'connector', connector: 'retailcrm' }),
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
  });
}

/** The Bitrix24 connector from the configuration (BITRIX24_*). */
export function bitrix24FromConfig(config: Config, deps: ConnectorFactoryDeps): Bitrix24Connector {
  const webhook = Boolean(config.BITRIX24_WEBHOOK_URL);
  return createBitrix24Connector({
    ...(webhook ? { webhookUrl: config.BITRIX24_WEBHOOK_URL! } : {}),
    ...(config.BITRIX24_URL ? { url: config.BITRIX24_URL } : {}),
    ...(!webhook && config.BITRIX24_CLIENT_ID && config.BITRIX24_CLIENT_SECRET
      ? {
          oauth: {
            clientId: config.BITRIX24_CLIENT_ID,
            clientSecret: config.BITRIX24_CLIENT_SECRET,
            oauthUrl: config.BITRIX24_OAUTH_URL,
            ...(config.BITRIX24_ACCESS_TOKEN ? { accessToken: config.BITRIX24_ACCESS_TOKEN } : {}),
            ...(config.BITRIX24_REFRESH_TOKEN
              ? { refreshToken: config.BITRIX24_REFRESH_TOKEN }
              : {}),
          },
        }
      : {}),
    ...(config.BITRIX24_APPLICATION_TOKEN
      ? { applicationToken: config.BITRIX24_APPLICATION_TOKEN }
      : {}),
    crmCreate: config.BITRIX24_CRM_CREATE,
    addToChat: config.BITRIX24_ADD_TO_CHAT,
    entityTypes: config.BITRIX24_ENTITY_TYPES,
    defaultUserId: config.BITRIX24_DEFAULT_USER_ID,
    ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
    overrides: config.BITRIX24_EXTENSIONS,
    refreshMs: config.CONNECTOR_EXTENSIONS_REFRESH_MS,
    timeoutMs: config.CONNECTOR_TIMEOUT_MS,
    ratePerSec: config.BITRIX24_RATE_LIMIT_PER_SEC,
    defaultRingTimeoutSec: config.RING_TIMEOUT_SEC,
    calls: deps.calls,
    state: deps.state ?? (() => undefined),
    logger: deps.logger.child({ component: 'connector', connector: 'bitrix24' }),
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
  });
}

/** The amoCRM / Kommo connector from the configuration (AMOCRM_*). */
export function amoCrmFromConfig(config: Config, deps: ConnectorFactoryDeps): AmoCrmConnector {
  return createAmoCrmConnector({
    url: config.AMOCRM_URL!,
    token: config.AMOCRM_TOKEN!,
    users: config.AMOCRM_USERS,
    source: config.AMOCRM_CALL_SOURCE,
    recordingWaitSec: config.AMOCRM_RECORDING_WAIT_SEC,
    timeoutMs: config.CONNECTOR_TIMEOUT_MS,
    ratePerSec: config.AMOCRM_RATE_LIMIT_PER_SEC,
    defaultRingTimeoutSec: config.RING_TIMEOUT_SEC,
    calls: deps.calls,
    logger: deps.logger.child({ component: 'connector', connector: 'amocrm' }),
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
  });
}

/** What {@link openConnectorDelivery} needs besides the connector. */
export interface ConnectorDeliveryDeps {
  config: Config;
  /**
   * The store, claimed and migrated, opened with the connector's outbox
   * (`StoreOptions.connectorOutbox`).
   */
  store: Pick<Store, 'connectorOutbox' | 'writeBatch'>;
  logger: Logger;
  registry: Registry;
}

/**
 * The delivery of the connector's vendor requests: the webhooks' outbox machinery over the
 * connector's own durable outbox, whose events an earlier run did not deliver are resumed (logged
 * when there are some). Attempts time out after three times CONNECTOR_TIMEOUT_MS and are retried
 * like webhooks (WEBHOOK_RETRY_*, WEBHOOK_MAX_AGE_MS).
 *
 * @throws the store's error when the outbox cannot be read
 */
export async function openConnectorDelivery(
  connector: Connector,
  deps: ConnectorDeliveryDeps,
): Promise<WebhookDispatcher> {
  const { config, store } = deps;
  const logger = deps.logger.child({ component: 'connector', connector: connector.name });
  const queue = await DurableEventQueue.open(store.connectorOutbox!, {
    logger,
    url: connectorBaseUrl(config),
    persistAppends: false, // the journal commits each event with its connector row
    transaction: (fn) => store.writeBatch((repos) => fn(repos.connectorOutbox!)),
  });
  if (queue.size() > 0)
    deps.logger.info('resuming undelivered CRM connector requests of an earlier run', {
      events: queue.size(),
    });
  return createConnectorDelivery({
    connector,
    client: connector.client,
    queue,
    url: connectorBaseUrl(config) ?? connector.name,
    timeoutMs: config.CONNECTOR_TIMEOUT_MS * 3,
    retry: deliveryRetry(config),
    logger,
    registry: deps.registry,
  });
}
