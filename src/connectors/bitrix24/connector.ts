/**
 * The Bitrix24 connector (REST, form-encoded; guide: docs/connectors/bitrix24.md):
 *
 * - auth: a local application's OAuth tokens (form field `auth`; refreshed on `expired_token`,
 *   ./auth.ts), or an inbound webhook URL (`https://<portal>/rest/<user>/<secret>/`, whose
 *   secret never reaches the logs or the delivery log);
 * - route: `crm.duplicate.findbycomm` (`type` PHONE, `values` = the caller's number with and
 *   without `+`) → the first entity found, in BITRIX24_ENTITY_TYPES order → `crm.<entity>.get`
 *   → its `ASSIGNED_BY_ID`'s extension is rung first, then the fallback route; the entity's
 *   name and card link go into the call (`customer`);
 * - call start: `telephony.externalcall.register` (inbound: when the first operator's phone
 *   rings, `TYPE` 2, `SHOW` 0, `LINE_NUMBER` = the DID, the entity of the route lookup;
 *   outbound: at `call.started`, `TYPE` 1), `EXTERNAL_CALL_ID` = the engine's call id; the
 *   returned `CALL_ID` is kept in the connector state (`call:<id>`), so the call's later
 *   requests find it after a restart. A click-to-call Bitrix24 asked for
 *   (`ONEXTERNALCALLSTART`, ./routes.ts) carries its `CALL_ID` in the call's variables and is
 *   not registered again;
 * - `telephony.externalcall.show` for each operator whose phone rings, `.hide` for each one
 *   whose phone stopped ringing (another answered, their leg ended, the call ended);
 * - call end: `telephony.externalcall.finish` (`DURATION` = talk seconds, `STATUS_CODE` from the
 *   disposition, ./mapping.ts; `ADD_TO_CHAT`); `recording.ready`:
 *   `telephony.externalcall.attachRecord` (`RECORD_URL` = the signed recording link);
 * - employee ↔ extension: `user.get` (`UF_PHONE_INNER`), refreshed periodically,
 *   BITRIX24_EXTENSIONS overriding it.
 *
 * Bitrix24 answers errors as `{"error", "error_description"}`: `expired_token` /
 * `invalid_token` refresh the tokens before the retry, `QUERY_LIMIT_EXCEEDED` (and the other
 * load limits) back off, other 4xx (validation) settle the event `rejected` with the message.
 */
import type { Router } from 'express';
import type { Dispatcher } from 'undici';
import { EXTENSION_PATTERN, MAX_CUSTOMER_NAME_LENGTH } from '../../crm/index.ts';
import type { Route, RouteLookupRequest } from '../../crm/types.ts';
import type { LifecycleEvent, LifecycleEventType } from '../../events/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ConnectorStateRepository } from '../../store/connector-state.ts';
import type { CallRecord, CallRepository } from '../../store/index.ts';
import { ExtensionDirectory } from '../extensions.ts';
import { createVendorHttpClient } from '../http.ts';
import { ringFirst } from '../route.ts';
import { dig, scalar } from '../read.ts';
import type {
  Connector,
  ConnectorDeps,
  EventTranslation,
  ExtensionEntry,
  VendorHttpClient,
  VendorRequest,
  VendorResponse,
} from '../types.ts';
import { Bitrix24OAuth, type Bitrix24Tokens } from './auth.ts';
import { bitrix24Date, CALL_TYPE, restForm, STATUS_CODE, type RestValue } from './mapping.ts';
import { createBitrix24Routes, EVENTS_PATH } from './routes.ts';

/** CRM entity types a caller is looked up in. */
export type Bitrix24EntityType = 'CONTACT' | 'COMPANY' | 'LEAD';

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

/** What the connector keeps per call (connector state `call:<engine call id>`). */
interface CallState {
  /** Bitrix24's CALL_ID, once registered (or given by ONEXTERNALCALLSTART). */
  callId?: string;
  direction?: 'in' | 'out';
  /** Bitrix24 user ids whose card is shown (show sent, hide not yet). */
  showing: string[];
  /** Who the call was registered to (the finish of an unanswered call). */
  user?: Record<string, string>;
}

/** What a request of a call does to its state once answered. */
interface RequestMeta {
  callId: string;
  action: 'register' | 'show' | 'hide' | 'finish' | 'attach';
  /** The user shown / hidden, or registered to. */
  user?: Record<string, string>;
  /** `CALL_ID` is filled in from the state when sent. */
  needsCallId: boolean;
}

/** The event types the Bitrix24 connector translates. */
const EVENT_TYPES: ReadonlySet<LifecycleEventType> = new Set([
  'call.started',
  'call.ringing',
  'call.answered',
  'call.ended',
  'recording.ready',
]);

/** Bitrix24 error codes that mean "refresh the token". */
const AUTH_ERRORS = new Set(['expired_token', 'invalid_token', 'NO_AUTH_FOUND']);
/** Bitrix24 error codes that mean "later" (load limits, server trouble). */
const RETRY_ERRORS = new Set([
  'QUERY_LIMIT_EXCEEDED',
  'OVERLOAD_LIMIT',
  'OPERATION_TIME_LIMIT',
  'INTERNAL_SERVER_ERROR',
  'ERROR_UNEXPECTED_ANSWER',
]);

/** Days a call's Bitrix24 state is kept (a recording may be attached until then). */
const CALL_STATE_DAYS = 7;

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
  const inner = createVendorHttpClient({
    baseUrl: restBase,
    headers: {},
    ratePerSec: { default: options.ratePerSec },
    timeoutMs: options.timeoutMs,
    errorMessage,
    classifyError: (_status, json) => {
      const code = errorCode(json);
      if (code === undefined) return undefined;
      if (AUTH_ERRORS.has(code)) return 'unauthorized';
      if (RETRY_ERRORS.has(code)) return 'retry';
      return undefined;
    },
    ...(oauth ? { onUnauthorized: () => oauth.refresh() } : {}),
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  const metas = new WeakMap<VendorRequest, RequestMeta>();
  const cache = new Map<string, CallState>();
  const directory = new ExtensionDirectory({
    load: loadExtensions,
    overrides: options.overrides,
    refreshMs: options.refreshMs,
    timeoutMs: options.timeoutMs * 5,
    logger,
  });

  // --- per-call state ------------------------------------------------------------------------

  async function callState(callId: string): Promise<CallState | undefined> {
    const cached = cache.get(callId);
    if (cached) return cached;
    const stored = await options.state()?.get<CallState>(`call:${callId}`);
    if (stored) cache.set(callId, stored);
    return stored;
  }

  async function saveCallState(callId: string, state: CallState): Promise<void> {
    cache.set(callId, state);
    await options.state()?.set(`call:${callId}`, state);
  }

  // --- the client: auth, CALL_ID, state after each answer --------------------------------------

  /** Send one request: auth and the call's CALL_ID added, the call's state updated after. */
  async function send(req: VendorRequest, signal?: AbortSignal): Promise<VendorResponse> {
    const meta = metas.get(req);
    const url = shownBase + req.path;
    let form = req.form ?? {};
    let state: CallState | undefined;
    try {
      if (oauth) await oauth.ready();
      if (meta) state = await callState(meta.callId);
    } catch (err) {
      return { ok: false, kind: 'retry', detail: `store: ${describe(err)}`, url };
    }
    if (meta?.needsCallId) {
      if (!state?.callId)
        return {
          ok: false,
          kind: 'rejected',
          detail: 'the call has no Bitrix24 CALL_ID (telephony.externalcall.register failed)',
          url,
        };
      form = { CALL_ID: state.callId, ...form };
    }
    if (oauth) {
      const token = oauth.accessToken();
      if (!token)
        return {
          ok: false,
          kind: 'retry',
          detail: 'no Bitrix24 access token yet (install the application or set the tokens)',
          url,
        };
      form = { ...form, auth: token };
    }
    const answer = await inner.request({ ...req, form }, signal);
    if (!answer.ok) return { ...answer, url };
    const problem = errorCode(answer.json);
    if (problem !== undefined)
      return {
        ok: false,
        kind: 'rejected',
        status: answer.status,
        detail: errorMessage(answer.json) ?? problem,
        url,
      };
    if (meta) {
      try {
        const rejected = await afterAnswer(meta, state, answer.json);
        if (rejected)
          return { ok: false, kind: 'rejected', status: answer.status, detail: rejected, url };
      } catch (err) {
        return { ok: false, kind: 'retry', detail: `store: ${describe(err)}`, url };
      }
    }
    return { ...answer, url };
  }

  /** Record what an answered call request changed; a problem text when the answer is unusable. */
  async function afterAnswer(
    meta: RequestMeta,
    before: CallState | undefined,
    json: unknown,
  ): Promise<string | undefined> {
    const state: CallState = { ...before, showing: [...(before?.showing ?? [])] };
    switch (meta.action) {
      case 'register': {
        const callId = scalar(dig(json, ['result', 'CALL_ID']));
        if (!callId) return 'telephony.externalcall.register answered without a CALL_ID';
        state.callId = callId;
        if (meta.user) state.user = meta.user;
        break;
      }
      case 'show':
        if (meta.user?.USER_ID && !state.showing.includes(meta.user.USER_ID))
          state.showing.push(meta.user.USER_ID);
        break;
      case 'hide':
        state.showing = state.showing.filter((u) => u !== meta.user?.USER_ID);
        break;
      case 'finish':
        state.showing = [];
        break;
      case 'attach':
        return undefined;
    }
    await saveCallState(meta.callId, state);
    if (meta.action === 'finish') cache.delete(meta.callId);
    return undefined;
  }

  const client: VendorHttpClient = { request: send };

  async function call(
    method: string,
    params: Record<string, RestValue>,
    signal?: AbortSignal,
  ): Promise<VendorResponse> {
    const req: VendorRequest = { method: 'POST', path: `/${method}.json`, form: restForm(params) };
    const answer = await send(req, signal);
    // One more try after the tokens were refreshed (the http client's 401 handling).
    if (!answer.ok && answer.retryAfterMs === 0 && answer.status !== undefined)
      return send(req, signal);
    return answer;
  }

  // --- requests of the call events ------------------------------------------------------------

  function callRequest(
    callId: string,
    method: string,
    params: Record<string, RestValue>,
    action: RequestMeta['action'],
    user?: Record<string, string>,
  ): VendorRequest {
    const req: VendorRequest = { method: 'POST', path: `/${method}.json`, form: restForm(params) };
    metas.set(req, {
      callId,
      action,
      needsCallId: action !== 'register',
      ...(user ? { user } : {}),
    });
    return req;
  }

  /** `USER_ID` of the extension's Bitrix24 user, else `USER_PHONE_INNER` = the extension. */
  function userOf(extension: string): Record<string, string> {
    const userId = directory.userOf(extension);
    return userId ? { USER_ID: userId } : { USER_PHONE_INNER: extension };
  }

  function register(
    callId: string,
    params: {
      user: Record<string, string>;
      phone: string;
      direction: 'in' | 'out';
      startedAt: string;
      line?: string;
      entity?: { type: string; id: string };
      show: boolean;
    },
  ): VendorRequest {
    return callRequest(
      callId,
      'telephony.externalcall.register',
      {
        ...params.user,
        PHONE_NUMBER: params.phone,
        TYPE: CALL_TYPE[params.direction],
        CALL_START_DATE: bitrix24Date(params.startedAt),
        CRM_CREATE: options.crmCreate,
        SHOW: params.show,
        ...(params.line ? { LINE_NUMBER: params.line } : {}),
        ...(params.entity
          ? { CRM_ENTITY_TYPE: params.entity.type, CRM_ENTITY_ID: params.entity.id }
          : {}),
        EXTERNAL_CALL_ID: callId,
      },
      'register',
      params.user,
    );
  }

  function show(callId: string, userId: string): VendorRequest {
    return callRequest(callId, 'telephony.externalcall.show', { USER_ID: userId }, 'show', {
      USER_ID: userId,
    });
  }

  function hide(callId: string, userId: string): VendorRequest {
    return callRequest(callId, 'telephony.externalcall.hide', { USER_ID: userId }, 'hide', {
      USER_ID: userId,
    });
  }

  /** The call's operators (extensions) whose phone no longer rings: every operator leg ended. */
  function stoppedRinging(record: CallRecord | undefined): Set<string> {
    const live = new Set<string>();
    const ended = new Set<string>();
    for (const leg of record?.legs ?? []) {
      if (leg.role !== 'operator' || !leg.extension) continue;
      // A leg that stopped ringing has ended, or has an outcome other than answered.
      const over =
        leg.endedAt !== undefined || (leg.outcome !== undefined && leg.outcome !== 'answered');
      (over ? ended : live).add(leg.extension);
    }
    for (const ext of live) ended.delete(ext);
    return ended;
  }

  async function translate(event: LifecycleEvent): Promise<EventTranslation> {
    const id = event.callId;
    switch (event.type) {
      case 'call.started': {
        const { direction } = event.data;
        const state = (await callState(id)) ?? { showing: [] };
        const given = event.data.variables?.bitrix24CallId;
        if (direction === 'out' && given && !state.callId) {
          // A click-to-call Bitrix24 asked for: it registered the call itself.
          await saveCallState(id, {
            ...state,
            direction,
            callId: given,
            user: userOf(event.data.from),
          });
          return [];
        }
        if (state.direction !== direction) await saveCallState(id, { ...state, direction });
        if (direction === 'in' || state.callId) return [];
        return [
          register(id, {
            user: userOf(event.data.from),
            phone: event.data.to,
            direction: 'out',
            startedAt: event.occurredAt,
            show: true,
          }),
        ];
      }
      case 'call.ringing': {
        const state = await callState(id);
        const record = await options.calls.getCall(id);
        const direction = state?.direction ?? record?.direction;
        if (direction !== 'in') return [];
        const requests: VendorRequest[] = [];
        const ext = event.data.extension;
        if (!state?.callId)
          requests.push(
            register(id, {
              user: userOf(ext),
              phone: event.data.from,
              direction: 'in',
              startedAt: record?.startedAt ?? event.occurredAt,
              line: event.data.to,
              ...entityOf(event.data.customer?.link),
              show: false,
            }),
          );
        const stopped = stoppedRinging(record);
        for (const userId of state?.showing ?? []) {
          const shownExt = directory.extensionOf(userId);
          if (shownExt !== undefined && shownExt !== ext && stopped.has(shownExt))
            requests.push(hide(id, userId));
        }
        const userId = directory.userOf(ext);
        if (userId === undefined)
          logger.warn(
            'Bitrix24: no user has this internal number (UF_PHONE_INNER); no card shown',
            {
              callId: id,
              extension: ext,
            },
          );
        else if (!state?.showing.includes(userId)) requests.push(show(id, userId));
        return requests;
      }
      case 'call.answered': {
        const state = await callState(id);
        if (state?.direction !== 'in' || !state.callId) return [];
        const answerer = directory.userOf(event.data.extension);
        return state.showing.filter((u) => u !== answerer).map((u) => hide(id, u));
      }
      case 'call.ended': {
        const data = event.data;
        const state = await callState(id);
        const requests: VendorRequest[] = [];
        let registeredTo = state?.user;
        if (!state?.callId) {
          // Nobody's phone rang (or the register was refused): register it now so it is listed.
          const record = await options.calls.getCall(id);
          const firstExt =
            data.direction === 'out'
              ? data.from
              : (data.answeredBy ?? record?.legs.find((l) => l.role === 'operator')?.extension);
          registeredTo = firstExt ? userOf(firstExt) : { USER_ID: options.defaultUserId };
          requests.push(
            register(id, {
              user: registeredTo,
              phone: data.direction === 'in' ? data.from : data.to,
              direction: data.direction,
              startedAt: data.startedAt,
              ...(data.direction === 'in' && (data.did ?? data.to)
                ? { line: data.did ?? data.to }
                : {}),
              show: false,
            }),
          );
        }
        const own = data.answeredBy ?? (data.direction === 'out' ? data.from : undefined);
        const finishUser =
          own !== undefined ? userOf(own) : (registeredTo ?? { USER_ID: options.defaultUserId });
        for (const userId of state?.showing ?? [])
          if (userId !== finishUser.USER_ID) requests.push(hide(id, userId));
        requests.push(
          callRequest(
            id,
            'telephony.externalcall.finish',
            {
              ...finishUser,
              DURATION: data.talkSec,
              STATUS_CODE: STATUS_CODE[data.disposition],
              ADD_TO_CHAT: options.addToChat,
            },
            'finish',
          ),
        );
        return requests;
      }
      case 'recording.ready':
        return [
          callRequest(
            id,
            'telephony.externalcall.attachRecord',
            { FILENAME: `${id}.${event.data.format}`, RECORD_URL: event.data.recordingUrl },
            'attach',
          ),
        ];
      default:
        return [];
    }
  }

  /** `CRM_ENTITY_TYPE` / `_ID` of a card link `<portal>/crm/<type>/details/<id>/`. */
  function entityOf(link: string | undefined): { entity?: { type: string; id: string } } {
    const match = link ? /\/crm\/(contact|company|lead)\/details\/(\d+)\/?$/.exec(link) : null;
    return match ? { entity: { type: match[1]!.toUpperCase(), id: match[2]! } } : {};
  }

  // --- route lookup ---------------------------------------------------------------------------

  async function lookupRoute(
    request: RouteLookupRequest,
    fallback: Route,
    signal: AbortSignal,
  ): ReturnType<Connector['lookupRoute']> {
    const digits = request.from.replace(/^\+/, '');
    const found = await call(
      'crm.duplicate.findbycomm',
      {
        type: 'PHONE',
        values: digits === request.from ? [digits, `+${digits}`] : [request.from, digits],
      },
      signal,
    );
    if (!found.ok) return { ok: false, reason: 'http_status', detail: found.detail };
    const result = dig(found.json, ['result']);
    if (result === undefined) return { ok: false, reason: 'invalid_body', detail: 'no result' };
    let entity: { type: Bitrix24EntityType; id: string } | undefined;
    for (const type of options.entityTypes) {
      const ids = dig(result, [type]);
      const first = Array.isArray(ids) ? scalar((ids as unknown[])[0]) : undefined;
      if (first) {
        entity = { type, id: first };
        break;
      }
    }
    if (!entity)
      return {
        ok: true,
        route: ringFirst(fallback, undefined, undefined, options.defaultRingTimeoutSec),
      };
    const got = await call(`crm.${entity.type.toLowerCase()}.get`, { id: entity.id }, signal);
    if (!got.ok) return { ok: false, reason: 'http_status', detail: got.detail };
    const item = dig(got.json, ['result']);
    if (typeof item !== 'object' || item === null)
      return { ok: false, reason: 'invalid_body', detail: 'no result' };
    const manager = scalar(dig(item, ['ASSIGNED_BY_ID']));
    const extension = manager === undefined ? undefined : directory.extensionOf(manager);
    const customer: NonNullable<Route['customer']> = {
      id: entity.id,
      link: `${portal}/crm/${entity.type.toLowerCase()}/details/${entity.id}/`,
    };
    const name = nameOf(item, entity.type);
    if (name) customer.name = name;
    return {
      ok: true,
      route: ringFirst(fallback, extension, customer, options.defaultRingTimeoutSec),
    };
  }

  // --- employee ↔ extension -------------------------------------------------------------------

  async function loadExtensions(signal: AbortSignal): Promise<ExtensionEntry[]> {
    const entries: ExtensionEntry[] = [];
    let start = 0;
    for (let page = 0; page < 200; page++) {
      const answer = await call('user.get', { FILTER: { ACTIVE: true }, start }, signal);
      if (!answer.ok) throw new Error(answer.detail);
      const users = dig(answer.json, ['result']);
      if (Array.isArray(users))
        for (const user of users as unknown[]) {
          const userId = scalar(dig(user, ['ID']));
          const inner = scalar(dig(user, ['UF_PHONE_INNER']));
          if (userId && inner && EXTENSION_PATTERN.test(inner))
            entries.push({ userId, extension: inner });
        }
      const next = Number(dig(answer.json, ['next']));
      if (!Number.isInteger(next) || next <= start) break;
      start = next;
    }
    return entries;
  }

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
    client,
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
              const check = await verifyToken(tokens.accessToken);
              if (check) throw new Error(check);
              await oauth.install(tokens);
              void directory.refresh();
            }
          : undefined,
      });
    },
    start(): void {
      directory.start();
      const state = options.state();
      if (state)
        state
          .purge('call:', new Date(Date.now() - CALL_STATE_DAYS * 86_400_000))
          .catch((err: unknown) => logger.warn('purging old Bitrix24 call state failed', { err }));
    },
    stop: () => directory.stop(),
  };

  /** Whether an access token works on this portal for this application (`app.info`). */
  async function verifyToken(token: string): Promise<string | undefined> {
    const answer = await inner.request({
      method: 'POST',
      path: '/app.info.json',
      form: { auth: token },
    });
    if (!answer.ok) return `the portal refused the token: ${answer.detail}`;
    const code =
      scalar(dig(answer.json, ['result', 'CODE'])) ??
      scalar(dig(answer.json, ['result', 'client_id']));
    if (code !== undefined && options.oauth && code !== options.oauth.clientId)
      return 'the token belongs to another application';
    return undefined;
  }
}

/** The display name of a CRM entity: a person's name, or a company's / lead's title. */
function nameOf(item: object, type: Bitrix24EntityType): string | undefined {
  const person = [scalar(dig(item, ['NAME'])), scalar(dig(item, ['LAST_NAME']))]
    .filter((n): n is string => Boolean(n))
    .join(' ');
  const name =
    type === 'COMPANY' ? scalar(dig(item, ['TITLE'])) : person || scalar(dig(item, ['TITLE']));
  if (!name) return undefined;
  const clean = name
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, MAX_CUSTOMER_NAME_LENGTH);
  return clean || undefined;
}

/** Bitrix24's error code (`error`) of an answer, if it is an error. */
function errorCode(json: unknown): string | undefined {
  return scalar(dig(json, ['error']));
}

/** Bitrix24's error text: `error: error_description`. */
function errorMessage(json: unknown): string | undefined {
  const code = errorCode(json);
  const description = scalar(dig(json, ['error_description']));
  const text = [code, description].filter(Boolean).join(': ');
  return text ? text.slice(0, 500) : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
