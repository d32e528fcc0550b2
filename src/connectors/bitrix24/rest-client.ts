/**
 * The Bitrix24 REST client: each request is a form-encoded `POST <rest base>/<method>.json`,
 * rate-limited (BITRIX24_RATE_LIMIT_PER_SEC) by the vendor HTTP client, with:
 *
 * - auth: the local application's access token in form field `auth` (./auth.ts), or none with an
 *   inbound webhook URL, whose secret is replaced by `***` in the URL the delivery log shows;
 * - a call's requests ({@link Bitrix24RestClient.callRequest}): the call's `CALL_ID` filled in
 *   from its state when sent, and the call's state updated after the answer (./call-state.ts);
 * - Bitrix24's errors, answered as `{"error", "error_description"}`: `expired_token` /
 *   `invalid_token` refresh the tokens before the retry, `QUERY_LIMIT_EXCEEDED` (and the other
 *   load limits) back off, other errors (validation) settle the request `rejected` with the
 *   message.
 */
import type { Dispatcher } from 'undici';
import { createVendorHttpClient } from '../http.ts';
import { dig, scalar } from '../read.ts';
import type { VendorHttpClient, VendorRequest, VendorResponse } from '../types.ts';
import type { Bitrix24OAuth } from './auth.ts';
import type { Bitrix24CallStates, CallState, RequestMeta } from './call-state.ts';
import { restForm, type RestValue } from './mapping.ts';

/** Options of {@link createBitrix24RestClient}. */
export interface Bitrix24RestClientOptions {
  /** `https://<portal>/rest`, or the webhook URL without its trailing slash. */
  restBase: string;
  /** The REST base as the delivery log shows it: a webhook's secret replaced by `***`. */
  shownBase: string;
  /** The application's tokens; absent with a webhook URL. */
  oauth: Bitrix24OAuth | undefined;
  /** The calls' state (`CALL_ID`, shown cards). */
  states: Bitrix24CallStates;
  /** BITRIX24_RATE_LIMIT_PER_SEC. */
  ratePerSec: number;
  /** CONNECTOR_TIMEOUT_MS: one request. */
  timeoutMs: number;
  /** undici dispatcher (tests); default undici's global one. */
  dispatcher?: Dispatcher;
}

/** The REST client (see the module comment). */
export interface Bitrix24RestClient {
  /** The delivery's client: sends the requests the event translation returned. Never throws. */
  readonly client: VendorHttpClient;
  /** Call REST method `method` with `params` (auth added; one retry after a token refresh). */
  readonly call: (
    method: string,
    params: Record<string, RestValue>,
    signal?: AbortSignal,
  ) => Promise<VendorResponse>;
  /**
   * A request of call `callId` (its `CALL_ID` added when sent, except for `register`; its state
   * updated by `action` once answered).
   */
  readonly callRequest: (
    callId: string,
    method: string,
    params: Record<string, RestValue>,
    action: RequestMeta['action'],
    user?: Record<string, string>,
  ) => VendorRequest;
  /**
   * Whether an access token works on this portal for application `clientId` (`app.info`): a
   * problem text, or undefined when it does.
   */
  readonly verifyToken: (
    token: string,
    clientId: string | undefined,
  ) => Promise<string | undefined>;
}

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

/** Create the client (see the module comment). */
export function createBitrix24RestClient(options: Bitrix24RestClientOptions): Bitrix24RestClient {
  const { oauth, states, shownBase } = options;
  const inner = createVendorHttpClient({
    baseUrl: options.restBase,
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

  /** Send one request: auth and the call's CALL_ID added, the call's state updated after. */
  async function send(req: VendorRequest, signal?: AbortSignal): Promise<VendorResponse> {
    const meta = metas.get(req);
    const url = shownBase + req.path;
    let form = req.form ?? {};
    let state: CallState | undefined;
    try {
      if (oauth) await oauth.ready();
      if (meta) state = await states.get(meta.callId);
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
        const rejected = await states.recordAnswer(meta, state, answer.json);
        if (rejected)
          return { ok: false, kind: 'rejected', status: answer.status, detail: rejected, url };
      } catch (err) {
        return { ok: false, kind: 'retry', detail: `store: ${describe(err)}`, url };
      }
    }
    return { ...answer, url };
  }

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

  async function verifyToken(
    token: string,
    clientId: string | undefined,
  ): Promise<string | undefined> {
    const answer = await inner.request({
      method: 'POST',
      path: '/app.info.json',
      form: { auth: token },
    });
    if (!answer.ok) return `the portal refused the token: ${answer.detail}`;
    const code =
      scalar(dig(answer.json, ['result', 'CODE'])) ??
      scalar(dig(answer.json, ['result', 'client_id']));
    if (code !== undefined && clientId !== undefined && code !== clientId)
      return 'the token belongs to another application';
    return undefined;
  }

  return { client: { request: send }, call, callRequest, verifyToken };
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
