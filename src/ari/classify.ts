/**
 * Turns whatever a REST call was rejected with into a typed {@link AriError}.
 *
 * What arrives:
 * - from the gateway's executor (`rest.ts`): an `AriHttpFailure` `{status, data}` (the HTTP
 *   status and Asterisk's raw body), a Node.js socket error (`code: 'ECONNREFUSED'`…), or the
 *   string `"channelId is a required path param."` for an empty path parameter;
 * - from ari-client's own operations (node_modules/ari-client/lib/client.js `swaggerError`): an
 *   `Error` whose message is Asterisk's raw JSON body (`{"message":"Channel not found"}`,
 *   `{"error":"Allocation failed"}`), without the HTTP status (fixtures fact 10), or the swagger
 *   response object itself (`{status, data: '', …}`) when the error body was empty.
 *
 * The status is the answer's when known; otherwise it is inferred from the message with the texts
 * of Asterisk's res/ari/resource_*.c (the same message means different statuses per operation:
 * `bridges.addChannel` answers 400 "Channel not found" and 422 "Channel not in Stasis
 * application", channel operations 404 and 409).
 */
import {
  AriBadRequestError,
  AriConflictError,
  AriConnectionError,
  AriError,
  AriNotFoundError,
  AriNotInStasisError,
  AriServerError,
} from './errors.ts';

/** Node.js error codes that mean "Asterisk could not be reached / the connection broke". */
export const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ERR_SOCKET_CLOSED',
]);

/** The parts of a failure the classifier looks at. */
export interface ParsedAriFailure {
  /** HTTP status, when known. */
  status: number | undefined;
  /** Asterisk's `message` (or `error`) from its JSON body, else the raw text. */
  message: string;
  /** True when the body was `{"error": "…"}` (Asterisk's `ast_ari_response_alloc_failed`, 500). */
  errorKey: boolean;
  /** Node.js error code for transport failures. */
  code: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function bodyText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  return '';
}

/** Extract `message`/`error` from an Asterisk JSON error body; the raw text when not JSON. */
export function parseAsteriskBody(text: string): { message: string; errorKey: boolean } {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (isRecord(parsed)) {
        if (typeof parsed.message === 'string') return { message: parsed.message, errorKey: false };
        if (typeof parsed.error === 'string') return { message: parsed.error, errorKey: true };
      }
    } catch {
      // not JSON after all: fall through to the raw text
    }
  }
  return { message: trimmed, errorKey: false };
}

/** Pull status, message and code out of any rejection value ari-client may produce. */
export function parseFailure(err: unknown, statusHint?: number): ParsedAriFailure {
  let status = statusHint;
  let code: string | undefined;
  let text = '';
  if (typeof err === 'string') {
    text = err;
  } else if (err instanceof Error) {
    text = err.message;
    const maybeCode = (err as { code?: unknown }).code;
    if (typeof maybeCode === 'string') code = maybeCode;
  } else if (isRecord(err)) {
    if (status === undefined && typeof err.status === 'number' && err.status > 0) {
      status = err.status;
    }
    if (typeof err.code === 'string') code = err.code;
    text = bodyText(err.data) || (typeof err.message === 'string' ? err.message : '');
  } else if (err !== undefined && err !== null) {
    text = String(err);
  }
  const { message, errorKey } = parseAsteriskBody(text);
  return { status, message, errorKey, code };
}

const BRIDGE_MEMBERSHIP_OPS = new Set(['bridges.addChannel', 'bridges.removeChannel']);

/**
 * The HTTP status Asterisk answers with `message` for `operation` (res/ari/resource_*.c), or
 * undefined when the text is not one Asterisk produces.
 */
export function inferStatus(
  operation: string,
  message: string,
  errorKey: boolean,
): number | undefined {
  if (errorKey) return 500; // {"error": "Allocation failed"}: ast_ari_response_alloc_failed
  const m = message;
  if (BRIDGE_MEMBERSHIP_OPS.has(operation)) {
    if (/^Channel not found$/i.test(m)) return 400;
    if (/^Channel not in Stasis application$/i.test(m)) return 422;
    if (/not in this bridge/i.test(m)) return 422;
  }
  if (/not in (a )?Stasis application/i.test(m)) return 409;
  if (/^Channel in invalid state$/i.test(m)) return 412;
  if (/could not be opened/i.test(m)) return 403;
  if (
    /already exists|not in the 'Down' state|not created by ARI|cannot be dialed|current state|not subscribed|currently recording|Uncontrolled device/i.test(
      m,
    )
  ) {
    return 409;
  }
  if (
    /unknown on this system|does not contain tech\/resource|No resource provided|does not match channel technology|Event source does not exist|not the same type/i.test(
      m,
    )
  ) {
    return 422;
  }
  if (/Device name is missing/i.test(m)) return 404;
  if (
    /must be specified|is required|^Missing|Missing parameter|Invalid|invalid$|cannot be negative|illegal|exceeds maximum|Only string values|can't both be specified|Provided originator channel was not found|Provided format .* was not found|Failed to execute function|not provided|^Bad request/i.test(
      m,
    )
  ) {
    return 400;
  }
  if (/not found|cannot be found|can not be found|does not exist/i.test(m)) return 404;
  if (
    /Allocation failed|Out of memory|Internal|^Failed to|^Could not|^Unable to|Message bus|^Error /i.test(
      m,
    )
  ) {
    return 500;
  }
  return undefined;
}

/**
 * Classify a rejected ARI REST call.
 *
 * @param operation the gateway operation, e.g. `channels.dial` (used in the error and for
 *   operation-specific statuses).
 * @param err whatever ari-client rejected with (see the module comment).
 * @param statusHint the HTTP status of the answer, if known apart from `err`; authoritative.
 * @returns an {@link AriError} subclass: 404 → AriNotFoundError; 409 (or addChannel's 422)
 *   "Channel not in Stasis application" → AriNotInStasisError; other 409 and 412 →
 *   AriConflictError; 400/422 → AriBadRequestError; 5xx and 403 → AriServerError; socket
 *   errors → AriConnectionError; anything else → AriError kind `unknown`.
 */
export function classifyAriError(operation: string, err: unknown, statusHint?: number): AriError {
  if (err instanceof AriError) return err;
  const parsed = parseFailure(err, statusHint);
  const options = { cause: err };
  if (parsed.status === undefined && parsed.code && CONNECTION_ERROR_CODES.has(parsed.code)) {
    return new AriConnectionError(operation, `${parsed.code}: ${parsed.message}`, options);
  }
  if (parsed.status === undefined && /socket hang up|connect ECONNREFUSED/i.test(parsed.message)) {
    return new AriConnectionError(operation, parsed.message, options);
  }
  if (parsed.status === undefined && /is a required path param/i.test(parsed.message)) {
    // swagger-client refused to build the URL: an empty id never reached Asterisk.
    return new AriBadRequestError(operation, parsed.message, 400, options);
  }
  const status = parsed.status ?? inferStatus(operation, parsed.message, parsed.errorKey);
  const message = parsed.message || `HTTP ${status ?? 'error'}`;
  const notInStasis = /^Channel not in (a )?Stasis application$/i.test(parsed.message);
  switch (status) {
    case 400:
      return new AriBadRequestError(operation, message, 400, options);
    case 404:
      return new AriNotFoundError(operation, message, options);
    case 409:
      return notInStasis
        ? new AriNotInStasisError(operation, message, options)
        : new AriConflictError(operation, message, options);
    case 412:
      return new AriConflictError(operation, message, { ...options, status: 412 });
    case 422:
      return notInStasis
        ? new AriNotInStasisError(operation, message, { ...options, status: 422 })
        : new AriBadRequestError(operation, message, 422, options);
    case 403:
      return new AriServerError(operation, message, { ...options, status: 403 });
    case undefined:
      return new AriError('unknown', undefined, operation, message, options);
    default:
      if (status >= 500) return new AriServerError(operation, message, { ...options, status });
      return new AriError('unknown', status, operation, message, options);
  }
}
