/**
 * The CRM connector contract: a connector translates the engine's neutral lifecycle events and
 * route lookups into one vendor's API (`CRM_CONNECTOR=retailcrm|bitrix24|amocrm`; the default
 * `webhook` is the engine's own route lookup and signed webhooks, no connector). Guide:
 * docs/connectors.md.
 *
 * What the framework does around a connector (src/connectors/delivery.ts, ./http.ts):
 * - every event type in {@link Connector.eventTypes} gets a row in the connector's durable
 *   outbox with the event itself (same transaction), so vendor calls survive a restart;
 * - events of one call are delivered in order (the next only after the previous one settled),
 *   different calls concurrently; every attempt is in the delivery log
 *   (`GET /v1/webhooks/deliveries`, `url` = the vendor endpoint);
 * - the vendor HTTP client ({@link VendorHttpClient}) respects the vendor's rate limits and
 *   classifies answers: 2xx ok; 401 → the connector's {@link Connector.refreshAuth} (vendors
 *   with refresh tokens), then a retry; 429 → retry no sooner than `Retry-After`; 5xx,
 *   timeouts, connection errors → retry with backoff; another 4xx (a validation error) →
 *   the event is settled `rejected` with the vendor's message;
 * - route lookups keep the route client's hard timeout, cache and fallback
 *   (src/crm/route-client.ts): a connector only supplies {@link Connector.lookupRoute}.
 *
 * How the three vendors fit:
 * - **retailCRM** (src/connectors/retailcrm/): `X-API-KEY` header, form-encoded requests with a
 *   JSON field (`event=`, `calls=`, `integrationModule=`); route from `telephony/manager`;
 *   extensions from the module's `additionalCodes`; click-to-call arrives at `makeCallUrl`.
 * - **Bitrix24**: OAuth of a local application with refresh tokens (`refreshAuth` swaps the
 *   refresh token for a new access token, kept in the store, before the retry), or an inbound
 *   webhook URL. Form-encoded requests (`telephony.externalcall.register` / `.show` / `.hide` /
 *   `.finish` / `.attachRecord`); `register` returns a `CALL_ID` the connector keeps per call
 *   (the store's `connector_state`, src/store/connector-state.ts, keyed by the engine's call
 *   id; `ConnectorFactoryDeps.state`). Click-to-call arrives as the
 *   form-encoded `ONEXTERNALCALLSTART` event (`data[...]`, `auth[application_token]`) at the
 *   connector's router. Extensions from `user.get` (`UF_PHONE_INNER`).
 * - **amoCRM / Kommo**: a long-lived bearer token (no refresh: `refreshAuth` absent, a 401 is
 *   retried until the token is replaced), JSON bodies (`POST /api/v2/events`,
 *   `POST /api/v4/calls`); extensions from configuration only.
 */
import type { RequestHandler, Router } from 'express';
import type { Route, RouteLookupRequest } from '../crm/types.ts';
import type { LifecycleEvent, LifecycleEventType } from '../events/types.ts';

/** The values of `CRM_CONNECTOR`. */
export const CONNECTOR_NAMES = ['webhook', 'retailcrm', 'bitrix24', 'amocrm'] as const;
/** A value of `CRM_CONNECTOR`. */
export type ConnectorName = (typeof CONNECTOR_NAMES)[number];

/**
 * One request to the vendor. `form` is sent `application/x-www-form-urlencoded` (values as
 * given; a JSON field is a string the connector serialised), `json` as `application/json`.
 */
export interface VendorRequest {
  method: 'GET' | 'POST';
  /** Path below the vendor's base URL, e.g. `/api/v5/telephony/call/event`. */
  path: string;
  /** Query parameters (GET). */
  query?: Record<string, string>;
  form?: Record<string, string>;
  json?: unknown;
  /**
   * Rate-limit bucket (retailCRM: `telephony` for `/api/v5/telephony/*`, 40 requests/s, beside
   * the key's 10/s); default the key's bucket only.
   */
  bucket?: string;
}

/** The vendor's answer to a {@link VendorRequest}. */
export type VendorResponse =
  | {
      ok: true;
      status: number;
      /** The parsed JSON body; undefined when the body was empty or not JSON. */
      json: unknown;
      /** The endpoint without credentials (the delivery log). */
      url: string;
    }
  | {
      ok: false;
      /** `rejected`: a permanent 4xx; `retry`: worth trying again (5xx, 429, 401, timeout…). */
      kind: 'rejected' | 'retry';
      status?: number;
      /** Short log-safe detail: the vendor's message when it gave one. */
      detail: string;
      /** From `Retry-After` (429, 503), ms. */
      retryAfterMs?: number;
      url: string;
    };

/** Sends {@link VendorRequest}s (./http.ts). */
export interface VendorHttpClient {
  /** Send one request, waiting for the rate limiter first. Never throws (errors are answers). */
  request(request: VendorRequest, signal?: AbortSignal): Promise<VendorResponse>;
}

/** The translation of one lifecycle event: the vendor requests to send, in order. */
export type EventTranslation = VendorRequest[];

/**
 * Employee ↔ extension of a CRM: the vendor's user id and the engine's operator extension.
 */
export interface ExtensionEntry {
  /** The CRM's user id, as a string. */
  userId: string;
  /** The operator's extension (2-10 digits). */
  extension: string;
}

/** Operator statuses of the engine (`PUT /v1/operators/{ext}/status`). */
export type OperatorStatus = 'available' | 'break' | 'dnd';

/** What a connector gets from the engine. */
export interface ConnectorDeps {
  /**
   * Start a click-to-call with every rule of `POST /v1/calls` (number normalisation,
   * toll-fraud guard, live-call cap, ARI and store checks). Resolves with the new call's id;
   * rejects with the API's `HttpError` (4xx/503) when refused.
   */
  startClickToCall(request: {
    operator: string;
    to: string;
    /** Who asked (logs, per-key rate limit), e.g. `retailcrm`. */
    requestedBy: string;
    ip: string | undefined;
    variables?: Record<string, string>;
  }): Promise<{ id: string }>;
  /**
   * Set an operator's status (available, break, dnd). Absent while the engine has no operator
   * statuses: status changes from the CRM are then accepted, validated and logged only.
   */
  setOperatorStatus?: (extension: string, status: OperatorStatus) => Promise<void>;
  /**
   * The engine's API key check (`Authorization: Bearer <key>`, API_KEYS), for endpoints a CRM's
   * widget or backend calls with an API key (amoCRM click-to-call): answers 401/403/503 itself;
   * after it, `apiKeyNameOf(res)` (src/security/api-keys.ts) names the key. Absent: such
   * endpoints refuse every request.
   */
  authenticate?: RequestHandler;
}

/** A CRM connector (see the module comment). */
export interface Connector {
  readonly name: Exclude<ConnectorName, 'webhook'>;
  /** Sends its vendor requests (auth, rate limits, answer classification). */
  readonly client: VendorHttpClient;
  /** The lifecycle event types it translates; others never reach it. */
  readonly eventTypes: ReadonlySet<LifecycleEventType>;
  /**
   * Ask the vendor where an inbound call goes. Called by the route client under its hard
   * timeout (`signal` aborts at the deadline); a throw or an `{ok: false}` answer makes the call
   * take the fallback route. `fallback` is the configured fallback route (FALLBACK_ROUTE).
   */
  lookupRoute(
    request: RouteLookupRequest,
    fallback: Route,
    signal: AbortSignal,
  ): Promise<
    | { ok: true; route: Route }
    | { ok: false; reason: 'connection' | 'http_status' | 'invalid_body'; detail: string }
  >;
  /**
   * The vendor requests of one event, in order; empty when the vendor needs nothing for it
   * (the event is then settled as delivered without a request). May read the store (e.g. the
   * call's record for a recording that became ready later). Throws `TranslationDeferred`
   * (./delivery.ts) when the event must wait (tried again later, in order); otherwise throws
   * only on a bug or a store failure (the event is retried).
   */
  translate(event: LifecycleEvent): Promise<EventTranslation>;
  /**
   * Interpret a 2xx answer that still reports a failure (retailCRM `success: false`); undefined
   * when the answer is fine. Optional.
   */
  checkAnswer?(request: VendorRequest, json: unknown): string | undefined;
  /**
   * Get fresh credentials after a 401 (OAuth refresh tokens: Bitrix24); absent for vendors
   * with static keys (retailCRM, amoCRM), whose 401 is retried with backoff until the key is
   * fixed.
   */
  refreshAuth?(): Promise<void>;
  /** Routes the CRM calls (click-to-call, status changes), mounted at `/`; they authenticate themselves. */
  router(deps: ConnectorDeps): Router;
  /** Start background work (the periodic employee ↔ extension refresh). */
  start(): void;
  /** Stop background work. */
  stop(): void;
}
