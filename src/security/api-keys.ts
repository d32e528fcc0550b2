/**
 * API keys, one per CRM client, from the config with a name each, compared in constant time. The
 * key's name travels with the request (logs, rate limits,
 * idempotency scope); the key itself is never logged nor echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { ApiKeyEntry } from '../config/schema.ts';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { canonicalIp } from './ip.ts';
import type { AuthRefusal, SecurityMetrics } from './metrics.ts';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** The configured keys, kept as SHA-256 digests. */
export class ApiKeyRing {
  private readonly entries: ReadonlyArray<{ name: string; digest: Buffer }>;

  /** @param keys parsed `API_KEYS` */
  constructor(keys: readonly ApiKeyEntry[]) {
    this.entries = keys.map((k) => ({ name: k.name, digest: digest(k.key) }));
  }

  /** True when at least one key is configured. */
  get configured(): boolean {
    return this.entries.length > 0;
  }

  /**
   * The name of the key equal to `presented`, or undefined. Every configured key is compared
   * (SHA-256 digests, `timingSafeEqual`), so the time taken says nothing about which key or how
   * much of it matched.
   */
  verify(presented: string): string | undefined {
    const given = digest(presented);
    let found: string | undefined;
    for (const entry of this.entries) {
      const equal = timingSafeEqual(given, entry.digest);
      if (equal && found === undefined) found = entry.name;
    }
    return found;
  }
}

/** The name of the API key that authenticated this request (`''` when none did). */
export function apiKeyNameOf(res: Response): string {
  const name: unknown = res.locals.apiKeyName;
  return typeof name === 'string' ? name : '';
}

/** Options of {@link requireApiKey}. */
export interface RequireApiKeyOptions {
  keys: ApiKeyRing;
  logger: Logger;
  metrics: SecurityMetrics;
  /**
   * Also accept the key as this query parameter (the asterisk.fcgi compatibility path only, whose
   * clients can change a URL but not add headers), e.g. `api_key`.
   */
  queryParameter?: string;
}

/**
 * Middleware: `Authorization: Bearer <key>` (or the query parameter, where allowed) must name a
 * configured key; its name is stored in `res.locals.apiKeyName`.
 *
 * Errors (as {@link HttpError}): 503 `api_keys_not_configured` when API_KEYS is empty;
 * 401 `unauthorized` (with `WWW-Authenticate: Bearer`) when no credentials or a malformed
 * Authorization header are given; 403 `forbidden` when the key given is not a configured one.
 */
export function requireApiKey(options: RequireApiKeyOptions): RequestHandler {
  const { keys, logger, metrics, queryParameter } = options;
  const refuse = (reason: AuthRefusal, ip: string | undefined, path: string): void => {
    metrics.authRefusals.inc({ reason });
    logger.warn('API request refused', { reason, ip: canonicalIp(ip) ?? ip, path });
  };
  return (req, res, next) => {
    if (!keys.configured) {
      refuse('api_keys_not_configured', req.ip, req.path);
      next(
        new HttpError(
          503,
          'api_keys_not_configured',
          'no API keys are configured (set API_KEYS=name:key); the API refuses every request until then',
        ),
      );
      return;
    }
    let presented: string | undefined;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer +([^\s]+) *$/i.exec(header);
      if (!match) {
        refuse('unauthorized', req.ip, req.path);
        next(unauthorized('the Authorization header must be "Bearer <api key>"'));
        return;
      }
      presented = match[1];
    } else if (queryParameter) {
      const value = req.query[queryParameter];
      if (typeof value === 'string' && value !== '') presented = value;
    }
    if (presented === undefined) {
      refuse('unauthorized', req.ip, req.path);
      next(
        unauthorized(
          queryParameter
            ? `an API key is required: Authorization: Bearer <api key>, or ?${queryParameter}=`
            : 'an API key is required: Authorization: Bearer <api key>',
        ),
      );
      return;
    }
    const name = keys.verify(presented);
    if (name === undefined) {
      refuse('forbidden', req.ip, req.path);
      next(new HttpError(403, 'forbidden', 'the API key is not valid'));
      return;
    }
    res.locals.apiKeyName = name;
    next();
  };
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message, undefined, {
    'WWW-Authenticate': 'Bearer realm="ari-crm"',
  });
}
