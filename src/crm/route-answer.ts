/**
 * The CRM's answer to a route lookup (the JSON counterpart of the retailCRM Asterisk
 * module's `result/callerId` + `result/phone`), validated with zod. Reference: docs/crm-routing.md.
 *
 * ```json
 * {"customer":{"id":"42","name":"Ivan Petrov"},"action":"dial","strategy":"ringall",
 *  "extensions":["101","102"],"ringTimeoutSec":20,"greeting":["sound:hello-world"],"record":true}
 * {"action":"hangup"}
 * {"customer":{"name":"Ivan Petrov"},"action":"fallback"}
 * {"customer":{"id":"42"},"verbs":[{"verb":"play","media":["sound:hello-world"]},
 *  {"verb":"gather","numDigits":1,"timeoutSec":5,"actionUrl":"https://crm.example/ivr"}]}
 * ```
 *
 * An answer with `verbs` is a call script (src/calls/verbs/schema.ts, docs/verbs.md): it is
 * validated as a whole, and any bad verb rejects the whole answer (the fallback route, like any
 * other invalid answer). An answer may carry `verbs` or `action`, not both.
 *
 * Fields that decide where the call goes (`action`, `strategy`, `extensions`, `ringTimeoutSec`,
 * `greeting`, `record`) are strict: a bad value rejects the whole answer and the call takes the
 * fallback route. Cosmetic fields are lenient: the customer name is cleaned of control characters
 * and cut to {@link MAX_CUSTOMER_NAME_LENGTH}. `null` counts as absent; unknown fields are ignored
 * (so a CRM may send more than the engine understands).
 */
import { z } from 'zod';
import { formatIssuePath, verbListSchema } from '../calls/verbs/schema.ts';
import { EXTENSION_PATTERN, MAX_RING_TIMEOUT_SEC, MIN_RING_TIMEOUT_SEC } from './route.ts';
import type { Route } from './types.ts';

/** Longest customer name kept (it becomes the operator phone's CALLERID(name)). */
export const MAX_CUSTOMER_NAME_LENGTH = 100;
/** Most extensions one answer may ring. */
export const MAX_EXTENSIONS = 50;
/** Most media items of one greeting. */
export const MAX_GREETING_MEDIA = 10;

/**
 * An Asterisk media URI the engine lets a CRM play: `sound:`, `recording:`, `digits:`,
 * `number:`, `characters:` or `tone:` followed by a name without spaces, quotes or `..`.
 */
export const MEDIA_PATTERN =
  /^(sound|recording|digits|number|characters|tone):[\w\-/.;=,+*#]{1,200}$/;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]+/g;

/** Longest customer link kept, characters. */
export const MAX_CUSTOMER_LINK_LENGTH = 2000;

/** An absolute http(s) URL of at most {@link MAX_CUSTOMER_LINK_LENGTH} characters. */
function isHttpUrl(text: string): boolean {
  if (text.length > MAX_CUSTOMER_LINK_LENGTH) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

const extension = z
  .union([z.string().trim(), z.number().int().nonnegative()])
  .transform(String)
  .pipe(z.string().regex(EXTENSION_PATTERN, 'extension must be 2-10 digits'));

const media = z
  .string()
  .regex(MEDIA_PATTERN, 'expected an Asterisk media URI such as sound:hello-world')
  .refine((s) => !s.includes('..'), 'media URI must not contain ".."');

const customer = z
  .object({
    id: z
      .union([z.string().trim().max(100), z.number().int()])
      .transform(String)
      .nullish(),
    name: z
      .string()
      .transform((s) => s.replace(CONTROL_CHARS, ' ').trim().slice(0, MAX_CUSTOMER_NAME_LENGTH))
      .nullish(),
    // Cosmetic like the name: a link that is not an http(s) URL is dropped, not an error.
    link: z
      .unknown()
      .transform((v) => (typeof v === 'string' && isHttpUrl(v) ? v : undefined))
      .optional(),
  })
  .nullish();

const common = {
  customer,
  greeting: z
    .union([media.transform((m) => [m]), z.array(media).max(MAX_GREETING_MEDIA)])
    .nullish(),
  record: z.boolean().nullish(),
};

/** Zod schema of the CRM's route answer (see the module comment and docs/crm-routing.md). */
export const routeAnswerSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('dial'),
    strategy: z.enum(['ringall', 'sequential']).default('ringall'),
    extensions: z.array(extension).min(1).max(MAX_EXTENSIONS),
    ringTimeoutSec: z.number().int().min(MIN_RING_TIMEOUT_SEC).max(MAX_RING_TIMEOUT_SEC).nullish(),
    ...common,
  }),
  z.object({ action: z.literal('hangup'), ...common }),
  z.object({ action: z.literal('fallback'), ...common }),
]);

/**
 * Zod schema of a call-script answer `{"customer"?, "record"?, "verbs": [...]}`: `verbs` is a
 * call script (1-100 verbs, docs/verbs.md); `record` is the default of its `dial` verbs.
 */
export const verbsRouteAnswerSchema = z.object({
  customer,
  record: z.boolean().nullish(),
  verbs: verbListSchema,
  action: z.undefined({ message: 'an answer carries either verbs or action, not both' }).optional(),
});

/** A validated CRM answer (output of {@link parseRouteAnswer}). */
export type RouteAnswer =
  z.output<typeof routeAnswerSchema> | z.output<typeof verbsRouteAnswerSchema>;

/**
 * Validate the CRM's answer: a call script when it has `verbs` (not null), else an `action`
 * answer. Never throws.
 */
export function parseRouteAnswer(
  json: unknown,
): { success: true; data: RouteAnswer } | { success: false; error: z.ZodError } {
  const isScript =
    typeof json === 'object' &&
    json !== null &&
    'verbs' in json &&
    json.verbs !== null &&
    json.verbs !== undefined;
  return isScript ? verbsRouteAnswerSchema.safeParse(json) : routeAnswerSchema.safeParse(json);
}

/**
 * Turn a validated answer into a {@link Route}. `action: "fallback"` takes the action of the
 * `fallback` route while keeping the CRM's customer, greeting and record flag (the CRM knows the
 * caller but has no responsible manager). A dial answer without `ringTimeoutSec` uses
 * `defaultRingTimeoutSec`; an answer without `record` inherits the fallback route's flag.
 */
export function routeFromAnswer(
  answer: RouteAnswer,
  fallback: Route,
  defaultRingTimeoutSec: number,
): Route {
  const route: Route = {
    action:
      'verbs' in answer
        ? { type: 'verbs', verbs: answer.verbs }
        : answer.action === 'dial'
          ? {
              type: 'dial',
              strategy: answer.strategy,
              extensions: [...new Set(answer.extensions)],
              ringTimeoutSec: answer.ringTimeoutSec ?? defaultRingTimeoutSec,
            }
          : answer.action === 'hangup'
            ? { type: 'hangup' }
            : structuredClone(fallback.action),
  };
  const id = answer.customer?.id ?? undefined;
  const name = answer.customer?.name || undefined;
  const link = answer.customer?.link;
  if (id !== undefined || name !== undefined || link !== undefined) {
    route.customer = {};
    if (id !== undefined) route.customer.id = id;
    if (name !== undefined) route.customer.name = name;
    if (link !== undefined) route.customer.link = link;
  }
  if ('greeting' in answer && answer.greeting && answer.greeting.length > 0)
    route.greeting = { media: answer.greeting };
  const record = answer.record ?? fallback.record;
  if (record !== undefined) route.record = record;
  return route;
}

/** A short, log-safe summary of why an answer failed validation (at most 3 issues). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`)
    .join('; ');
}
