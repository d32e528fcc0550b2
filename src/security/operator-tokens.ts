/**
 * Operator tokens: short-lived credentials scoped to one operator extension, minted by a CRM with
 * its API key (`POST /v1/operators/{extension}/tokens`) and handed to that operator's browser (the
 * live stream `GET /v1/stream`, the console, click-to-call from its own extension). Reference:
 * docs/stream.md "Operator tokens".
 *
 * Stateless: a token is `ot1.<payload>.<signature>`, the payload the base64url JSON
 * `{"x": "<extension>", "e": <expires, unix seconds>, "k": "<API key name>", "n": "<nonce>"}`
 * and the signature the base64url HMAC-SHA256 of `ot1.<payload>` with OPERATOR_TOKEN_SECRET. So a
 * token works across engine restarts and on every instance sharing the secret, and nothing is
 * stored. Rotation: OPERATOR_TOKEN_SECRET holds several keys, the first signs, all verify. A token
 * cannot be revoked before it expires (keep TTLs short; removing its key from the secret list
 * revokes every token it signed). Tokens are never logged.
 *
 * HTTP: {@link acceptOperatorTokens} lets `Authorization: Bearer <operator token>` through on the
 * routes a browser console needs, with the token's extension as the request's principal
 * ({@link operatorOf}); routes narrow what they answer with {@link requireOwnExtension}.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { HttpError } from '../http/errors.ts';

/** Prefix of every operator token (its format version). */
export const OPERATOR_TOKEN_PREFIX = 'ot1.';

/** Bounds of a token's lifetime, seconds. */
export const OPERATOR_TOKEN_TTL = { minSec: 60, maxSec: 86_400 } as const;

/** What a valid token says. */
export interface OperatorPrincipal {
  /** The operator extension the token is scoped to, e.g. `101`. */
  extension: string;
  /** When the token stops working, epoch milliseconds. */
  expiresAtMs: number;
  /** Name of the API key that minted it (logs). */
  issuedBy: string;
}

/** Why a token was refused: `expired` (it was valid) or `invalid` (forged, damaged, unknown key). */
export type TokenRefusal = 'expired' | 'invalid';

/** Result of {@link OperatorTokens.verify}. */
export type TokenVerdict =
  { ok: true; principal: OperatorPrincipal } | { ok: false; reason: TokenRefusal };

/** A freshly minted token. */
export interface MintedToken {
  token: string;
  /** Expiry, ISO 8601 UTC. */
  expiresAt: string;
}

/** Options of {@link OperatorTokens}. */
export interface OperatorTokensOptions {
  /**
   * HMAC keys (OPERATOR_TOKEN_SECRET): the first signs, all verify. Empty: tokens are not
   * configured ({@link OperatorTokens.configured} is false; mint throws, verify refuses).
   */
  secrets: readonly string[];
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

const b64 = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** Signs and verifies operator tokens. */
export class OperatorTokens {
  private readonly keys: Buffer[];
  private readonly now: () => number;

  constructor(options: OperatorTokensOptions) {
    this.keys = options.secrets.map((secret) => Buffer.from(secret, 'utf8'));
    this.now = options.now ?? Date.now;
  }

  /** True when at least one key is configured. */
  get configured(): boolean {
    return this.keys.length > 0;
  }

  /**
   * A token for `extension` valid `ttlSec` seconds from now.
   *
   * @throws RangeError when no key is configured or `ttlSec` is outside {@link OPERATOR_TOKEN_TTL}
   */
  mint(extension: string, ttlSec: number, issuedBy: string): MintedToken {
    const key = this.keys[0];
    if (!key) throw new RangeError('operator tokens are not configured (OPERATOR_TOKEN_SECRET)');
    if (
      !Number.isInteger(ttlSec) ||
      ttlSec < OPERATOR_TOKEN_TTL.minSec ||
      ttlSec > OPERATOR_TOKEN_TTL.maxSec
    )
      throw new RangeError(
        `ttlSec must be ${OPERATOR_TOKEN_TTL.minSec}-${OPERATOR_TOKEN_TTL.maxSec}`,
      );
    const expiresSec = Math.floor(this.now() / 1000) + ttlSec;
    const payload = b64(
      JSON.stringify({ x: extension, e: expiresSec, k: issuedBy, n: b64(randomBytes(6)) }),
    );
    const signed = `${OPERATOR_TOKEN_PREFIX}${payload}`;
    return {
      token: `${signed}.${b64(sign(key, signed))}`,
      expiresAt: new Date(expiresSec * 1000).toISOString(),
    };
  }

  /**
   * Check a token: its signature under one of the keys (constant-time comparison), its shape and
   * its expiry. Never throws.
   */
  verify(token: string): TokenVerdict {
    if (!isOperatorToken(token) || token.length > 1024) return { ok: false, reason: 'invalid' };
    const dot = token.lastIndexOf('.');
    const signed = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    let valid = false;
    for (const key of this.keys) {
      const expected = sign(key, signed);
      if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
    }
    if (!valid) return { ok: false, reason: 'invalid' };
    let claims: unknown;
    try {
      claims = JSON.parse(
        Buffer.from(signed.slice(OPERATOR_TOKEN_PREFIX.length), 'base64url').toString('utf8'),
      );
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    const { x, e, k } = (claims ?? {}) as { x?: unknown; e?: unknown; k?: unknown };
    if (typeof x !== 'string' || !/^\d{2,10}$/.test(x) || typeof e !== 'number')
      return { ok: false, reason: 'invalid' };
    const expiresAtMs = e * 1000;
    if (expiresAtMs <= this.now()) return { ok: false, reason: 'expired' };
    return {
      ok: true,
      principal: { extension: x, expiresAtMs, issuedBy: typeof k === 'string' ? k : '' },
    };
  }
}

function sign(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** Whether `credential` has the form of an operator token (not whether it is valid). */
export function isOperatorToken(credential: string): boolean {
  return /^ot1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);
}

/**
 * `url` with the value of every `token` query parameter replaced by `***`, for anything that
 * logs request URLs (the engine logs paths without their query; a reverse proxy in front of it
 * should redact `token=` the same way).
 */
export function redactTokens(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1***');
}

/** The operator principal of a request authenticated by an operator token, else undefined. */
export function operatorOf(res: Response): OperatorPrincipal | undefined {
  const principal: unknown = res.locals.operator;
  return principal && typeof principal === 'object' ? (principal as OperatorPrincipal) : undefined;
}

/**
 * The hook every route an operator token may reach calls with the extension the request acts
 * on or for (a click-to-call's `operator`, the `{extension}` of `/v1/operators/{extension}/…`):
 * a request with an API key may act on any extension; one with an operator token only on its
 * own.
 *
 * @throws HttpError 403 `extension_not_allowed` when an operator token names another extension
 */
export function requireOwnExtension(res: Response, extension: string): void {
  const operator = operatorOf(res);
  if (operator && operator.extension !== extension)
    throw new HttpError(
      403,
      'extension_not_allowed',
      `this operator token is for extension ${operator.extension}, not ${extension}`,
    );
}

/** A call's parties as the API shows it (a live snapshot or a stored record). */
export interface CallParties {
  direction: 'in' | 'out';
  from: string;
  answeredBy?: string;
  legs: ReadonlyArray<{ extension?: string }>;
}

/**
 * Whether the operator at `extension` took part in the call: rang for it, answered it, placed it
 * (outbound from the extension), or got it by transfer.
 */
export function callInvolves(call: CallParties, extension: string): boolean {
  return (
    call.answeredBy === extension ||
    (call.direction === 'out' && call.from === extension) ||
    call.legs.some((leg) => leg.extension === extension)
  );
}

/**
 * A route an operator token may use: `method` and a path pattern below `/v1`. `extension`:
 * the path's first group is an extension that must be the token's own. `call`: the first group
 * is a call id whose call must involve the token's extension ({@link callInvolves}).
 */
export interface TokenRoute {
  method: string;
  path: RegExp;
  scope?: 'extension' | 'call';
}

/**
 * The routes a browser console needs, open to operator tokens: click-to-call and the call
 * history (narrowed to the operator's calls by the call routes), one call and its recordings,
 * the operator's current call, and the presence routes (`GET /v1/operators`,
 * `GET /v1/operators/{extension}` and `PUT /v1/operators/{extension}/status`, own extension only).
 */
export const TOKEN_ROUTES: readonly TokenRoute[] = [
  { method: 'POST', path: /^\/calls\/?$/ },
  { method: 'GET', path: /^\/calls\/?$/ },
  { method: 'GET', path: /^\/calls\/([^/]+)\/?$/, scope: 'call' },
  { method: 'GET', path: /^\/calls\/([^/]+)\/recording\/?$/, scope: 'call' },
  { method: 'GET', path: /^\/calls\/([^/]+)\/recordings\/[^/]+\/?$/, scope: 'call' },
  { method: 'GET', path: /^\/operators\/?$/ },
  { method: 'GET', path: /^\/stream\/?$/ },
  { method: 'GET', path: /^\/operators\/(\d{2,10})\/?$/, scope: 'extension' },
  { method: 'GET', path: /^\/operators\/(\d{2,10})\/[^/]+\/?$/, scope: 'extension' },
  { method: 'PUT', path: /^\/operators\/(\d{2,10})\/status\/?$/, scope: 'extension' },
];

/**
 * The CRM connector endpoints open to operator tokens (paths from the server's root): amoCRM's
 * widget click-to-call, for the token's own extension only (the route checks the user's
 * extension with {@link requireOwnExtension}).
 */
export const CONNECTOR_TOKEN_ROUTES: readonly TokenRoute[] = [
  { method: 'POST', path: /^\/connectors\/amocrm\/click-to-call\/?$/ },
];

/** Options of {@link acceptOperatorTokens}. */
export interface AcceptOperatorTokensOptions {
  tokens: OperatorTokens;
  /** Routes open to tokens (paths below the mount point); default {@link TOKEN_ROUTES}. */
  routes?: readonly TokenRoute[];
  /**
   * The parties of a call the engine holds or stored, undefined when unknown (routes with scope
   * `call`): a call that does not involve the token's extension answers 404 `call_not_found`.
   */
  callParties: (callId: string) => Promise<CallParties | undefined>;
}

/**
 * Middleware in front of the API key check (`apiKeyAuth`): a request whose
 * `Authorization: Bearer` credential is an operator token is authenticated by the token
 * (`res.locals.operator`, and `res.locals.apiKeyName` = `operator:<extension>` for rate limits,
 * idempotency and logs); every other request goes to `apiKeyAuth`.
 *
 * Errors: 401 `token_expired` / `invalid_token`; 403 `token_not_allowed` on a route not open to
 * tokens; 403 `extension_not_allowed` on another operator's `/operators/{extension}/…`;
 * 404 `call_not_found` for another operator's call.
 */
export function acceptOperatorTokens(
  apiKeyAuth: RequestHandler,
  options: AcceptOperatorTokensOptions,
): RequestHandler {
  const routes = options.routes ?? TOKEN_ROUTES;
  return (req, res, next) => {
    const match = /^Bearer +(ot1\.[^\s]+) *$/i.exec(req.headers.authorization ?? '');
    if (!match) {
      apiKeyAuth(req, res, next);
      return;
    }
    const verdict = options.tokens.verify(match[1]!);
    if (!verdict.ok) {
      next(
        new HttpError(
          401,
          verdict.reason === 'expired' ? 'token_expired' : 'invalid_token',
          verdict.reason === 'expired'
            ? 'the operator token has expired; ask the CRM for a new one'
            : 'the operator token is not valid',
          undefined,
          { 'WWW-Authenticate': 'Bearer realm="ari-crm"' },
        ),
      );
      return;
    }
    const { principal } = verdict;
    // HEAD is answered by the GET routes (Express does the same).
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = routes.find((r) => r.method === method && r.path.test(req.path));
    if (!route) {
      next(new HttpError(403, 'token_not_allowed', 'an operator token cannot use this route'));
      return;
    }
    res.locals.operator = principal;
    res.locals.apiKeyName = `operator:${principal.extension}`;
    const target = route.path.exec(req.path)?.[1];
    if (route.scope === 'extension' && target !== undefined) {
      try {
        requireOwnExtension(res, target);
      } catch (err) {
        next(err);
        return;
      }
    }
    if (route.scope !== 'call' || target === undefined) {
      next();
      return;
    }
    let callId: string;
    try {
      callId = decodeURIComponent(target);
    } catch {
      callId = target;
    }
    options
      .callParties(callId)
      .then(
        (call) =>
          next(
            call && callInvolves(call, principal.extension)
              ? undefined
              : new HttpError(404, 'call_not_found', `call ${callId} not found`),
          ),
        next,
      );
  };
}
