/**
 * OpenAPI paths of the events routes (src/events/routes.ts): the event feed and the webhook
 * delivery log; and the webhooks themselves (OAS 3.1 `webhooks`), one per lifecycle event type.
 */
import { deliveryLogQuerySchema, eventFeedQuerySchema } from '../../events/routes.ts';
import {
  authErrors,
  errorResponse,
  json,
  queryParameters,
  TAG,
  type JsonObject,
} from './common.ts';

/** The component schema id of each webhook event type's body (src/http/schemas.ts). */
export const WEBHOOK_SCHEMA_IDS: Record<string, string> = {
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

/** `GET /v1/events` (the feed) and `GET /v1/webhooks/deliveries` (the delivery log). */
export function eventPaths(): Record<string, JsonObject> {
  return {
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
  };
}

/** The document's `webhooks`: the signed POST of each event type to CRM_WEBHOOK_URL. */
export function webhookOperations(): Record<string, JsonObject> {
  const webhooks: Record<string, JsonObject> = {};
  for (const [type, id] of Object.entries(WEBHOOK_SCHEMA_IDS)) {
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
  return webhooks;
}
