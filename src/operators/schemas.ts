/**
 * zod schemas of the operators API: what the routes validate and the OpenAPI document shows.
 */
import { z } from 'zod';
import { extensionSchema } from '../calls/routes.ts';
import { OPERATOR_STATES, OPERATOR_STATUSES, type Operator } from './model.ts';

export { extensionSchema };

/** An operator's status, as set through the API. */
export const operatorStatusSchema = z
  .enum(OPERATOR_STATUSES as ['available', 'break', 'dnd'])
  .describe('What the operator chose: available (takes calls), break, dnd (do not disturb).');

/** `PUT /v1/operators/{extension}/status` body. */
export const operatorStatusBodySchema = z.object({ status: operatorStatusSchema }).strict();

/** One operator (`GET /v1/operators/{extension}`). */
export const operatorSchema = z.object({
  extension: z.string().describe("The operator's extension."),
  state: z
    .enum(OPERATOR_STATES as ['offline', 'idle', 'ringing', 'on_call'])
    .describe(
      'What the phone is doing: offline (not registered), idle, ringing, on_call (from Asterisk and the engine).',
    ),
  status: operatorStatusSchema,
  since: z.string().describe('When state or status last changed, ISO 8601 UTC.'),
  callId: z
    .string()
    .optional()
    .describe('The call ringing the operator or the operator is on (ringing, on_call).'),
});

/** `GET /v1/operators`. */
export const operatorListSchema = z.object({ items: z.array(operatorSchema) });

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _OperatorMatches = Assert<Same<z.infer<typeof operatorSchema>, Operator>>;
