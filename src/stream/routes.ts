/**
 * The stream's HTTP routes, mounted at `/v1` behind the API key check:
 *
 * - `POST /v1/operators/{extension}/tokens` `{ttlSec?}` → 201 `{token, expiresAt}`: an operator
 *   token for the extension (API keys only; src/security/operator-tokens.ts) | 400
 *   `validation_failed` | 403 `token_not_allowed` (asked with an operator token) | 503
 *   `operator_tokens_not_configured`
 * - `GET /v1/stream` without a WebSocket upgrade → 426 `upgrade_required` (the stream itself is
 *   served on the upgrade, src/stream/server.ts)
 */
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import { extensionSchema } from '../calls/routes.ts';
import { HttpError } from '../http/errors.ts';
import { validate } from '../http/validation.ts';
import type { Logger } from '../logging/logger.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import { OPERATOR_TOKEN_TTL, type OperatorTokens } from '../security/operator-tokens.ts';

/** Body of `POST /v1/operators/{extension}/tokens`. */
export const tokenRequestSchema = z.strictObject({
  ttlSec: z
    .int('must be an integer')
    .min(OPERATOR_TOKEN_TTL.minSec)
    .max(OPERATOR_TOKEN_TTL.maxSec)
    .optional()
    .describe(
      `How long the token works, in seconds (${OPERATOR_TOKEN_TTL.minSec}-${OPERATOR_TOKEN_TTL.maxSec}); default OPERATOR_TOKEN_DEFAULT_TTL_SEC (1 hour).`,
    ),
});

/** The `201` body of `POST /v1/operators/{extension}/tokens`. */
export interface TokenView {
  /** The operator token: `?token=` of the stream, or `Authorization: Bearer` on the API. */
  token: string;
  /** When it stops working, ISO 8601 UTC. */
  expiresAt: string;
}

/** What the routes need. */
export interface StreamRoutesDeps {
  tokens: OperatorTokens;
  /** OPERATOR_TOKEN_DEFAULT_TTL_SEC. */
  defaultTtlSec: number;
  logger: Logger;
}

/** A body that may be empty (then `{}`). */
function optionalJson(req: Request): unknown {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) return {};
  if (!req.is('application/json'))
    throw new HttpError(
      415,
      'unsupported_media_type',
      'the body must be JSON (Content-Type: application/json)',
    );
  return req.body as unknown;
}

/** Build the router; mount it at `/v1` behind the API key check and a JSON body parser. */
export function createStreamRoutes(deps: StreamRoutesDeps): Router {
  const router = express.Router();

  router.post('/operators/:extension/tokens', (req, res) => {
    const extension = validate(extensionSchema, req.params.extension, 'extension');
    const body = validate(tokenRequestSchema, optionalJson(req), 'body');
    if (!deps.tokens.configured)
      throw new HttpError(
        503,
        'operator_tokens_not_configured',
        'operator tokens are not configured (set OPERATOR_TOKEN_SECRET)',
      );
    const minted = deps.tokens.mint(
      extension,
      body.ttlSec ?? deps.defaultTtlSec,
      apiKeyNameOf(res),
    );
    deps.logger.info('operator token issued', {
      extension,
      keyName: apiKeyNameOf(res),
      expiresAt: minted.expiresAt,
    });
    const view: TokenView = minted;
    res.status(201).set('Cache-Control', 'no-store').json(view);
  });

  router.get('/stream', () => {
    throw new HttpError(
      426,
      'upgrade_required',
      'GET /v1/stream is a WebSocket: open it with a WebSocket client (Upgrade: websocket)',
      undefined,
      { Upgrade: 'websocket' },
    );
  });

  return router;
}
