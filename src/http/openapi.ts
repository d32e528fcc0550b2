/**
 * The OpenAPI 3.1 document served at `GET /openapi.json`: every public route, with an
 * `operationId` and tags,
 * request schemas generated from the same zod schemas the routes validate with
 * (`z.toJSONSchema`), responses, the `{code, message}` error model, the security schemes, and
 * the webhook payloads (OAS 3.1 `webhooks`). A test compares its paths with Express's routes.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  callListQuerySchema,
  clickToCallBodySchema,
  idempotencyKeySchema,
  extensionSchema,
  serviceNumberSchema,
  transferBodySchema,
} from '../calls/routes.ts';
import {
  autocallBodySchema,
  autocallJobPageSchema,
  autocallJobSchema,
  campaignBodySchema,
  campaignJobsAcceptedSchema,
  campaignJobsBodySchema,
  campaignJobsQuerySchema,
  campaignSchema,
  MAX_JOBS_PER_REQUEST,
} from '../autocalls/schemas.ts';
import { COMPAT_KEY_PARAMETER } from '../compat/router.ts';
import { deliveryLogQuerySchema, eventFeedQuerySchema } from '../events/routes.ts';
import { tokenRequestSchema } from '../stream/routes.ts';
import {
  operatorListSchema,
  operatorSchema,
  operatorStatusBodySchema,
} from '../operators/schemas.ts';
import {
  MAKE_CALL_PATH,
  makeCallParamsSchema,
  USER_STATUS_PATH,
  userStatusParamsSchema,
} from '../connectors/retailcrm/routes.ts';
import { amoCrmClickToCallSchema, CLICK_TO_CALL_PATH } from '../connectors/amocrm/routes.ts';
import {
  EVENTS_PATH as BITRIX24_EVENTS_PATH,
  externalCallStartSchema,
  INSTALL_PATH as BITRIX24_INSTALL_PATH,
} from '../connectors/bitrix24/routes.ts';
import { historyResponseSchemas } from './history-schemas.ts';
import {
  acceptedCallSchema,
  callSnapshotSchema,
  currentCallSchema,
  errorSchema,
  webhookSchemas,
} from './schemas.ts';

/** A JSON object (the document and its parts). */
export type JsonObject = { [key: string]: unknown };

/** What varies between deployments. */
export interface OpenApiOptions {
  /** COMPAT_PATH, e.g. `/asterisk.fcgi`. */
  compatPath: string;
  /** CRM_CONNECTOR: the endpoints its CRM calls are documented (retailcrm, bitrix24, amocrm). */
  connector?: string;
}

type SchemaMap = Record<string, z.ZodType>;

function componentSchemas(schemas: SchemaMap, io: 'input' | 'output'): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const generated = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  const out: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(generated.schemas)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as JsonObject;
    out[id] = rest;
  }
  return out;
}

/** An inline JSON Schema of a parameter. */
function inline(schema: z.ZodType): JsonObject {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
  }) as JsonObject;
  return rest;
}

/** The query parameters of a route, from the zod object its query is validated with. */
function queryParameters(schema: z.ZodObject): JsonObject[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const { description, ...rest } = inline(field as z.ZodType);
    return { name, in: 'query', required: false, description, schema: rest };
  });
}

const ref = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string): JsonObject => ({ 'application/json': { schema: ref(id) } });

const errorResponse = (description: string): JsonObject => ({
  description,
  content: json('Error'),
});

const retryAfterHeader: JsonObject = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
};

/**
 * 503 of a call command (create, hang up, transfer): `ari_unavailable` while the engine is not
 * connected to Asterisk, with the other 503 codes of an authenticated route.
 */
const commandUnavailable = (extra = ''): JsonObject => ({
  description: `\`ari_unavailable\`: the engine is not connected to Asterisk (starting up, or Asterisk is unreachable), nothing was done (\`Retry-After\` seconds); ${extra}\`shutting_down\`; \`api_keys_not_configured\`.`,
  headers: retryAfterHeader,
  content: json('Error'),
});

/** The common error answers of an authenticated route. */
const authErrors: Record<string, JsonObject> = {
  '401': {
    description:
      '`unauthorized`: no credentials, or a malformed Authorization header (with `WWW-Authenticate: Bearer`).',
    content: json('Error'),
  },
  '403': errorResponse(
    '`forbidden`: the API key is not valid; `ip_not_allowed`: the client is outside HTTP_ALLOWED_CIDRS.',
  ),
  '503': errorResponse(
    '`api_keys_not_configured`: API_KEYS is empty (development), every API route refuses; `shutting_down`: the engine is stopping (SIGTERM), retry on another instance (`Connection: close`).',
  ),
};

/** The optional `Idempotency-Key` header of the creating POSTs (calls, notification calls). */
const idempotencyKeyParameter: JsonObject = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: idempotencyKeySchema.description,
  schema: inline(idempotencyKeySchema),
};

const callIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Engine call id (UUID).',
  schema: { type: 'string' },
};

const autocallIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Notification call (job) id; also the asterisk.fcgi AutoCallID.',
  schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
};

const campaignIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Campaign id.',
  schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
};

const textAnswer = (description: string, headers: JsonObject = {}): JsonObject => ({
  description,
  headers: {
    'X-Error-Code': {
      description: 'Machine code of an `Answer: Error` / `Answer: Busy`.',
      schema: { type: 'string' },
    },
    ...headers,
  },
  content: { 'text/plain': { schema: { type: 'string' } } },
});

/** The `{extension}` of the operators routes. */
const operatorExtensionParameter: JsonObject = {
  name: 'extension',
  in: 'path',
  required: true,
  description: "The operator's extension, e.g. 101.",
  schema: { type: 'string', pattern: '^\\d{2,10}$' },
};

/** The tags grouping the operations. */
const TAG = {
  calls: 'Calls',
  recordings: 'Recordings',
  events: 'Events',
  operators: 'Operators',
  stream: 'Live stream',
  autocalls: 'Notification calls',
  compat: 'asterisk.fcgi compatibility',
  connectors: 'CRM connectors',
  webhooks: 'Webhooks',
  operations: 'Operations',
  console: 'Operator console',
} as const;

/** 413 of a route with a JSON body (express.json's limit, src/http/app.ts). */
const payloadTooLarge: JsonObject = errorResponse(
  '`payload_too_large`: the request body is larger than 256 KiB.',
);

/** A HEAD operation from a GET one: the same parameters, statuses and headers, no bodies. */
function headOf(get: JsonObject, texts: JsonObject): JsonObject {
  const responses = Object.fromEntries(
    Object.entries(get.responses as Record<string, JsonObject>).map(([status, response]) => {
      const { content: _content, ...rest } = response;
      return [status, rest];
    }),
  );
  const { summary: _s, description: _d, operationId: _o, ...rest } = get;
  return { ...rest, ...texts, responses };
}

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/**
 * Build the document. Paths use OpenAPI templates (`/v1/calls/{id}`); the compat path is the
 * configured one.
 */
export function buildOpenApiDocument(options: OpenApiOptions): JsonObject {
  const requestSchemas = componentSchemas(
    {
      ClickToCallRequest: clickToCallBodySchema,
      TransferRequest: transferBodySchema,
      AutocallRequest: autocallBodySchema,
      CampaignRequest: campaignBodySchema,
      CampaignJobsRequest: campaignJobsBodySchema,
      OperatorTokenRequest: tokenRequestSchema,
      OperatorStatusRequest: operatorStatusBodySchema,
    },
    'input',
  );
  const webhookIds: Record<string, string> = {
    'call.started': 'CallStartedEvent',
    'call.ringing': 'CallRingingEvent',
    'call.answered': 'CallAnsweredEvent',
    'call.transferred': 'CallTransferredEvent',
    'call.transfer_failed': 'CallTransferFailedEvent',
    'call.recovered': 'CallRecoveredEvent',
    'call.ended': 'CallEndedEvent',
    'recording.ready': 'RecordingReadyEvent',
    'autocall.attempt': 'AutocallAttemptEvent',
    'autocall.finished': 'AutocallFinishedEvent',
    'operator.state': 'OperatorStateEvent',
  };
  const responseSchemas = componentSchemas(
    {
      Call: callSnapshotSchema,
      AcceptedCall: acceptedCallSchema,
      CurrentCall: currentCallSchema,
      Operator: operatorSchema,
      OperatorList: operatorListSchema,
      Error: errorSchema,
      AutocallJob: autocallJobSchema,
      AutocallJobPage: autocallJobPageSchema,
      Campaign: campaignSchema,
      CampaignJobsAccepted: campaignJobsAcceptedSchema,
      ...historyResponseSchemas,
      ...Object.fromEntries(
        Object.entries(webhookSchemas).map(([type, schema]) => [webhookIds[type]!, schema]),
      ),
    },
    'output',
  );

  const publicGet = (
    operationId: string,
    summary: string,
    description: string,
    content: JsonObject,
    errors: Record<string, JsonObject> = {},
  ): JsonObject => ({
    get: {
      operationId,
      tags: [TAG.operations],
      summary,
      security: [],
      responses: { '200': { description, content }, ...errors },
    },
  });
  // /metrics and /openapi.json are behind the IP allow-list (not /healthz, /readyz).
  const outsideAllowList = {
    '403': errorResponse('`ip_not_allowed`: the client is outside HTTP_ALLOWED_CIDRS.'),
  };

  const extensionParameter: JsonObject = {
    name: 'extension',
    in: 'path',
    required: true,
    description: extensionSchema.description,
    schema: inline(extensionSchema),
  };
  const paths: Record<string, JsonObject> = {
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
    '/healthz': publicGet('getHealth', 'Liveness', 'The process answers.', {
      'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } },
    }),
    '/readyz': {
      get: {
        operationId: 'getReadiness',
        tags: [TAG.operations],
        summary: 'Readiness',
        description:
          'Ready when every check passes: `ari` (the ARI WebSocket is open), `store` (store writes succeed), `shutdown` (the engine is not stopping). `checks` lists each as `{status: "ok"}` or `{status: "failed", reason}`. Not subject to HTTP_ALLOWED_CIDRS.',
        security: [],
        responses: {
          '200': { description: 'Ready: `{status: "ready", checks}`.' },
          '503': {
            description: 'Not ready: `{status: "not_ready", checks}` names the failing check.',
          },
        },
      },
    },
    '/metrics': publicGet(
      'getMetrics',
      'Prometheus metrics',
      'Prometheus text format (`aricrm_*`).',
      { 'text/plain': { schema: { type: 'string' } } },
      outsideAllowList,
    ),
    '/console': {
      get: {
        operationId: 'getConsole',
        tags: [TAG.console],
        summary: 'The operator console',
        description:
          'The page an operator opens with a link the CRM builds: `/console?token=<operator token>&expiresAt=<ISO time>` (docs/console.md). The page keeps the token in the tab and removes it from the address bar. Served with a Content-Security-Policy that lets it load and connect to this engine only, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.',
        security: [],
        responses: {
          '200': {
            description: 'The page.',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
          ...outsideAllowList,
        },
      },
    },
    '/console/assets/console.css': {
      get: {
        operationId: 'getConsoleStyleSheet',
        tags: [TAG.console],
        summary: "The console's style sheet",
        security: [],
        responses: {
          '200': {
            description: 'The style sheet.',
            content: { 'text/css': { schema: { type: 'string' } } },
          },
          ...outsideAllowList,
        },
      },
    },
    '/console/assets/{file}': {
      get: {
        operationId: 'getConsoleScript',
        tags: [TAG.console],
        summary: "A module of the console's browser code",
        security: [],
        parameters: [
          {
            name: 'file',
            in: 'path',
            required: true,
            description: 'A JavaScript module of the console, e.g. console.js.',
            schema: { type: 'string', pattern: '^[a-z][a-z0-9-]*\\.js$' },
          },
        ],
        responses: {
          '200': {
            description: 'The module (an ES module).',
            content: { 'text/javascript': { schema: { type: 'string' } } },
          },
          '404': errorResponse('`not_found`: no such module.'),
          ...outsideAllowList,
        },
      },
    },
    '/openapi.json': publicGet(
      'getOpenApiDocument',
      'This document',
      'OpenAPI 3.1 document.',
      { 'application/json': { schema: { type: 'object' } } },
      outsideAllowList,
    ),
    '/v1/calls': {
      get: {
        operationId: 'listCalls',
        tags: [TAG.calls],
        summary: 'Call history',
        description:
          'Stored calls, newest first (by startedAt, then id), live ones included with their last stored state. Filters combine (all must hold). Cursor pagination: pass `nextCursor` back as `cursor` with the same filters; pages neither repeat nor skip calls while new ones arrive. Times ISO 8601 UTC; waitSec/talkSec whole seconds; recording bytes and whole seconds.',
        parameters: queryParameters(callListQuerySchema),
        responses: {
          '200': { description: 'A page of calls.', content: json('CallPage') },
          '400': errorResponse(
            '`invalid_query` (the parameter named in `field`: unknown parameter, bad time, limit, filter value, until not after since), `invalid_cursor` (field `cursor`: not a cursor of this list).',
          ),
          ...authErrors,
          '503': errorResponse(
            '`store_not_configured`: the engine runs without its store; `api_keys_not_configured`.',
          ),
        },
      },
      post: {
        operationId: 'createCall',
        tags: [TAG.calls],
        summary: 'Click-to-call',
        description:
          "Rings the operator first (CALLERID name CLICK_TO_CALL_CALLERID_NAME, number the customer's); once answered dials the customer through the trunk chosen by prefix and bridges them. Answers at once, once the call is in the store (a 202 is never lost to an engine crash; a commit slower than API_STORE_WAIT_MS, default 2000 ms, is not waited for; 0 = never waits). Toll-fraud guard: destination allow-list, per-key rate limit, cap of live originated calls.",
        parameters: [idempotencyKeyParameter],
        requestBody: { required: true, content: json('ClickToCallRequest') },
        responses: {
          '202': {
            description:
              'Accepted; follow it at `Location`. A repeat with the same Idempotency-Key answers the same (header `Idempotent-Replayed: true`).',
            headers: {
              Location: { description: '/v1/calls/{id}', schema: { type: 'string' } },
            },
            content: json('AcceptedCall'),
          },
          '400': errorResponse(
            '`invalid_request` (field named in `field`), `invalid_json`, `invalid_number` (field `to`).',
          ),
          ...authErrors,
          '403': errorResponse(
            '`destination_not_allowed` (DESTINATION_ALLOWLIST), `destination_type_not_allowed` (a premium-rate or other denied number type, named in `numberType`; DESTINATION_DENIED_TYPES), `forbidden`, `ip_not_allowed`.',
          ),
          '409': errorResponse(
            '`idempotency_conflict`: the key was used for a different request; `idempotency_in_progress`.',
          ),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`: the body is not JSON.'),
          '429': {
            description:
              '`rate_limited` (CALLS_RATE_LIMIT_PER_MIN per key) or `too_many_calls` (MAX_LIVE_ORIGINATED_CALLS engine-originated calls in progress); both with `Retry-After` seconds.',
            headers: retryAfterHeader,
            content: json('Error'),
          },
          '503': commandUnavailable(
            '`store_unavailable`: store writes are failing, no call was placed (`Retry-After` seconds); ',
          ),
        },
      },
    },
    '/v1/calls/{id}': {
      get: {
        operationId: 'getCall',
        tags: [TAG.calls],
        summary: 'A call',
        description:
          'A live call: its live state (`Call`). Otherwise the stored call (`CallRecord`): disposition, times, wait and talk seconds, legs with their times, and the recording (with `url` when the engine serves it). Times ISO 8601 UTC; waitSec/talkSec whole seconds.',
        parameters: [callIdParameter],
        responses: {
          '200': {
            description: 'The call: `Call` while live, `CallRecord` (a superset) once stored.',
            content: {
              'application/json': { schema: { anyOf: [ref('Call'), ref('CallRecord')] } },
            },
          },
          ...authErrors,
          '404': errorResponse('`call_not_found`.'),
        },
      },
    },
    '/v1/calls/{id}/hangup': {
      post: {
        operationId: 'hangupCall',
        tags: [TAG.calls],
        summary: 'Hang up a call',
        parameters: [callIdParameter],
        responses: {
          '200': { description: 'The call, ended.', content: json('Call') },
          ...authErrors,
          '404': errorResponse('`call_not_found`.'),
          '409': errorResponse('`call_ended`.'),
          '503': commandUnavailable(),
          '413': payloadTooLarge,
        },
      },
    },
    '/v1/calls/{id}/recording': {
      get: {
        operationId: 'getCallRecording',
        tags: [TAG.recordings],
        summary: "A call's recording (audio)",
        description:
          'The recorded conversation as `audio/wav` (RIFF PCM 8 kHz 16-bit mono), with HTTP Range (`Accept-Ranges: bytes`: one range per request, 206 + Content-Range). Authorised by an API key, or by a signed link as `call.ended` / `recording.ready` carry it (`?expires=<unix seconds>&sig=<hex HMAC-SHA256>`), so a CRM audio player can fetch it without a key. HEAD answers the headers only. See docs/recordings.md.',
        security: [{ bearerAuth: [] }, {}],
        parameters: [
          callIdParameter,
          {
            name: 'expires',
            in: 'query',
            required: false,
            description: 'Signed link: expiry, unix seconds.',
            schema: { type: 'string', pattern: '^[0-9]+$' },
          },
          {
            name: 'sig',
            in: 'query',
            required: false,
            description:
              'Signed link: hex HMAC-SHA256(RECORDING_LINK_SECRET, "recording:<id>:<expires>"). With it no API key is needed.',
            schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          },
          {
            name: 'Range',
            in: 'header',
            required: false,
            description: 'One byte range: `bytes=0-1023`, `bytes=1024-`, `bytes=-500`.',
            schema: { type: 'string' },
          },
          {
            name: 'If-None-Match',
            in: 'header',
            required: false,
            description:
              'ETags of copies the client holds (weak comparison), or `*`: 304 when the recording still matches.',
            schema: { type: 'string' },
          },
          {
            name: 'If-Modified-Since',
            in: 'header',
            required: false,
            description:
              'HTTP date (ignored with If-None-Match): 304 when the file has not changed since.',
            schema: { type: 'string' },
          },
          {
            name: 'If-Range',
            in: 'header',
            required: false,
            description:
              'With Range: the ETag or Last-Modified of the copy being resumed; when it no longer matches the whole file is sent (200).',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '200': {
            description: 'The whole file.',
            headers: {
              'Accept-Ranges': { schema: { const: 'bytes' } },
              'Content-Length': { schema: { type: 'integer' } },
            },
            content: { 'audio/wav': { schema: { type: 'string', contentMediaType: 'audio/wav' } } },
          },
          '206': {
            description: 'The requested byte range.',
            headers: {
              'Content-Range': {
                description: '`bytes <first>-<last>/<size>`',
                schema: { type: 'string' },
              },
              'Content-Length': { schema: { type: 'integer' } },
            },
            content: { 'audio/wav': { schema: { type: 'string', contentMediaType: 'audio/wav' } } },
          },
          '304': {
            description:
              'Not modified: If-None-Match matched the current ETag (or was `*`), or If-Modified-Since is not older than the file. No body.',
            headers: {
              ETag: { schema: { type: 'string' } },
              'Last-Modified': { schema: { type: 'string' } },
            },
          },
          ...authErrors,
          '403': errorResponse(
            '`link_expired`, `link_invalid` (altered id, expiry or signature); `forbidden`, `ip_not_allowed`.',
          ),
          '404': errorResponse(
            '`call_not_found`, `recording_not_found` (the call was not recorded), `recording_failed` (it could not be stored), `recording_file_missing`.',
          ),
          '409': errorResponse(
            '`recording_not_ready`: recorded, not stored yet (wait for `recording.ready`).',
          ),
          '416': {
            description: '`range_not_satisfiable`, with `Content-Range: bytes */<size>`.',
            content: json('Error'),
          },
        },
      },
    },
    '/v1/calls/{id}/transfer': {
      post: {
        operationId: 'transferCall',
        tags: [TAG.calls],
        summary: 'Transfer a bridged call',
        description:
          'kind `service`: the customer continues at SERVICE_CONTEXT,<to>,1 and the operator is hung up (`call.transferred`, then `call.ended`); answers 200 with the ended call. kind `extension`: blind transfer to another operator, same call id: the target is rung (`call.ringing`) while the customer goes on talking with the first operator; answers 202 with the call, whose `transfer` says the target rings. When the target answers it joins the customer and the first operator is hung up (`call.transferred`, then `call.answered` for the target, who becomes `answeredBy`). When it is busy, does not answer within DEFAULT_RING_TIMEOUT_SEC or cannot be reached, the call goes on with the first operator (`call.transfer_failed` with `dialStatus`). The customer or the first operator hanging up while the target rings ends the call as usual (the target stops ringing).',
        parameters: [callIdParameter],
        requestBody: { required: true, content: json('TransferRequest') },
        responses: {
          '200': {
            description: 'kind `service`: the call, ended (`endReason: transferred`).',
            content: json('Call'),
          },
          '202': {
            description:
              'kind `extension`: the target rings (`transfer` in the answer); the outcome follows as `call.transferred` or `call.transfer_failed`.',
            content: json('Call'),
          },
          '400': errorResponse('`invalid_request` (field named), `invalid_json`.'),
          ...authErrors,
          '404': errorResponse('`call_not_found`.'),
          '409': errorResponse(
            '`call_ended`, `call_not_bridged`, `transfer_in_progress` (a blind transfer still rings its target, the same extension or another), `transfer_to_self` (kind `extension`: `to` is the extension of the operator already on the call; nothing changes), `transfer_failed` (the target extension cannot be reached at all, e.g. offline: the call goes on with the first operator; `call.transfer_failed` is sent too).',
          ),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
          '503': commandUnavailable(),
        },
      },
    },
    '/v1/events': {
      get: {
        operationId: 'listEvents',
        tags: [TAG.events],
        summary: 'Event feed (pull)',
        description:
          "For CRMs that cannot receive webhooks: every lifecycle event, delivered or not, in outbox order (a call's events by `sequence`), each exactly as its webhook body. Read from the start without `after`, then keep passing `nextCursor` as `after`; an empty page returns the same cursor.",
        parameters: queryParameters(eventFeedQuerySchema),
        responses: {
          '200': { description: 'A page of events.', content: json('FeedPage') },
          '400': errorResponse(
            '`invalid_query` (field named: unknown parameter, limit), `invalid_cursor` (field `after`).',
          ),
          ...authErrors,
          '503': errorResponse('`store_not_configured`, `api_keys_not_configured`.'),
        },
      },
    },
    '/v1/webhooks/deliveries': {
      get: {
        operationId: 'listWebhookDeliveries',
        tags: [TAG.events],
        summary: 'Webhook delivery log',
        description:
          'One row per delivery attempt to the webhook endpoint, newest first: event, attempt number, endpoint URL (without credentials), time (ISO 8601 UTC), outcome, HTTP status, error, duration (ms). `status=failed` lists the attempts that did not deliver.',
        parameters: queryParameters(deliveryLogQuerySchema),
        responses: {
          '200': { description: 'A page of attempts.', content: json('DeliveryPage') },
          '400': errorResponse(
            '`invalid_query` (field named: unknown parameter, status, limit), `invalid_cursor` (field `cursor`).',
          ),
          ...authErrors,
          '503': errorResponse('`store_not_configured`, `api_keys_not_configured`.'),
        },
      },
    },
    '/v1/operators': {
      get: {
        operationId: 'listOperators',
        tags: [TAG.operators],
        summary: 'Every operator with its presence',
        description:
          "Each configured operator (OPERATOR_EXTENSIONS): what the phone is doing (`state`: offline, idle, ringing, on_call, from Asterisk's device states and the engine's calls), the status the operator chose (`status`: available, break, dnd), since when, and the current call. See docs/operators.md.",
        responses: {
          '200': {
            description: 'The operators, in configuration order.',
            content: json('OperatorList'),
          },
          ...authErrors,
        },
      },
    },
    '/v1/operators/{extension}': {
      get: {
        operationId: 'getOperator',
        tags: [TAG.operators],
        summary: "An operator's presence",
        parameters: [operatorExtensionParameter],
        responses: {
          '200': { description: 'The operator.', content: json('Operator') },
          '400': errorResponse('`invalid_request`: not an extension.'),
          ...authErrors,
          '404': errorResponse('`operator_not_found`: the extension is not an operator.'),
        },
      },
    },
    '/v1/operators/{extension}/status': {
      put: {
        operationId: 'setOperatorStatus',
        tags: [TAG.operators],
        summary: "Set an operator's status",
        description:
          'available: takes calls; break, dnd: inbound routing skips the operator (OPERATOR_PRESENCE_ROUTING). The status is stored (it survives a restart) and an `operator.state` webhook follows a change.',
        parameters: [operatorExtensionParameter],
        requestBody: { required: true, content: json('OperatorStatusRequest') },
        responses: {
          '200': { description: 'The operator, with its new status.', content: json('Operator') },
          '400': errorResponse(
            '`invalid_request` (field named: extension, body, status), `invalid_json`.',
          ),
          ...authErrors,
          '404': errorResponse('`operator_not_found`: the extension is not an operator.'),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`: the body is not JSON.'),
        },
      },
    },
    '/v1/operators/{extension}/current-call': {
      get: {
        operationId: 'getOperatorCurrentCall',
        tags: [TAG.operators],
        summary: "An operator's current call",
        parameters: [
          {
            name: 'extension',
            in: 'path',
            required: true,
            description: extensionSchema.description,
            schema: inline(extensionSchema),
          },
        ],
        responses: {
          '200': { description: 'The call (ringing or talking).', content: json('CurrentCall') },
          '400': errorResponse('`invalid_request`: not an extension.'),
          ...authErrors,
          '404': errorResponse('`no_active_call`.'),
        },
      },
    },
    '/v1/operators/me/current-call': {
      get: {
        operationId: 'getWorkstationCurrentCall',
        tags: [TAG.operators],
        summary: 'The current call of the operator at this workstation',
        description: "The extension comes from OPERATOR_IP_MAP and the requester's address.",
        responses: {
          '200': { description: 'The call.', content: json('CurrentCall') },
          ...authErrors,
          '404': errorResponse('`unknown_workstation` (address not mapped), `no_active_call`.'),
        },
      },
    },
    '/v1/autocalls': {
      post: {
        operationId: 'createAutocall',
        tags: [TAG.autocalls],
        summary: 'Create a notification call',
        description:
          'Queues a notification call: once due it is dialled on the trunk chosen by the number’s prefix (TRUNKS); when answered (and, with `confirm`, after the confirm digit) the files (or verbs) play. Busy or unanswered attempts are retried up to `tries` times, `triesPeriodSec` apart. Every job ends in one final status: delivered, busy, no_answer, failed, canceled (machine with answering-machine detection). `autocall.attempt` and `autocall.finished` webhooks follow. Safe to retry with `Idempotency-Key`. See docs/autocalls.md.',
        parameters: [idempotencyKeyParameter],
        requestBody: { required: true, content: json('AutocallRequest') },
        responses: {
          '202': {
            description:
              'Queued; `Location: /v1/autocalls/{id}`. A replay of an `Idempotency-Key` answers the first job with `Idempotent-Replayed: true`.',
            content: json('AutocallJob'),
          },
          '400': errorResponse(
            '`invalid_request` (field named), `invalid_number` (field `to`), `invalid_json`.',
          ),
          ...authErrors,
          '403': errorResponse(
            '`destination_not_allowed` (DESTINATION_ALLOWLIST), `destination_type_not_allowed` (DESTINATION_DENIED_TYPES, with `numberType`); `forbidden`, `ip_not_allowed`.',
          ),
          '404': errorResponse('`campaign_not_found` (field `campaignId`).'),
          '409': errorResponse(
            '`campaign_canceled`; `idempotency_conflict` (the key was used for another request), `idempotency_in_progress`.',
          ),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
          '422': errorResponse('`no_trunk`: TRUNKS has no trunk for the number.'),
          '429': {
            description:
              '`rate_limited`: too many calls for this API key (CALLS_RATE_LIMIT_PER_MIN), with `Retry-After` seconds.',
            headers: retryAfterHeader,
            content: json('Error'),
          },
          '503': errorResponse(
            '`autocalls_unavailable`: this engine has no notification-call dialer; `shutting_down`; `api_keys_not_configured`.',
          ),
        },
      },
    },
    '/v1/autocalls/{id}': {
      get: {
        operationId: 'getAutocall',
        tags: [TAG.autocalls],
        summary: 'A notification call with its attempts',
        parameters: [autocallIdParameter],
        responses: {
          '200': { description: 'The job, with every attempt.', content: json('AutocallJob') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`autocall_not_found`.'),
        },
      },
    },
    '/v1/autocalls/{id}/cancel': {
      post: {
        operationId: 'cancelAutocall',
        tags: [TAG.autocalls],
        summary: 'Cancel a notification call',
        description:
          'A queued job ends `canceled` at once; an attempt in progress is stopped and the job ends `canceled` unless its message was already delivered. A job already final is left as it is.',
        parameters: [autocallIdParameter],
        responses: {
          '200': { description: 'The job.', content: json('AutocallJob') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`autocall_not_found`.'),
          '413': payloadTooLarge,
        },
      },
    },
    '/v1/campaigns': {
      post: {
        operationId: 'createCampaign',
        tags: [TAG.autocalls],
        summary: 'Create a campaign',
        description:
          'A campaign groups notification calls under common limits: at most `maxConcurrent` calls in progress (across engines sharing the store), `callsPerSecond` new calls per second, only inside its calling `window`; its `defaults` apply to its jobs. It starts `active`.',
        requestBody: { required: true, content: json('CampaignRequest') },
        responses: {
          '201': {
            description: 'Created; `Location: /v1/campaigns/{id}`.',
            content: json('Campaign'),
          },
          '400': errorResponse('`invalid_request` (field named), `invalid_json`.'),
          ...authErrors,
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
        },
      },
    },
    '/v1/campaigns/{id}': {
      get: {
        operationId: 'getCampaign',
        tags: [TAG.autocalls],
        summary: 'A campaign with its job counts per status',
        parameters: [campaignIdParameter],
        responses: {
          '200': { description: 'The campaign and `counts`.', content: json('Campaign') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`campaign_not_found`.'),
        },
      },
    },
    '/v1/campaigns/{id}/jobs': {
      post: {
        operationId: 'addCampaignJobs',
        tags: [TAG.autocalls],
        summary: 'Add jobs to a campaign',
        description: `Up to ${MAX_JOBS_PER_REQUEST} jobs (body up to 8 MiB), each checked like \`POST /v1/autocalls\` (destination policy, trunk); all are stored in one transaction or none (a refusal names the job, e.g. \`jobs.17.to\`).`,
        parameters: [campaignIdParameter],
        requestBody: { required: true, content: json('CampaignJobsRequest') },
        responses: {
          '202': { description: 'Stored and queued.', content: json('CampaignJobsAccepted') },
          '400': errorResponse(
            '`invalid_request` (field named), `invalid_number` (field `jobs.<n>.to`), `invalid_json`.',
          ),
          ...authErrors,
          '403': errorResponse(
            '`destination_not_allowed`, `destination_type_not_allowed` (field `jobs.<n>.to`); `forbidden`, `ip_not_allowed`.',
          ),
          '404': errorResponse('`campaign_not_found`.'),
          '409': errorResponse('`campaign_canceled`.'),
          '413': errorResponse(
            `\`too_many_jobs\`: more than ${MAX_JOBS_PER_REQUEST} jobs; \`payload_too_large\`: a body over 8 MiB.`,
          ),
          '415': errorResponse('`unsupported_media_type`.'),
          '422': errorResponse('`no_trunk` (field `jobs.<n>.to`).'),
          '503': errorResponse(
            '`autocalls_unavailable`: this engine has no notification-call dialer; `shutting_down`; `api_keys_not_configured`.',
          ),
        },
      },
      get: {
        operationId: 'listCampaignJobs',
        tags: [TAG.autocalls],
        summary: 'A campaign’s jobs',
        description: 'In creation order, optionally of one status, in cursor pages.',
        parameters: [campaignIdParameter, ...queryParameters(campaignJobsQuerySchema)],
        responses: {
          '200': { description: 'A page of jobs.', content: json('AutocallJobPage') },
          '400': errorResponse(
            '`invalid_query` (field named: unknown parameter, status, limit), `invalid_cursor`, `invalid_request` (id).',
          ),
          ...authErrors,
          '404': errorResponse('`campaign_not_found`.'),
        },
      },
    },
    ...Object.fromEntries(
      (
        [
          [
            'pause',
            'pauseCampaign',
            'Pause a campaign',
            'No new call starts; calls in progress finish.',
          ],
          ['resume', 'resumeCampaign', 'Resume a campaign', 'The campaign places calls again.'],
          [
            'cancel',
            'cancelCampaign',
            'Cancel a campaign',
            'Its queued jobs end `canceled` at once; calls in progress are stopped and end `canceled` unless delivered. Final: a canceled campaign cannot be resumed.',
          ],
        ] as const
      ).map(([action, operationId, summary, description]) => [
        `/v1/campaigns/{id}/${action}`,
        {
          post: {
            operationId,
            tags: [TAG.autocalls],
            summary,
            description,
            parameters: [campaignIdParameter],
            responses: {
              '200': { description: 'The campaign with its counts.', content: json('Campaign') },
              '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
              ...authErrors,
              '404': errorResponse('`campaign_not_found`.'),
              ...(action === 'cancel' ? {} : { '409': errorResponse('`campaign_canceled`.') }),
              '413': payloadTooLarge,
            },
          },
        },
      ]),
    ),
    [options.compatPath]: {
      get: {
        operationId: 'asteriskFcgi',
        tags: [TAG.compat],
        summary: 'asterisk.fcgi compatibility',
        description:
          'The protocol of the asterisk.fcgi daemon this engine replaces, for workstation software written against it. Exactly one of `makecall`, `get_uniqueid_callerid`, `transfer` (with `dest`), `autocall` (with `file1`…`file10`), `autocallstatus`. Answers are text lines: `Answer: OK|Error|Busy` then `Key: value` lines; `autocall` answers `Answer: OK` and `AutoCallID: <id>`; `autocallstatus` answers `Answer: OK (Sent)` (delivered), `Answer: Busy`, `Answer: Queued` (queued or in progress), `Answer: NO ANSWER` (not answered, not confirmed, or an answering machine) or `Answer: Error` (failed or canceled; `X-Autocall-Status` gives the status). The operator is the one mapped to the client address (OPERATOR_IP_MAP). makecall waits until the customer rings (OK), the line stays busy through every try (Busy), or the call fails (Error); `X-Call-Id` names the call.',
        security: [{ bearerAuth: [] }, { compatKey: [] }],
        parameters: [
          {
            name: 'makecall',
            in: 'query',
            description: 'Customer number in any format: click-to-call from this workstation.',
            schema: { type: 'string' },
          },
          {
            name: 'get_uniqueid_callerid',
            in: 'query',
            description:
              "Flag (no value): this workstation's current call; answers `Answer: OK`, `CallerID: <number|unknown>`, `UniqueID: <customer channel id>`, or `Answer: Error`.",
            schema: { type: 'string' },
            allowEmptyValue: true,
          },
          {
            name: 'transfer',
            in: 'query',
            description: "UniqueID of the customer's channel (from get_uniqueid_callerid).",
            schema: { type: 'string' },
          },
          {
            name: 'dest',
            in: 'query',
            description: 'Service number the customer is transferred to (with `transfer`).',
            schema: inline(serviceNumberSchema),
          },
          {
            name: 'autocall',
            in: 'query',
            description:
              'Customer number in any format: queue a notification call playing `file1`…`file10` (3 tries, 300 s apart).',
            schema: { type: 'string' },
          },
          ...Array.from({ length: 10 }, (_, i) => ({
            name: `file${i + 1}`,
            in: 'query',
            description: `Sound ${i + 1} of the notification call (with \`autocall\`; at least file1).`,
            schema: { type: 'string' },
          })),
          {
            name: 'autocallstatus',
            in: 'query',
            description: 'AutoCallID of a notification call: its status.',
            schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
          },
          {
            name: COMPAT_KEY_PARAMETER,
            in: 'query',
            description: 'API key, when the client cannot send an Authorization header.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '200': textAnswer(
            '`Answer: OK|Error|Busy` and its `Key: value` lines, as the asterisk.fcgi daemon answered.',
          ),
          '400': textAnswer(
            '`Answer: Error`: bad parameters (`X-Error-Code: invalid_request|invalid_number`).',
          ),
          '401': textAnswer('`Answer: Error`, `X-Error-Code: unauthorized`.'),
          '403': textAnswer(
            '`Answer: Error`, `X-Error-Code: forbidden|ip_not_allowed|destination_not_allowed|destination_type_not_allowed`.',
          ),
          '429': textAnswer(
            '`Answer: Error`, `X-Error-Code: rate_limited|too_many_calls`, with `Retry-After` seconds.',
            retryAfterHeader,
          ),
          '501': textAnswer(
            '`Answer: Error`, `X-Error-Code: not_implemented` (autocall on an engine built without notification calls).',
          ),
          '503': textAnswer(
            '`Answer: Error`, `X-Error-Code: ari_unavailable` (makecall or transfer while the engine is not connected to Asterisk; `Retry-After` seconds), `store_unavailable`, `autocalls_unavailable` (autocall without a notification-call dialer), `shutting_down` or `api_keys_not_configured`.',
          ),
        },
      },
    },
  };

  if (options.connector === 'retailcrm') Object.assign(paths, retailCrmPaths());
  if (options.connector === 'amocrm') Object.assign(paths, amoCrmPaths());
  if (options.connector === 'bitrix24') Object.assign(paths, bitrix24Paths());

  // HEAD of the recording (a player learns the size before fetching ranges): GET's answers
  // without their bodies.
  const recording = paths['/v1/calls/{id}/recording']!;
  recording.head = headOf(recording.get as JsonObject, {
    operationId: 'headCallRecording',
    summary: "A call's recording: headers only",
    description:
      'The headers GET answers (`Content-Length`, `Accept-Ranges`, `ETag`, `Last-Modified`; `Content-Range` for a range) without the body. Same authorisation, parameters and statuses as GET.',
  });

  // A call script recording (record verb): served like the call's recording, by name.
  const callRecordingGet = recording.get as JsonObject;
  const scriptRecordingGet: JsonObject = {
    ...callRecordingGet,
    operationId: 'getCallScriptRecording',
    summary: "A call script's recording of the caller (audio)",
    description:
      'A recording the `record` verb of a call script made (`vrec-<uuid>`), taken from Asterisk and stored by the engine: `audio/wav` with HTTP Range, ETag and 304 exactly like the call recording. Authorised by an API key, or by the signed link the verb result carries (`record.url`, also sent to the CRM as `recording.url` with the next gather actionUrl or redirect request). Served after the call ended and after an engine restart. See docs/recordings.md.',
    parameters: (callRecordingGet.parameters as JsonObject[]).flatMap((parameter) => {
      if (parameter.name === 'id')
        return [
          parameter,
          {
            name: 'name',
            in: 'path',
            required: true,
            description: 'The recording name the verb result gives (`vrec-<uuid>`).',
            schema: { type: 'string' },
          },
        ];
      if (parameter.name === 'sig')
        return [
          {
            ...parameter,
            description:
              'Signed link: hex HMAC-SHA256(RECORDING_LINK_SECRET, "recording:<id>/<name>:<expires>"). With it no API key is needed.',
          },
        ];
      return [parameter];
    }),
    responses: {
      ...(callRecordingGet.responses as JsonObject),
      '403': errorResponse(
        '`link_expired`, `link_invalid` (altered id, name, expiry or signature); `forbidden`, `ip_not_allowed`.',
      ),
      '404': errorResponse(
        '`call_not_found` (not a call id), `recording_not_found` (the call has no stored recording of that name).',
      ),
    },
  };
  delete (scriptRecordingGet.responses as JsonObject)['409'];
  paths['/v1/calls/{id}/recordings/{name}'] = {
    get: scriptRecordingGet,
    head: headOf(scriptRecordingGet, {
      operationId: 'headCallScriptRecording',
      summary: "A call script's recording: headers only",
      description:
        'The headers GET answers without the body. Same authorisation, parameters and statuses as GET.',
    }),
  };

  // The routes a browser console reaches with an operator token (src/security/operator-tokens.ts).
  const tokenNote =
    ' With an operator token instead of an API key: only calls of its own extension (others: 404 `call_not_found`; click-to-call from another extension: 403 `extension_not_allowed`; expired token: 401 `token_expired`).';
  for (const [path, method] of [
    ['/v1/calls', 'get'],
    ['/v1/calls', 'post'],
    ['/v1/calls/{id}', 'get'],
    ['/v1/calls/{id}/recording', 'get'],
    ['/v1/calls/{id}/recordings/{name}', 'get'],
  ] as const) {
    const operation = (paths[path] as Record<string, JsonObject>)[method]!;
    const security = (operation.security as JsonObject[] | undefined) ?? [{ bearerAuth: [] }];
    operation.security = [
      ...security.filter((s) => Object.keys(s).length > 0),
      { operatorToken: [] },
      ...security.filter((s) => Object.keys(s).length === 0),
    ];
    operation.description = `${String(operation.description ?? operation.summary)}${tokenNote}`;
  }

  const webhooks: Record<string, JsonObject> = {};
  for (const [type, id] of Object.entries(webhookIds)) {
    webhooks[type] = {
      post: {
        operationId: `${id.charAt(0).toLowerCase()}${id.slice(1)}Webhook`,
        tags: [TAG.webhooks],
        summary: `${type} lifecycle event`,
        description:
          'POSTed to CRM_WEBHOOK_URL, signed (X-Signature: t=<unix s>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>.<raw body>")>); retried until a 2xx; per-call order by `sequence`. See docs/webhooks.md.',
        parameters: [
          { name: 'X-Event-Id', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'X-Event-Type', in: 'header', required: true, schema: { const: type } },
          { name: 'X-Signature', in: 'header', required: true, schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: json(id) },
        responses: { '2XX': { description: 'Delivered (any 2xx).' } },
      },
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'ari-crm',
      version: readVersion(),
      description:
        'Call-control engine for Asterisk: click-to-call, transfer, current call, lifecycle webhooks. Every error is `{"code", "message"}` (validation errors add `field`). See docs/api.md.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    // Relative: the engine that serves this document (behind a proxy, the proxy's address).
    servers: [{ url: '/', description: 'The engine serving this document' }],
    tags: [
      { name: TAG.calls, description: 'Click-to-call, call state, hang-up, transfer, history.' },
      { name: TAG.recordings, description: 'Recorded conversations (docs/recordings.md).' },
      { name: TAG.events, description: 'The event feed and the webhook delivery log.' },
      {
        name: TAG.operators,
        description: "Operator presence and status, an operator's current call (screen pop).",
      },
      {
        name: TAG.stream,
        description: "Operator tokens and the live stream to operators' browsers (docs/stream.md).",
      },
      {
        name: TAG.autocalls,
        description: 'Notification calls and campaigns (docs/autocalls.md).',
      },
      {
        name: TAG.compat,
        description: "The asterisk.fcgi daemon's protocol, for software written against it.",
      },
      ...(options.connector && options.connector !== 'webhook'
        ? [
            {
              name: TAG.connectors,
              description:
                'Endpoints the CRM of CRM_CONNECTOR calls; they authenticate with its own secret (docs/connectors.md).',
            },
          ]
        : []),
      { name: TAG.webhooks, description: 'Events POSTed to CRM_WEBHOOK_URL (docs/webhooks.md).' },
      { name: TAG.operations, description: 'Probes, metrics and this document; no API key.' },
      {
        name: TAG.console,
        description:
          "The operator console's page and assets (docs/console.md): public, no API key; opened with an operator token link.",
      },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    webhooks,
    components: {
      schemas: { ...requestSchemas, ...responseSchemas },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key of API_KEYS: `Authorization: Bearer <key>`.',
        },
        operatorToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An operator token (POST /v1/operators/{extension}/tokens): `Authorization: Bearer <token>`, on the routes that say so, for its own extension only.',
        },
        streamToken: {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description: 'An operator token as a query parameter; the live stream only.',
        },
        compatKey: {
          type: 'apiKey',
          in: 'query',
          name: COMPAT_KEY_PARAMETER,
          description: 'The same API key as a query parameter; the compat path only.',
        },
      },
    },
  };
}

/**
 * The retailCRM connector's endpoints (`makeCallUrl`, `changeUserStatusUrl`): parameters in the
 * query (GET) or a form / JSON body (POST); `clientId` authenticates.
 */
function retailCrmPaths(): Record<string, JsonObject> {
  const operation = (
    method: 'get' | 'post',
    operationId: string,
    summary: string,
    description: string,
    schema: z.ZodObject,
    ok: string,
    errors: Record<string, JsonObject>,
  ): JsonObject => {
    const json = inline(schema);
    const properties = (json.properties ?? {}) as Record<string, JsonObject>;
    const required = new Set((json.required ?? []) as string[]);
    return {
      operationId: `${operationId}${method === 'get' ? 'Get' : 'Post'}`,
      tags: [TAG.connectors],
      summary,
      description,
      security: [],
      ...(method === 'get'
        ? {
            parameters: Object.entries(properties).map(([name, property]) => ({
              name,
              in: 'query',
              required: required.has(name),
              schema: property,
            })),
          }
        : {
            requestBody: {
              required: true,
              content: {
                'application/x-www-form-urlencoded': { schema: json },
                'application/json': { schema: json },
              },
            },
          }),
      responses: {
        '200': {
          description: ok,
          content: { 'application/json': { schema: { type: 'object' } } },
        },
        ...errors,
      },
    };
  };
  const clientIdRefused = errorResponse(
    '`invalid_client_id`: clientId is not RETAILCRM_CLIENT_ID.',
  );
  const makeCall = (method: 'get' | 'post'): JsonObject =>
    operation(
      method,
      'retailCrmMakeCall',
      'retailCRM click-to-call (makeCallUrl)',
      'retailCRM asks the engine to call `phone` from extension `code` (or the extension of retailCRM user `userId`): a click-to-call with every rule of POST /v1/calls (toll-fraud guard, rate limit, live-call cap).',
      makeCallParamsSchema,
      '`{"success": true, "callId"}`: the operator\'s phone rings, then the customer\'s.',
      {
        '400': errorResponse('`invalid_request`, `invalid_number` or `unknown_user`.'),
        '403': errorResponse(
          '`invalid_client_id`, `destination_not_allowed` or `destination_type_not_allowed`.',
        ),
        '429': errorResponse('`rate_limited` or `too_many_calls`, with `Retry-After` seconds.'),
        '503': errorResponse('`ari_unavailable`, `store_unavailable` or `shutting_down`.'),
      },
    );
  const userStatus = (method: 'get' | 'post'): JsonObject =>
    operation(
      method,
      'retailCrmUserStatus',
      'retailCRM user status (changeUserStatusUrl)',
      "A retailCRM user's status changed: free → available, busy → dnd, dinner and break → break for the user's extension.",
      userStatusParamsSchema,
      '`{"success": true, "extension", "status", "applied"}`; `applied: false` when the engine keeps no operator statuses (the change is logged only).',
      {
        '400': errorResponse('`invalid_request` or `unknown_user`.'),
        '403': clientIdRefused,
      },
    );
  return {
    [MAKE_CALL_PATH]: { get: makeCall('get'), post: makeCall('post') },
    [USER_STATUS_PATH]: { get: userStatus('get'), post: userStatus('post') },
  };
}

/** The amoCRM connector's endpoint: click-to-call from a widget, behind the API key. */
function amoCrmPaths(): Record<string, JsonObject> {
  const json = inline(amoCrmClickToCallSchema);
  return {
    [CLICK_TO_CALL_PATH]: {
      post: {
        operationId: 'amoCrmClickToCall',
        tags: [TAG.connectors],
        summary: 'amoCRM click-to-call (widget)',
        description:
          "An amoCRM widget (or the account's backend) asks the engine to call `phone` from the extension of amoCRM user `user_id` (AMOCRM_USERS): a click-to-call with every rule of POST /v1/calls (toll-fraud guard, the API key's rate limit, live-call cap). The operator's phone rings first, then the customer's.",
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: json },
            'application/x-www-form-urlencoded': { schema: json },
          },
        },
        responses: {
          '202': {
            description:
              '`{"id", "status": "accepted", "operator"}`; follow the call at `Location`.',
            headers: {
              Location: { description: '/v1/calls/{id}', schema: { type: 'string' } },
            },
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          '400': errorResponse('`invalid_request`, `invalid_number` or `unknown_user`.'),
          '401': errorResponse('`unauthorized`: no API key.'),
          '403': errorResponse(
            '`forbidden` (the API key is not valid), `destination_not_allowed` or `destination_type_not_allowed`.',
          ),
          '429': errorResponse('`rate_limited` or `too_many_calls`, with `Retry-After` seconds.'),
          '503': errorResponse('`ari_unavailable`, `store_unavailable` or `shutting_down`.'),
        },
      },
    },
  };
}

/**
 * The Bitrix24 connector's endpoints: Bitrix24's outgoing events (form-encoded, PHP-style
 * nested fields; `auth[application_token]` authenticates) and the local application's install
 * handler.
 */
function bitrix24Paths(): Record<string, JsonObject> {
  const event = inline(externalCallStartSchema);
  const eventSchema: JsonObject = {
    ...event,
    properties: {
      ...((event.properties ?? {}) as Record<string, JsonObject>),
      auth: {
        type: 'object',
        description: 'Sent as `auth[application_token]` (and `auth[domain]`, `auth[member_id]`…).',
        properties: { application_token: { type: 'string' } },
        required: ['application_token'],
      },
    },
    required: [...((event.required ?? []) as string[]), 'auth'],
  };
  return {
    [BITRIX24_EVENTS_PATH]: {
      post: {
        operationId: 'bitrix24Event',
        tags: [TAG.connectors],
        summary: 'Bitrix24 event (ONEXTERNALCALLSTART: click-to-call)',
        description:
          'Bitrix24 POSTs its events here, form-encoded with nested fields written `data[PHONE_NUMBER]`. `ONEXTERNALCALLSTART` (a user clicked a number in the CRM; Bitrix24 already registered the call as `data[CALL_ID]`) becomes a click-to-call from the extension of `data[USER_ID]` to `data[PHONE_NUMBER]` with every rule of POST /v1/calls (toll-fraud guard, rate limit, live-call cap); the call reports to Bitrix24 under that CALL_ID. Other events are acknowledged and ignored.',
        security: [],
        requestBody: {
          required: true,
          content: { 'application/x-www-form-urlencoded': { schema: eventSchema } },
        },
        responses: {
          '200': {
            description:
              '`{"result": true, "callId"}`: the operator\'s phone rings, then the customer\'s; `{"result": false}` for an event the engine does not use.',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          '400': errorResponse('`invalid_request`, `invalid_number` or `unknown_user`.'),
          '403': errorResponse(
            '`invalid_application_token`, `destination_not_allowed` or `destination_type_not_allowed`.',
          ),
          '429': errorResponse('`rate_limited` or `too_many_calls`, with `Retry-After` seconds.'),
          '503': errorResponse('`ari_unavailable`, `store_unavailable` or `shutting_down`.'),
        },
      },
    },
    [BITRIX24_INSTALL_PATH]: {
      post: {
        operationId: 'bitrix24Install',
        tags: [TAG.connectors],
        summary: 'Bitrix24 local application install handler',
        description:
          'Bitrix24 opens this page when the local application is installed (`AUTH_ID`, `REFRESH_ID`, `AUTH_EXPIRES`), or POSTs the ONAPPINSTALL event (`auth[access_token]`, `auth[refresh_token]`, `auth[application_token]`). The engine checks the access token with the portal (`app.info`) and keeps the tokens in its store; they are refreshed from then on.',
        security: [],
        requestBody: {
          required: true,
          content: {
            'application/x-www-form-urlencoded': {
              schema: {
                type: 'object',
                properties: {
                  AUTH_ID: { type: 'string' },
                  REFRESH_ID: { type: 'string' },
                  AUTH_EXPIRES: { type: 'string' },
                  auth: {
                    type: 'object',
                    properties: {
                      access_token: { type: 'string' },
                      refresh_token: { type: 'string' },
                      application_token: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'A page that finishes the installation in Bitrix24.',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
          '400': errorResponse('`invalid_request`: no tokens.'),
          '403': errorResponse('`invalid_token`: the portal did not accept the access token.'),
          '404': errorResponse(
            '`not_found`: the connector uses a webhook URL, not an application.',
          ),
        },
      },
    },
  };
}
