/**
 * The Bitrix24 connector (REST, form-encoded; guide: docs/connectors/bitrix24.md):
 *
 * - auth: a local application's OAuth tokens (form field `auth`; refreshed on `expired_token`,
 *   ./auth.ts), or an inbound webhook URL (`https://<portal>/rest/<user>/<secret>/`, whose
 *   secret never reaches the logs or the delivery log); the REST client: ./rest-client.ts;
 * - route: `crm.duplicate.findbycomm` → the first entity found, in BITRIX24_ENTITY_TYPES order →
 *   `crm.<entity>.get` → its `ASSIGNED_BY_ID`'s extension is rung first, then the fallback
 *   route; the entity's name and card link go into the call (./route-lookup.ts);
 * - call events: `telephony.externalcall.register` at the call's start (inbound: when the first
 *   operator's phone rings), `.show` / `.hide` for each operator whose phone rings / stopped
 *   ringing, `.finish` at the end, `.attachRecord` once the recording is ready
 *   (./call-events.ts decides, ./externalcall.ts builds the requests, ./mapping.ts maps the
 *   values); the returned `CALL_ID` is kept in the connector state (`call:<id>`,
 *   ./call-state.ts), so the call's later requests find it after a restart;
 * - employee ↔ extension: `user.get` (`UF_PHONE_INNER`), refreshed periodically,
 *   BITRIX24_EXTENSIONS overriding it (./users.ts);
 * - the endpoints Bitrix24 calls (the application's install, click-to-call
 *   `ONEXTERNALCALLSTART`): ./routes.ts, bound by {@link Bitrix24Connector.bind}.
 *
 * Bitrix24 answers errors as `{"error", "error_description"}`: `expired_token` /
 * `invalid_token` refresh the tokens before the retry, `QUERY_LIMIT_EXCEEDED` (and the other
 * load limits) back off, other 4xx (validation) settle the event `rejected` with the message.
 */
import type { Router } from 'express';
import type { Dispatcher } from 'undici';
import type { LifecycleEventType } from '../../events/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ConnectorStateRepository } from '../../store/connector-state.ts';
import type { CallRepository } from '../../store/index.ts';
import { ExtensionDirectory } from '../extensions.ts';
import type { Connector, ConnectorDeps, ExtensionEntry, VendorResponse } from '../types.ts';
import { Bitrix24OAuth, type Bitrix24Tokens } from './auth.ts';
import { createCallEventTranslation } from './call-events.ts';
import { Bitrix24CallStates } from './call-state.ts';
import { createExternalCallRequests } from './externalcall.ts';
import type { RestValue } from './mapping.ts';
import { createBitrix24RestClient } from './rest-client.ts';
import { createRouteLookup, type Bitrix24EntityType } from './route-lookup.ts';
import { createBitrix24Routes, EVENTS_PATH } from './routes.ts';
import { loadExtensions } from './users.ts';

export type { Bitrix24EntityType } from './route-lookup.ts';

/** Options of {@link createBitrix24Connector}; normally filled from the configuration. */
export interface Bitrix24Options {
  /** BITRIX24_URL: the portal (local application). */
  url?: string;
  /** BITRIX24_WEBHOOK_URL: an inbound webhook instead of the application. Never logged. */
  webhookUrl?: string;
  /** The local application (with `url`). Secrets never logged. */
  oauth?: {
    clientId: string;
    clientSecret: string;
    oauthUrl: string;
    accessToken?: string;
    refreshToken?: string;
  };
  /** BITRIX24_APPLICATION_TOKEN: what Bitrix24 events carry in `auth[application_token]`. */
  applicationToken?: string;
  /** BITRIX24_CRM_CREATE. */
  crmCreate: boolean;
  /** BITRIX24_ADD_TO_CHAT. */
  addToChat: boolean;
  /** BITRIX24_ENTITY_TYPES, in order of preference. */
  entityTypes: readonly Bitrix24EntityType[];
  /** BITRIX24_DEFAULT_USER_ID. */
  defaultUserId: string;
  /** PUBLIC_URL: where Bitrix24 reaches the engine (event.bind). */
  publicUrl?: string;
  /** BITRIX24_EXTENSIONS. */
  overrides: readonly ExtensionEntry[];
  /** CONNECTOR_EXTENSIONS_REFRESH_MS. */
  refreshMs: number;
  /** CONNECTOR_TIMEOUT_MS: one request. */
  timeoutMs: number;
  /** BITRIX24_RATE_LIMIT_PER_SEC. */
  ratePerSec: number;
  /** RING_TIMEOUT_SEC: ring time of the manager's extension when the fallback has none. */
  defaultRingTimeoutSec: number;
  /** Stored calls (start time, legs). */
  calls: Pick<CallRepository, 'getCall'>;
  /** The connector state (tokens, CALL_IDs); read lazily, the store opens later. */
  state: () => ConnectorStateRepository | undefined;
  logger: Logger;
  /** undici dispatcher (tests); default undici's global one. */
  dispatcher?: Dispatcher;
}

/** The Bitrix24 connector with its extras. */
export interface Bitrix24Connector extends Connector {
  readonly name: 'bitrix24';
  readonly directory: ExtensionDirectory;
  /** The OAuth tokens (absent with a webhook URL). */
  readonly oauth: Bitrix24OAuth | undefined;
  /** Call REST method `method` with `params` (auth added; one retry after a token refresh). */
  call(
    method: string,
    params: Record<string, RestValue>,
    signal?: AbortSignal,
  ): Promise<VendorResponse>;
  /**
   * Bind the click-to-call event: `event.bind` `ONEXTERNALCALLSTART` → PUBLIC_URL +
   * `/connectors/bitrix24/events` (applications only).
   *
   * @throws Error when PUBLIC_URL is not set or the connector uses a webhook URL
   */
  bind(): Promise<VendorResponse>;
}

/** The event types the Bitrix24 connector translates. */
const EVENT_TYPES: ReadonlySet<LifecycleEventType> = new Set([
  'call.started',
  'call.ringing',
  'call.answered',
  'call.ended',
  'recording.ready',
]);

/** Create the connector (see the module comment). */
export function createBitrix24Connector(options: Bitrix24Options): Bitrix24Connector {
  const { logger } = options;
  if (!options.webhookUrl && !(options.url && options.oauth))
    throw new Error('Bitrix24 needs BITRIX24_WEBHOOK_URL, or BITRIX24_URL with the application');
  const webhook = options.webhookUrl ? new URL(options.webhookUrl) : undefined;
  const portal = webhook ? webhook.origin : new URL(options.url!).origin;
  const restBase = webhook
    ? webhook.origin + webhook.pathname.replace(/\/+$/, '')
    : `${new URL(options.url!).origin}/rest`;
  /** The REST base as the delivery log shows it: a webhook's secret replaced by `***`. */
  const shownBase = webhook ? restBase.replace(/\/[^/]+$/, '/***') : restBase;
  const oauth =
    !webhook && options.oauth
      ? new Bitrix24OAuth({
          clientId: options.oauth.clientId,
          clientSecret: options.oauth.clientSecret,
          oauthUrl: options.oauth.oauthUrl,
          initial: {
            ...(options.oauth.accessToken ? { accessToken: options.oauth.accessToken } : {}),
            ...(options.oauth.refreshToken ? { refreshToken: options.oauth.refreshToken } : {}),
          },
          state: options.state,
          timeoutMs: options.timeoutMs,
          logger,
          ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
        })
      : undefined;
  const states = new Bitrix24CallStates(options.state);
  const rest = createBitrix24RestClient({
    restBase,
    shownBase,
    oauth,
    states,
    ratePerSec: options.ratePerSec,
    timeoutMs: options.timeoutMs,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  const { call } = rest;
  const directory = new ExtensionDirectory({
    load: (signal) => loadExtensions(call, signal),
    overrides: options.overrides,
    refreshMs: options.refreshMs,
    timeoutMs: options.timeoutMs * 5,
    logger,
  });
  const translate = createCallEventTranslation({
    states,
    requests: createExternalCallRequests({
      callRequest: rest.callRequest,
      crmCreate: options.crmCreate,
      addToChat: options.addToChat,
    }),
    directory,
    calls: options.calls,
    defaultUserId: options.defaultUserId,
    logger,
  });
  const lookupRoute = createRouteLookup({
    call,
    directory,
    portal,
    entityTypes: options.entityTypes,
    defaultRingTimeoutSec: options.defaultRingTimeoutSec,
  });

  async function bind(): Promise<VendorResponse> {
    if (!options.publicUrl)
      throw new Error('PUBLIC_URL must be set: Bitrix24 sends its events to that address');
    if (!oauth)
      throw new Error('event.bind needs the local application (a webhook URL cannot bind events)');
    return call('event.bind', {
      event: 'ONEXTERNALCALLSTART',
      handler: options.publicUrl.replace(/\/+$/, '') + EVENTS_PATH,
    });
  }

  return {
    name: 'bitrix24',
    eventTypes: EVENT_TYPES,
    client: rest.client,
    directory,
    oauth,
    call,
    bind,
    lookupRoute,
    translate,
    ...(oauth ? { refreshAuth: () => oauth.refresh() } : {}),
    router(deps: ConnectorDeps): Router {
      return createBitrix24Routes({
        applicationToken: () => options.applicationToken ?? oauth?.applicationToken(),
        directory,
        deps,
        logger,
        install: oauth
          ? async (tokens: Bitrix24Tokens) => {
              const check = await rest.verifyToken(tokens.accessToken, options.oauth?.clientId);
              if (check) throw new Error(check);
              await oauth.install(tokens);
              void directory.refresh();
            }
          : undefined,
      });
    },
    start(): void {
      directory.start();
      states.purgeOld(logger);
    },
    stop: () => directory.stop(),
  };
}
