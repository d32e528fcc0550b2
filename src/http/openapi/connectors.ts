/**
 * OpenAPI paths of the CRM connectors' routes (src/connectors/<crm>/routes.ts): the endpoints the
 * CRM of CRM_CONNECTOR calls. Only the configured connector's are documented.
 */
import type { z } from 'zod';
import {
  MAKE_CALL_PATH,
  makeCallParamsSchema,
  USER_STATUS_PATH,
  userStatusParamsSchema,
} from '../../connectors/retailcrm/routes.ts';
import { amoCrmClickToCallSchema, CLICK_TO_CALL_PATH } from '../../connectors/amocrm/routes.ts';
import {
  EVENTS_PATH as BITRIX24_EVENTS_PATH,
  externalCallStartSchema,
  INSTALL_PATH as BITRIX24_INSTALL_PATH,
} from '../../connectors/bitrix24/routes.ts';
import { errorResponse, inline, TAG, type JsonObject } from './common.ts';

/**
 * The paths of connector `connector` (CRM_CONNECTOR: retailcrm, amocrm, bitrix24); none for
 * another value (`webhook`) or none at all.
 */
export function connectorPaths(connector: string | undefined): Record<string, JsonObject> {
  if (connector === 'retailcrm') return retailCrmPaths();
  if (connector === 'amocrm') return amoCrmPaths();
  if (connector === 'bitrix24') return bitrix24Paths();
  return {};
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
