/**
 * The amoCRM / Kommo connector (API v4 and the v2 events method, a private integration's
 * long-lived token as `Authorization: Bearer`; guide: docs/connectors/amocrm.md):
 *
 * - route: `GET /api/v4/contacts?query=<last 10 digits of the caller>` → the first contact's
 *   `responsible_user_id` → that user's extension (AMOCRM_USERS) is rung first, then the
 *   fallback route (FALLBACK_ROUTE); the contact's name becomes the operator phone's
 *   CALLERID(name) and the card (`customer.id`, `.name`, `.link` =
 *   `<AMOCRM_URL>/contacts/detail/<id>`) travels in `call.ringing`;
 * - ringing: `POST /api/v2/events` `{"add": [{"type": "phone_call", "phone_number", "users"}]}`
 *   when an operator's phone rings for an inbound call: amoCRM shows that user its
 *   incoming-call notification with the caller's contact, lead or customer;
 * - call end: `POST /api/v4/calls` with one call (`direction`, `uniq` = the engine's call id,
 *   `duration` = talk seconds, `source`, `phone`, `call_status`, `call_result`,
 *   `responsible_user_id`, `created_by`, `created_at`, `link` = the signed recording link):
 *   amoCRM adds a call note to the contact (or its single lead / customer) with the number;
 * - recording: amoCRM has no method to change a call once added, so the finished call of a
 *   recorded conversation waits (in the outbox, see `TranslationDeferred`) until the store says
 *   the recording is stored, at most AMOCRM_RECORDING_WAIT_SEC after the call ended; it is then
 *   added with the link (also after the wait: the link plays once the file is stored), or
 *   without one when the recording failed;
 * - employee ↔ extension: configuration only (AMOCRM_USERS);
 * - click-to-call from a widget: ./routes.ts.
 *
 * amoCRM answers errors as problem JSON (`title`, `detail`, `validation-errors`); a 400 is
 * settled `rejected` with that message; a call amoCRM did not add (no contact has the number:
 * `_embedded.errors`) too. A 401 (token revoked or expired: long-lived tokens have no refresh)
 * is retried with backoff until AMOCRM_TOKEN is replaced and the engine restarted, within
 * WEBHOOK_MAX_AGE_MS.
 */
import type { Router } from 'express';
import type { Dispatcher } from 'undici';
import { MAX_CUSTOMER_NAME_LENGTH } from '../../crm/index.ts';
import type { Route, RouteLookupRequest } from '../../crm/types.ts';
import type { CallEndedData, LifecycleEvent, LifecycleEventType } from '../../events/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { CallRecord, CallRepository } from '../../store/index.ts';
import { TranslationDeferred } from '../delivery.ts';
import { ExtensionDirectory } from '../extensions.ts';
import { createVendorHttpClient } from '../http.ts';
import type {
  Connector,
  ConnectorDeps,
  EventTranslation,
  ExtensionEntry,
  VendorRequest,
} from '../types.ts';
import { ringFirst } from '../route.ts';
import { dig, rung, scalar } from '../read.ts';
import { callResult, callStatus, phoneQuery, unixSeconds } from './mapping.ts';
import { createAmoCrmRoutes } from './routes.ts';

/** Options of {@link createAmoCrmConnector}; normally filled from the configuration. */
export interface AmoCrmOptions {
  /** AMOCRM_URL, e.g. `https://example.amocrm.ru`. */
  url: string;
  /** AMOCRM_TOKEN (`Authorization: Bearer`). Never logged. */
  token: string;
  /** AMOCRM_USERS. */
  users: readonly ExtensionEntry[];
  /** AMOCRM_CALL_SOURCE: `source` of the added calls. */
  source: string;
  /** AMOCRM_RECORDING_WAIT_SEC: how long a recorded call waits for its recording, s. */
  recordingWaitSec: number;
  /** CONNECTOR_TIMEOUT_MS: one request. */
  timeoutMs: number;
  /** AMOCRM_RATE_LIMIT_PER_SEC. */
  ratePerSec: number;
  /** RING_TIMEOUT_SEC: ring time of the responsible user's extension when the fallback has none. */
  defaultRingTimeoutSec: number;
  /** Stored calls (operators rung, the recording's state). */
  calls: Pick<CallRepository, 'getCall'>;
  logger: Logger;
  /** undici dispatcher (tests); default undici's global one. */
  dispatcher?: Dispatcher;
  /** The clock (tests); default `Date.now`. */
  now?: () => number;
}

/** The amoCRM connector with its extras. */
export interface AmoCrmConnector extends Connector {
  readonly name: 'amocrm';
  readonly directory: ExtensionDirectory;
}

/** The event types the amoCRM connector translates. */
const EVENT_TYPES: ReadonlySet<LifecycleEventType> = new Set([
  'call.started',
  'call.ringing',
  'call.ended',
]);

/** Path of the incoming-call notification method. */
export const EVENTS_PATH = '/api/v2/events';
/** Path of the call logging method. */
export const CALLS_PATH = '/api/v4/calls';
/** Path of the contact search. */
export const CONTACTS_PATH = '/api/v4/contacts';

/** Longest pause between two looks at a recording being stored, ms. */
const RECORDING_POLL_MS = 1000;

/** Create the connector (see the module comment). */
export function createAmoCrmConnector(options: AmoCrmOptions): AmoCrmConnector {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const baseUrl = options.url.replace(/\/+$/, '');
  const client = createVendorHttpClient({
    baseUrl,
    headers: { authorization: `Bearer ${options.token}` },
    ratePerSec: { default: options.ratePerSec },
    timeoutMs: options.timeoutMs,
    errorMessage,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  const directory = new ExtensionDirectory({
    overrides: options.users,
    refreshMs: 0,
    timeoutMs: options.timeoutMs,
    logger,
  });
  /** Direction of calls whose events are being translated (started → ended). */
  const directions = new Map<string, 'in' | 'out'>();

  async function lookupRoute(
    request: RouteLookupRequest,
    fallback: Route,
    signal: AbortSignal,
  ): ReturnType<Connector['lookupRoute']> {
    const answer = await client.request(
      {
        method: 'GET',
        path: CONTACTS_PATH,
        query: { query: phoneQuery(request.from), limit: '1' },
      },
      signal,
    );
    if (!answer.ok) return { ok: false, reason: 'http_status', detail: answer.detail };
    // 204 No Content: no contact has the number.
    if (answer.json === undefined) return { ok: true, route: structuredClone(fallback) };
    const contact = dig(answer.json, ['_embedded', 'contacts', '0']);
    if (typeof answer.json !== 'object' || answer.json === null)
      return { ok: false, reason: 'invalid_body', detail: 'not a JSON object' };
    if (contact === undefined) return { ok: true, route: structuredClone(fallback) };
    return {
      ok: true,
      route: ringFirst(
        fallback,
        extensionOfContact(contact),
        customerOf(contact, baseUrl),
        options.defaultRingTimeoutSec,
      ),
    };
  }

  /** The extension of a contact's responsible user, if AMOCRM_USERS has one. */
  function extensionOfContact(contact: unknown): string | undefined {
    const userId = scalar(dig(contact, ['responsible_user_id']));
    const extension = userId === undefined ? undefined : directory.extensionOf(userId);
    if (userId !== undefined && extension === undefined)
      logger.debug('amoCRM: the responsible user has no extension in AMOCRM_USERS', { userId });
    return extension;
  }

  async function translate(event: LifecycleEvent): Promise<EventTranslation> {
    switch (event.type) {
      case 'call.started':
        directions.set(event.callId, event.data.direction);
        return [];
      case 'call.ringing': {
        const direction =
          directions.get(event.callId) ?? (await options.calls.getCall(event.callId))?.direction;
        if (direction !== 'in') return [];
        const userId = directory.userOf(event.data.extension);
        if (userId === undefined) {
          logger.debug('amoCRM: no user for the ringing extension, no notification', {
            callId: event.callId,
            extension: event.data.extension,
          });
          return [];
        }
        return [
          {
            method: 'POST',
            path: EVENTS_PATH,
            json: {
              add: [{ type: 'phone_call', phone_number: event.data.from, users: [Number(userId)] }],
            },
          },
        ];
      }
      case 'call.ended': {
        const record = await options.calls.getCall(event.callId);
        const link = recordingLink(event.data, record);
        directions.delete(event.callId);
        return [
          {
            method: 'POST',
            path: CALLS_PATH,
            json: [loggedCall(event.callId, event.data, record, link)],
          },
        ];
      }
      default:
        return [];
    }
  }

  /**
   * The recording link to send with a finished call, or undefined (not recorded, or the
   * recording failed).
   *
   * @throws TranslationDeferred while the recording is being stored, within the wait
   */
  function recordingLink(data: CallEndedData, record: CallRecord | undefined): string | undefined {
    if (data.recordingUrl === undefined) return undefined;
    const status = record?.recording?.status;
    if (status === 'stored') return data.recordingUrl;
    if (status === 'failed') return undefined;
    const leftMs = Date.parse(data.endedAt) + options.recordingWaitSec * 1000 - now();
    if (leftMs > 0)
      throw new TranslationDeferred(
        `waiting for the recording to be stored (at most ${options.recordingWaitSec} s after the call)`,
        Math.min(RECORDING_POLL_MS, leftMs),
      );
    logger.warn('amoCRM: the recording is still not stored; adding the call with its link', {
      callId: record?.id,
      waitSec: options.recordingWaitSec,
    });
    return data.recordingUrl;
  }

  /** One call of `POST /api/v4/calls`. */
  function loggedCall(
    callId: string,
    data: CallEndedData,
    record: CallRecord | undefined,
    link: string | undefined,
  ): Record<string, unknown> {
    const userId = responsibleUser(data, record);
    return {
      direction: data.direction === 'in' ? 'inbound' : 'outbound',
      uniq: callId,
      duration: data.talkSec,
      source: options.source,
      phone: data.direction === 'in' ? data.from : data.to,
      call_status: callStatus(data.disposition, data.endReason),
      call_result: callResult(data.direction, data.disposition, data.answeredBy, data.endReason),
      ...(userId === undefined ? {} : { responsible_user_id: userId, created_by: userId }),
      created_at: unixSeconds(data.startedAt),
      ...(link === undefined ? {} : { link }),
    };
  }

  /**
   * The amoCRM user the call belongs to: the operator who answered (inbound) or placed it
   * (outbound), else the first operator whose phone rang, if AMOCRM_USERS knows them.
   */
  function responsibleUser(
    data: CallEndedData,
    record: CallRecord | undefined,
  ): number | undefined {
    const candidates = [
      data.answeredBy,
      data.direction === 'out' ? data.from : undefined,
      ...rung(record),
    ];
    for (const extension of candidates) {
      const userId = extension === undefined ? undefined : directory.userOf(extension);
      if (userId !== undefined) return Number(userId);
    }
    return undefined;
  }

  return {
    name: 'amocrm',
    eventTypes: EVENT_TYPES,
    client,
    directory,
    lookupRoute,
    translate,
    checkAnswer(request: VendorRequest, json: unknown): string | undefined {
      if (request.path !== CALLS_PATH) return undefined;
      const errors = dig(json, ['_embedded', 'errors']);
      if (!Array.isArray(errors) || errors.length === 0) return undefined;
      const texts = (errors as unknown[]).map(
        (e) =>
          [scalar(dig(e, ['title'])), scalar(dig(e, ['detail']))].filter(Boolean).join(': ') ||
          'error',
      );
      return `amoCRM did not add the call (no contact or company has the number?): ${texts.join('; ')}`;
    },
    router(deps: ConnectorDeps): Router {
      return createAmoCrmRoutes({ directory, deps, logger });
    },
    start: () => directory.start(),
    stop: () => directory.stop(),
  };
}

/** The customer card of a contact: id, name, link to the contact in amoCRM. */
function customerOf(contact: unknown, baseUrl: string): Route['customer'] {
  const out: NonNullable<Route['customer']> = {};
  const id = scalar(dig(contact, ['id']));
  if (id) {
    out.id = id;
    if (/^\d+$/.test(id)) out.link = `${baseUrl}/contacts/detail/${id}`;
  }
  const name = scalar(dig(contact, ['name']));
  if (name) {
    const clean = name
      .replace(/\p{Cc}+/gu, ' ')
      .trim()
      .slice(0, MAX_CUSTOMER_NAME_LENGTH);
    if (clean) out.name = clean;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** amoCRM's error text: `title`, `detail` and the `validation-errors` it lists. */
function errorMessage(json: unknown): string | undefined {
  const head = [scalar(dig(json, ['title'])), scalar(dig(json, ['detail']))]
    .filter(Boolean)
    .join(': ');
  const details: string[] = [];
  const validation = dig(json, ['validation-errors']);
  if (Array.isArray(validation))
    for (const item of validation as unknown[]) {
      const errors = dig(item, ['errors']);
      if (Array.isArray(errors))
        for (const error of errors as unknown[])
          details.push(
            [
              scalar(dig(error, ['path'])),
              scalar(dig(error, ['detail'])) ?? scalar(dig(error, ['code'])),
            ]
              .filter(Boolean)
              .join(': '),
          );
    }
  const text = [head, details.join('; ')].filter(Boolean).join(' — ');
  return text ? text.slice(0, 500) : undefined;
}
