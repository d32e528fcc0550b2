/**
 * The request schemas of the call routes (src/calls/routes.ts): the bodies of `POST /v1/calls`
 * and `POST /v1/calls/{id}/transfer`, the `Idempotency-Key` header, the query of `GET /v1/calls`,
 * and the extension and service-number formats other routes share. They are also the OpenAPI
 * document's request schemas (src/http/openapi/).
 */
import { z } from 'zod';
import { cursorParam, isoTimeParam, limitParam } from '../http/query.ts';
import { MAX_CALLS_PAGE } from '../store/index.ts';
import type { Disposition } from './model.ts';

/** An operator extension: 2-10 digits. */
const EXTENSION = /^\d{2,10}$/;
/** A service number: 1-20 of digits, `*`, `#`. */
const SERVICE_NUMBER = /^[0-9*#]{1,20}$/;

/** An operator extension: 2-10 digits (as SIM_EXTENSIONS / OPERATOR_IP_MAP). */
export const extensionSchema = z
  .string()
  .regex(EXTENSION, 'must be an extension of 2-10 digits')
  .describe('Operator extension, e.g. 101.');

/** A service number (dialplan extension in SERVICE_CONTEXT): digits, `*`, `#`. */
export const serviceNumberSchema = z
  .string()
  .regex(SERVICE_NUMBER, 'must be a service number of 1-20 digits, * or #')
  .describe('Service number, e.g. 9999.');

const variableValue = z.union([z.string().max(1024), z.number(), z.boolean()]);

/** Body of `POST /v1/calls`. */
export const clickToCallBodySchema = z.strictObject({
  operator: extensionSchema.describe("The operator's extension; rung first, e.g. 101."),
  to: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .describe(
      "The customer's number in any human format (+7 495 765-43-21, 8 (495) 765-43-21); read in DEFAULT_REGION when written without +.",
    ),
  variables: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'names are 1-64 of letters, digits, _ . -'),
      variableValue,
    )
    .refine((v) => Object.keys(v).length <= 50, 'at most 50 variables')
    .optional()
    .describe(
      'CRM variables (deal id, text…) that travel with the call and its webhooks; numbers and booleans become strings.',
    ),
  tries: z
    .int('must be an integer')
    .min(1)
    .max(3)
    .optional()
    .describe('Operator tries when busy or not answering (1-3); default CLICK_TO_CALL_TRIES.'),
  triesPeriodSec: z
    .int('must be an integer')
    .min(1)
    .max(10)
    .optional()
    .describe('Seconds between operator tries (1-10); default CLICK_TO_CALL_TRIES_PERIOD_SEC.'),
  record: z
    .boolean()
    .optional()
    .describe('Record the conversation (true/false); default RECORD_CALLS for outbound calls.'),
});

/** Body of `POST /v1/calls/{id}/transfer`. */
export const transferBodySchema = z
  .strictObject({
    to: z
      .string()
      .describe('Service number (kind service, e.g. 9999) or operator extension (kind extension).'),
    kind: z
      .enum(['service', 'extension'])
      .default('service')
      .describe(
        'service: the customer continues in the dialplan at SERVICE_CONTEXT,<to>,1 and the operator is hung up; extension: blind transfer to operator <to>, same call id (the first operator stays on the call until <to> answers).',
      ),
  })
  .superRefine((body, ctx) => {
    const check = body.kind === 'extension' ? extensionSchema : serviceNumberSchema;
    const result = check.safeParse(body.to);
    if (!result.success)
      ctx.addIssue({ code: 'custom', path: ['to'], message: result.error.issues[0]!.message });
  })
  // The check above, in the JSON Schema of the OpenAPI document: `to`'s pattern by `kind`.
  .meta({
    if: { properties: { kind: { const: 'extension' } }, required: ['kind'] },
    then: { properties: { to: { pattern: EXTENSION.source } } },
    else: { properties: { to: { pattern: SERVICE_NUMBER.source } } },
  });

/** `Idempotency-Key` header: 1-255 visible ASCII characters. */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
  .describe(
    'Makes the creation safe to retry: the same key (per API key) within IDEMPOTENCY_TTL_MS returns the first answer instead of dialling again.',
  );

/** Default page size of `GET /v1/calls`. */
export const DEFAULT_CALLS_PAGE = 50;

const DISPOSITIONS = ['answered', 'busy', 'no_answer', 'canceled', 'failed'] as const;
/** Compile-time assertion. */
type Assert<T extends true> = T;
// Fails to compile when a disposition is added to the model but not to the filter.
type _EveryDisposition = Assert<
  [Disposition] extends [(typeof DISPOSITIONS)[number]] ? true : false
>;
const dispositionList = new RegExp(`^(${DISPOSITIONS.join('|')})(,(${DISPOSITIONS.join('|')}))*$`);

/** Query of `GET /v1/calls` (filters; every given condition must hold). */
export const callListQuerySchema = z
  .strictObject({
    since: isoTimeParam
      .optional()
      .describe(
        'Calls that started at or after this instant: an RFC 3339 date-time with seconds and Z or an offset (2025-01-31T09:15:00Z, 2025-01-31T12:15:00+03:00), or a date (2025-01-31: midnight UTC).',
      ),
    until: isoTimeParam
      .optional()
      .describe('Calls that started strictly before this instant (same formats as since).'),
    number: z
      .string()
      .regex(/\d/, 'must contain digits')
      .max(64, 'must be at most 64 characters')
      .optional()
      .describe(
        'A phone number on either side (caller or called), in any format: +7 495 765-43-21, 84957654321 and 74957654321 find the same calls; short numbers (DIDs, extensions) match exactly.',
      ),
    extension: extensionSchema
      .optional()
      .describe('Calls an operator answered, placed or was rung for, e.g. 101.'),
    direction: z.enum(['in', 'out']).optional().describe('in (inbound) or out (outbound).'),
    disposition: z
      .string()
      .regex(dispositionList, `must be one or more of ${DISPOSITIONS.join(', ')}, comma-separated`)
      .transform((text) => [...new Set(text.split(','))] as Disposition[])
      .optional()
      .describe(
        `Final outcome, one or several comma-separated: ${DISPOSITIONS.join(', ')} (calls still in progress have none).`,
      ),
    limit: limitParam(MAX_CALLS_PAGE, DEFAULT_CALLS_PAGE),
    cursor: cursorParam.optional().describe('nextCursor of the previous page (same filters).'),
  })
  .superRefine((query, ctx) => {
    if (query.since && query.until && query.until.getTime() <= query.since.getTime())
      ctx.addIssue({ code: 'custom', path: ['until'], message: 'must be after since' });
  });
