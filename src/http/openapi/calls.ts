/**
 * OpenAPI paths of the calls routes (src/calls/routes.ts): call history, click-to-call, a call,
 * hang-up and transfer. The call's recording is described by recordings.ts and placed here, under
 * the call, by the caller.
 */
import { callListQuerySchema } from '../../calls/routes.ts';
import {
  acceptOperatorToken,
  authErrors,
  callIdParameter,
  commandUnavailable,
  errorResponse,
  idempotencyKeyParameter,
  json,
  payloadTooLarge,
  queryParameters,
  ref,
  retryAfterHeader,
  TAG,
  type JsonObject,
} from './common.ts';

/**
 * `/v1/calls`, `/v1/calls/{id}`, `/v1/calls/{id}/hangup`, `/v1/calls/{id}/transfer`, with
 * `recording` (the path item of `/v1/calls/{id}/recording`) between hang-up and transfer. History,
 * click-to-call and a call accept an operator token.
 */
export function callPaths(recording: JsonObject): Record<string, JsonObject> {
  const paths: Record<string, JsonObject> = {
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
    '/v1/calls/{id}/recording': recording,
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
  };
  for (const [path, method] of [
    ['/v1/calls', 'get'],
    ['/v1/calls', 'post'],
    ['/v1/calls/{id}', 'get'],
  ] as const) {
    acceptOperatorToken((paths[path] as Record<string, JsonObject>)[method]!);
  }
  return paths;
}
