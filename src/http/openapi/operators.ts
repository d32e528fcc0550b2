/**
 * OpenAPI paths of the operators routes (src/operators/routes.ts): presence, status and an
 * operator's current call (screen pop).
 */
import { extensionSchema } from '../../calls/routes.ts';
import {
  authErrors,
  errorResponse,
  inline,
  json,
  payloadTooLarge,
  TAG,
  type JsonObject,
} from './common.ts';

/** The `{extension}` of the operators routes. */
const operatorExtensionParameter: JsonObject = {
  name: 'extension',
  in: 'path',
  required: true,
  description: "The operator's extension, e.g. 101.",
  schema: { type: 'string', pattern: '^\\d{2,10}$' },
};

/** `/v1/operators` and the routes of one operator, and the current call of this workstation. */
export function operatorPaths(): Record<string, JsonObject> {
  return {
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
  };
}
