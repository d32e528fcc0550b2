/**
 * The retailCRM connector (API v5, `X-API-KEY`; guide: docs/connectors/retailcrm.md):
 *
 * - route: `GET /api/v5/telephony/manager?phone=<caller>&details=1` → the manager's `code` is
 *   rung first, then the fallback route (FALLBACK_ROUTE); the customer's name becomes the
 *   operator phone's CALLERID(name) (behind OPERATOR_CALLERID_PREFIX) and the customer's card
 *   link (`links.customerLink`) travels in `call.ringing` as `customer.link`;
 * - events: `POST /api/v5/telephony/call/event`, form field `event` = JSON `{phone, type,
 *   codes, callExternalId, externalPhone, hangupStatus}`: `in` when an operator's phone rings
 *   for an inbound call (the CRM pops the customer card for that code), `out` when an operator
 *   calls out, `hangup` when the call ends;
 * - history: `POST /api/v5/telephony/calls/upload`, form field `calls` = JSON array of one call
 *   (`date`, `type`, `phone`, `code`, `result`, `duration`, `durationWaiting`, `externalId`,
 *   `externalPhone`, `recordUrl`) after `call.ended`, and again with `recordUrl` once the
 *   recording is ready (`recording.ready`);
 * - employee ↔ extension: the module's `additionalCodes`
 *   (`GET /api/v5/integration-modules/{code}`), refreshed periodically, RETAILCRM_EXTENSIONS
 *   overriding them;
 * - module registration (`POST /api/v5/integration-modules/{code}/edit`): {@link RetailCrmConnector.register};
 * - the endpoints retailCRM calls (click-to-call `makeCallUrl`, `changeUserStatusUrl`): ./routes.ts.
 *
 * retailCRM answers `{"success": false, "errorMsg": "...", "errors": {...}}` with a 4xx on a
 * validation error: the event is then settled `rejected` with that message.
 */
import type { Router } from 'express';
import type { Dispatcher } from 'undici';
import { EXTENSION_PATTERN, MAX_CUSTOMER_NAME_LENGTH } from '../../crm/index.ts';
import type { Route, RouteLookupRequest } from '../../crm/types.ts';
import type { CallEndedData, LifecycleEvent, LifecycleEventType } from '../../events/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { CallRecord, CallRepository } from '../../store/index.ts';
import { ExtensionDirectory } from '../extensions.ts';
import { createVendorHttpClient } from '../http.ts';
import type {
  Connector,
  ConnectorDeps,
  EventTranslation,
  ExtensionEntry,
  VendorHttpClient,
  VendorRequest,
  VendorResponse,
} from '../types.ts';
import { ringFirst } from '../route.ts';
import { dig, rung, scalar } from '../read.ts';
import { callResult, HANGUP_STATUS, retailCrmDate } from './mapping.ts';
import { createRetailCrmRoutes, MAKE_CALL_PATH, USER_STATUS_PATH } from './routes.ts';

/** Options of {@link createRetailCrmConnector}; normally filled from the configuration. */
export interface RetailCrmOptions {
  /** RETAILCRM_URL, e.g. `https://shop.retailcrm.ru`. */
  url: string;
  /** RETAILCRM_API_KEY (header `X-API-KEY`). Never logged. */
  apiKey: string;
  /** RETAILCRM_CLIENT_ID: what retailCRM sends back as `clientId`. Never logged. */
  clientId: string;
  /** RETAILCRM_MODULE_CODE. */
  moduleCode: string;
  /** RETAILCRM_TIME_ZONE: time zone of uploaded call dates. */
  timeZone: string;
  /** PUBLIC_URL: where retailCRM reaches the engine (registration). */
  publicUrl?: string;
  /** RETAILCRM_EXTENSIONS. */
  overrides: readonly ExtensionEntry[];
  /** CONNECTOR_EXTENSIONS_REFRESH_MS. */
  refreshMs: number;
  /** CONNECTOR_TIMEOUT_MS: one request. */
  timeoutMs: number;
  /** RETAILCRM_RATE_LIMIT_PER_SEC and RETAILCRM_TELEPHONY_RATE_LIMIT_PER_SEC. */
  ratePerSec: number;
  telephonyRatePerSec: number;
  /** RING_TIMEOUT_SEC: ring time of the manager's extension when the fallback has none. */
  defaultRingTimeoutSec: number;
  /** Stored calls (the history upload of a recording that became ready later). */
  calls: Pick<CallRepository, 'getCall'>;
  logger: Logger;
  /** undici dispatcher (tests); default undici's global one. */
  dispatcher?: Dispatcher;
}

/** The retailCRM connector with its extras. */
export interface RetailCrmConnector extends Connector {
  readonly name: 'retailcrm';
  readonly client: VendorHttpClient;
  readonly directory: ExtensionDirectory;
  /** The `integrationModule` JSON the engine registers (see {@link register}). */
  registration(): Record<string, unknown>;
  /**
   * Register (or update) the telephony module: `POST /api/v5/integration-modules/{code}/edit`
   * with form field `integrationModule` = {@link registration}.
   *
   * @throws Error when PUBLIC_URL is not set (retailCRM needs the engine's address)
   */
  register(): Promise<VendorResponse>;
}

/** The event types the retailCRM connector translates. */
const EVENT_TYPES: ReadonlySet<LifecycleEventType> = new Set([
  'call.started',
  'call.ringing',
  'call.ended',
  'recording.ready',
]);

const API = '/api/v5';
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]+/g;

/** Create the connector (see the module comment). */
export function createRetailCrmConnector(options: RetailCrmOptions): RetailCrmConnector {
  const { logger, timeZone } = options;
  const client = createVendorHttpClient({
    baseUrl: options.url,
    headers: { 'x-api-key': options.apiKey },
    ratePerSec: { default: options.ratePerSec, telephony: options.telephonyRatePerSec },
    timeoutMs: options.timeoutMs,
    errorMessage,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  const directory = new ExtensionDirectory({
    load: loadExtensions,
    overrides: options.overrides,
    refreshMs: options.refreshMs,
    timeoutMs: options.timeoutMs,
    logger,
  });
  /** Direction of calls whose events are being translated (started → ended). */
  const directions = new Map<string, 'in' | 'out'>();

  async function loadExtensions(signal: AbortSignal): Promise<ExtensionEntry[]> {
    const answer = await client.request(
      {
        method: 'GET',
        path: `${API}/integration-modules/${encodeURIComponent(options.moduleCode)}`,
      },
      signal,
    );
    if (!answer.ok) {
      // 404: the module is not registered yet; only the configured extensions apply.
      if (answer.status === 404) return [];
      throw new Error(answer.detail);
    }
    const codes = dig(answer.json, [
      'integrationModule',
      'integrations',
      'telephony',
      'additionalCodes',
    ]);
    const entries: ExtensionEntry[] = [];
    if (Array.isArray(codes))
      for (const item of codes as unknown[]) {
        const userId = scalar(dig(item, ['userId']));
        const code = scalar(dig(item, ['code']));
        if (userId && code && EXTENSION_PATTERN.test(code))
          entries.push({ userId, extension: code });
      }
    return entries;
  }

  async function lookupRoute(
    request: RouteLookupRequest,
    fallback: Route,
    signal: AbortSignal,
  ): ReturnType<Connector['lookupRoute']> {
    const answer = await client.request(
      {
        method: 'GET',
        path: `${API}/telephony/manager`,
        query: { phone: request.from, details: '1' },
        bucket: 'telephony',
      },
      signal,
    );
    if (!answer.ok) return { ok: false, reason: 'http_status', detail: answer.detail };
    const json = answer.json;
    if (typeof json !== 'object' || json === null)
      return { ok: false, reason: 'invalid_body', detail: 'not a JSON object' };
    if (dig(json, ['success']) === false)
      return { ok: false, reason: 'http_status', detail: errorMessage(json) ?? 'success: false' };
    const route = ringFirst(
      fallback,
      scalar(dig(json, ['manager', 'code'])),
      customerOf(json),
      options.defaultRingTimeoutSec,
    );
    return { ok: true, route };
  }

  async function callOf(callId: string): Promise<CallRecord | undefined> {
    return options.calls.getCall(callId);
  }

  async function translate(event: LifecycleEvent): Promise<EventTranslation> {
    switch (event.type) {
      case 'call.started': {
        directions.set(event.callId, event.data.direction);
        if (event.data.direction !== 'out') return [];
        return [
          callEvent({
            phone: event.data.to,
            type: 'out',
            codes: [event.data.from],
            callExternalId: event.callId,
          }),
        ];
      }
      case 'call.ringing': {
        const direction = directions.get(event.callId) ?? (await callOf(event.callId))?.direction;
        if (direction !== 'in') return [];
        return [
          callEvent({
            phone: event.data.from,
            type: 'in',
            codes: [event.data.extension],
            callExternalId: event.callId,
            externalPhone: event.data.to,
          }),
        ];
      }
      case 'call.ended': {
        directions.delete(event.callId);
        const record = await callOf(event.callId);
        return [
          callEvent({
            phone: customerPhone(event.data),
            type: 'hangup',
            codes: hangupCodes(event.data, record),
            hangupStatus: HANGUP_STATUS[event.data.disposition],
            callExternalId: event.callId,
            ...externalPhone(event.data),
          }),
          upload(uploadedCall(event.callId, event.data, record, undefined)),
        ];
      }
      case 'recording.ready': {
        const record = await callOf(event.callId);
        if (!record?.disposition) {
          logger.warn('retailCRM: recording of an unknown call, not uploaded', {
            callId: event.callId,
          });
          return [];
        }
        const data: CallEndedData = {
          direction: record.direction,
          from: record.from,
          to: record.to,
          ...(record.did === undefined ? {} : { did: record.did }),
          ...(record.answeredBy === undefined ? {} : { answeredBy: record.answeredBy }),
          disposition: record.disposition,
          startedAt: record.startedAt,
          endedAt: record.endedAt ?? record.startedAt,
          waitSec: record.waitSec,
          talkSec: record.talkSec,
          ...(record.endReason === undefined ? {} : { endReason: record.endReason }),
        };
        return [upload(uploadedCall(event.callId, data, record, event.data.recordingUrl))];
      }
      default:
        return [];
    }
  }

  function uploadedCall(
    callId: string,
    data: CallEndedData,
    record: CallRecord | undefined,
    recordUrl: string | undefined,
  ): Record<string, unknown> {
    const code = data.answeredBy ?? (data.direction === 'out' ? data.from : rung(record)[0]);
    return {
      date: retailCrmDate(data.startedAt, timeZone),
      type: data.direction,
      phone: customerPhone(data),
      ...(code === undefined ? {} : { code }),
      result: callResult(data.disposition, data.endReason),
      duration: data.talkSec,
      durationWaiting: data.waitSec,
      externalId: callId,
      ...externalPhone(data),
      ...(recordUrl === undefined ? {} : { recordUrl }),
    };
  }

  function registration(): Record<string, unknown> {
    if (!options.publicUrl)
      throw new Error('PUBLIC_URL must be set: retailCRM calls the engine at that address');
    const base = options.publicUrl.replace(/\/+$/, '');
    return {
      code: options.moduleCode,
      integrationCode: options.moduleCode,
      active: true,
      name: 'ari-crm (Asterisk)',
      clientId: options.clientId,
      baseUrl: base,
      integrations: {
        telephony: {
          makeCallUrl: base + MAKE_CALL_PATH,
          changeUserStatusUrl: base + USER_STATUS_PATH,
          allowEdit: false,
          inputEventSupported: true,
          outputEventSupported: true,
          hangupEventSupported: true,
          additionalCodes: directory
            .entries()
            .map((e) => ({ userId: e.userId, code: e.extension })),
        },
      },
    };
  }

  async function register(): Promise<VendorResponse> {
    const body = registration();
    return client.request({
      method: 'POST',
      path: `${API}/integration-modules/${encodeURIComponent(options.moduleCode)}/edit`,
      form: { integrationModule: JSON.stringify(body) },
    });
  }

  return {
    name: 'retailcrm',
    eventTypes: EVENT_TYPES,
    client,
    directory,
    lookupRoute,
    translate,
    checkAnswer(request: VendorRequest, json: unknown): string | undefined {
      if (dig(json, ['success']) === false) return errorMessage(json) ?? 'success: false';
      const duplicates = dig(json, ['duplicateCalls']);
      if (Array.isArray(duplicates) && duplicates.length > 0)
        logger.warn('retailCRM reports uploaded calls as duplicates', { calls: duplicates });
      const missing = dig(json, ['notExistCodes']);
      if (Array.isArray(missing) && missing.length > 0)
        logger.warn('retailCRM does not know these extension codes (set them in the module)', {
          path: request.path,
          codes: missing,
        });
      return undefined;
    },
    router(deps: ConnectorDeps): Router {
      return createRetailCrmRoutes({ clientId: options.clientId, directory, deps, logger });
    },
    registration,
    register,
    start: () => directory.start(),
    stop: () => directory.stop(),
  };
}

/** `POST /api/v5/telephony/call/event` with form field `event`. */
function callEvent(event: Record<string, unknown>): VendorRequest {
  return {
    method: 'POST',
    path: `${API}/telephony/call/event`,
    form: { event: JSON.stringify(event) },
    bucket: 'telephony',
  };
}

/** `POST /api/v5/telephony/calls/upload` with form field `calls` (one call). */
function upload(call: Record<string, unknown>): VendorRequest {
  return {
    method: 'POST',
    path: `${API}/telephony/calls/upload`,
    form: { calls: JSON.stringify([call]) },
    bucket: 'telephony',
  };
}

/** The customer's number: the caller (in) or the called number (out). */
function customerPhone(data: Pick<CallEndedData, 'direction' | 'from' | 'to'>): string {
  return data.direction === 'in' ? data.from : data.to;
}

/** `externalPhone`: the DID of an inbound call. */
function externalPhone(data: Pick<CallEndedData, 'did'>): { externalPhone?: string } {
  return data.did === undefined ? {} : { externalPhone: data.did };
}

/**
 * `codes` of the hang-up event: every operator whose phone rang for an inbound call (their
 * cards close), else the operator on the call.
 */
function hangupCodes(data: CallEndedData, record: CallRecord | undefined): string[] {
  const codes = data.direction === 'in' ? rung(record) : [];
  const own = data.answeredBy ?? (data.direction === 'out' ? data.from : undefined);
  if (own !== undefined && !codes.includes(own)) codes.push(own);
  return codes;
}

/** The customer of a `telephony/manager` answer: id, name, card link. */
function customerOf(json: object): Route['customer'] {
  const customer = dig(json, ['customer']);
  const out: NonNullable<Route['customer']> = {};
  const id = scalar(dig(customer, ['id']));
  if (id) out.id = id;
  const names = [
    scalar(dig(customer, ['lastName'])),
    scalar(dig(customer, ['firstName'])),
    scalar(dig(customer, ['patronymic'])),
  ].filter((n): n is string => Boolean(n));
  const name =
    names.join(' ') || scalar(dig(customer, ['nickName'])) || scalar(dig(customer, ['names']));
  if (name) {
    const clean = name.replace(CONTROL_CHARS, ' ').trim().slice(0, MAX_CUSTOMER_NAME_LENGTH);
    if (clean) out.name = clean;
  }
  const link = scalar(dig(json, ['links', 'customerLink']));
  if (link && /^https?:\/\//.test(link)) out.link = link;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** retailCRM's error text: `errorMsg` and the `errors` it lists. */
function errorMessage(json: unknown): string | undefined {
  const msg = scalar(dig(json, ['errorMsg']));
  const errors = dig(json, ['errors']);
  const details =
    errors && typeof errors === 'object'
      ? Object.entries(errors as Record<string, unknown>)
          .map(([key, value]) =>
            Array.isArray(errors) ? String(value) : `${key}: ${String(value)}`,
          )
          .join('; ')
      : '';
  const text = [msg, details].filter(Boolean).join(' — ');
  return text ? text.slice(0, 500) : undefined;
}
