/**
 * OpenAPI paths of the live stream (src/stream/routes.ts): operator tokens and the WebSocket
 * `GET /v1/stream`.
 */
import { extensionSchema } from '../../calls/routes.ts';
import {
  authErrors,
  errorResponse,
  inline,
  json,
  payloadTooLarge,
  retryAfterHeader,
  TAG,
  type JsonObject,
} from './common.ts';

/** `POST /v1/operators/{extension}/tokens` and `GET /v1/stream` (a WebSocket upgrade). */
export function streamPaths(): Record<string, JsonObject> {
  const extensionParameter: JsonObject = {
    name: 'extension',
    in: 'path',
    required: true,
    description: extensionSchema.description,
    schema: inline(extensionSchema),
  };
  return {
    '/v1/operators/{extension}/tokens': {
      post: {
        operationId: 'createOperatorToken',
        tags: [TAG.stream],
        summary: 'Issue an operator token',
        description:
          "A short-lived token scoped to one operator extension, for that operator's browser: the live stream (`GET /v1/stream?token=`), and `Authorization: Bearer <token>` on click-to-call from that extension, its call history, its calls and their recordings, and its presence. Signed with OPERATOR_TOKEN_SECRET (stateless: it survives a restart; it cannot be revoked before it expires). API keys only. See docs/stream.md.",
        security: [{ bearerAuth: [] }],
        parameters: [extensionParameter],
        requestBody: { required: false, content: json('OperatorTokenRequest') },
        responses: {
          '201': {
            description: 'The token (`Cache-Control: no-store`).',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['token', 'expiresAt'],
                  properties: {
                    token: {
                      type: 'string',
                      description:
                        'The operator token (`ot1.<payload>.<signature>`); never logged.',
                    },
                    expiresAt: {
                      type: 'string',
                      format: 'date-time',
                      description: 'When it stops working, ISO 8601 UTC.',
                    },
                  },
                },
              },
            },
          },
          '400': errorResponse(
            '`invalid_request` (field named: extension, ttlSec), `invalid_json`.',
          ),
          ...authErrors,
          '403': errorResponse(
            '`token_not_allowed`: asked with an operator token; `forbidden`, `ip_not_allowed`.',
          ),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
          '503': errorResponse(
            '`operator_tokens_not_configured`: OPERATOR_TOKEN_SECRET is not set (production); `shutting_down`; `api_keys_not_configured`.',
          ),
        },
      },
    },
    '/v1/stream': {
      get: {
        operationId: 'openStream',
        tags: [TAG.stream],
        summary: 'The live stream (WebSocket)',
        description:
          'A WebSocket (`Upgrade: websocket`), not a plain GET: live lifecycle events for operators\' browsers. Credentials: `?token=<operator token>` (that extension\'s events only), `Authorization: Bearer <API key or token>`, or a first message `{"type":"auth","token":"…"}` within 5 s; an API key opens an admin stream of every event. Messages are JSON: `{"type":"stream.welcome"}`, the missed events (`?after=`) or the calls in progress, `{"type":"stream.synced","cursor"}`, then each event as its webhook body plus its feed `cursor`. Close codes: 4000 bad message, 4001 token expired, 4002 no credentials in time, 4003 credentials refused, 4008 the client reads too slowly, 1001 the engine stops, 1011 stored events unreadable, 1013 an operator token authenticated while the places for operators are taken (STREAM_ADMIN_RESERVE places are kept for API key streams; reconnect with a back-off). Renew with `{"type":"renew","token"}`. Pages of origins outside STREAM_ALLOWED_ORIGINS are refused. See docs/stream.md.',
        security: [{ bearerAuth: [] }, { operatorToken: [] }, { streamToken: [] }, {}],
        parameters: [
          {
            name: 'after',
            in: 'query',
            required: false,
            description:
              'Resume after this cursor (of a stream message or of GET /v1/events): the missed events first, then live ones, without duplicates.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '101': { description: 'Switching Protocols: the WebSocket is open.' },
          '400': errorResponse('`invalid_cursor` (`after`).'),
          '403': errorResponse(
            "`origin_not_allowed`: the page's Origin is not in STREAM_ALLOWED_ORIGINS; `ip_not_allowed`.",
          ),
          '426': errorResponse('`upgrade_required`: a plain GET without the WebSocket upgrade.'),
          '503': {
            description:
              '`stream_full`: STREAM_MAX_SOCKETS sockets are open, or the token in the URL or `Authorization` header is an operator token and operators hold all their places (STREAM_MAX_SOCKETS less STREAM_ADMIN_RESERVE, kept for API key streams); retry after `Retry-After` seconds (stream sockets do not count against HTTP_MAX_CONNECTIONS; they have this cap of their own); `shutting_down`.',
            headers: retryAfterHeader,
            content: json('Error'),
          },
        },
      },
    },
  };
}
