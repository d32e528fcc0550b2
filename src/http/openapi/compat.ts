/**
 * OpenAPI path of the asterisk.fcgi compatibility route (src/compat/router.ts): the text protocol
 * of the daemon this engine replaces, at COMPAT_PATH.
 */
import { serviceNumberSchema } from '../../calls/routes.ts';
import { COMPAT_KEY_PARAMETER } from '../../compat/router.ts';
import { inline, retryAfterHeader, TAG, type JsonObject } from './common.ts';

/** A text answer (`Answer: …` lines) with its `X-Error-Code` header and `headers`. */
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

/** The compat route at `compatPath` (COMPAT_PATH, e.g. `/asterisk.fcgi`). */
export function compatPaths(compatPath: string): Record<string, JsonObject> {
  return {
    [compatPath]: {
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
}
