/**
 * Query-string validation of the read API (issue 4: `GET /v1/calls`, `GET /v1/events`,
 * `GET /v1/webhooks/deliveries`): zod schemas of the shared parameters (ISO 8601 times, page
 * sizes, cursors) and {@link validateQuery}, which turns a failed parse into a 400 naming the
 * parameter, like {@link validate} does for bodies.
 */
import { z } from 'zod';
import { InvalidCursorError } from '../store/errors.ts';
import { HttpError } from './errors.ts';
import { fieldOfIssue } from './validation.ts';

/** An ISO 8601 date (`2025-01-31`) or date-time with `Z` or an offset (`…T09:15:00+03:00`). */
const ISO_TIME =
  /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?))?$/i;

/**
 * Parse an ISO 8601 instant as the query parameters accept it: a date (midnight UTC), or a
 * date-time with `Z` or a UTC offset; seconds and fractions optional. A time without a zone is
 * refused (it would depend on the server's time zone).
 *
 * @returns the instant, or undefined when `text` is not such a time or is outside years 0-9999
 */
export function parseIsoInstant(text: string): Date | undefined {
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  const [, date, hm, sec, fraction, zone] = m;
  let normalised = `${date}T${hm ?? '00:00'}:${sec ?? '00'}.${(fraction ?? '').padEnd(3, '0').slice(0, 3)}`;
  if (!zone || zone.toUpperCase() === 'Z') normalised += 'Z';
  else {
    const digits = zone.slice(1).replace(':', '');
    normalised += `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2, 4).padEnd(2, '0')}`;
  }
  const instant = new Date(normalised);
  if (!Number.isFinite(instant.getTime())) return undefined;
  // Reject impossible dates that Date would roll over (2025-02-30 → March 2).
  const [y, mo, d] = date!.split('-').map(Number);
  const local = new Date(Date.UTC(y!, mo! - 1, d));
  if (local.getUTCMonth() !== mo! - 1 || local.getUTCDate() !== d) return undefined;
  const iso = instant.toISOString();
  return iso.length === 24 ? instant : undefined;
}

/** A query parameter holding an ISO 8601 instant; parses to a `Date`. */
export const isoTimeParam = z
  .string()
  .transform((text, ctx) => {
    const instant = parseIsoInstant(text);
    if (instant) return instant;
    ctx.addIssue({
      code: 'custom',
      message:
        'must be an ISO 8601 time with Z or an offset (2025-01-31T09:15:00Z, 2025-01-31T12:15:00+03:00) or a date (2025-01-31, midnight UTC)',
    });
    return z.NEVER;
  })
  .meta({ type: 'string', format: 'date-time' });

/** A page size parameter: an integer 1..`max`, `defaultValue` when absent. */
export function limitParam(max: number, defaultValue: number) {
  const message = `must be an integer from 1 to ${max}`;
  return z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return defaultValue;
      const value = /^\d{1,7}$/.test(text) ? Number(text) : NaN;
      if (value >= 1 && value <= max) return value;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    })
    .meta({
      type: 'integer',
      minimum: 1,
      maximum: max,
      default: defaultValue,
      description: `Page size, 1 to ${max} (default ${defaultValue}).`,
    });
}

/** An opaque cursor parameter (base64url text the API issued). */
export const cursorParam = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,512}$/, 'is not a cursor this API issued')
  .meta({ description: 'Opaque cursor from a previous page; pass it back unchanged.' });

/**
 * Parse `req.query` with `schema` (a strict object: unknown parameters are refused, so a typo
 * never silently widens a filter).
 *
 * @param cursorFields parameters holding cursors: their problems answer `invalid_cursor`
 * @throws HttpError 400 `invalid_query` (or `invalid_cursor`) with `field` naming the parameter
 */
export function validateQuery<S extends z.ZodType>(
  schema: S,
  query: unknown,
  cursorFields: readonly string[] = [],
): z.output<S> {
  const result = schema.safeParse(query ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = fieldOfIssue(issue, 'query');
  if (cursorFields.includes(field)) throw invalidCursor(field);
  const message =
    issue.code === 'unrecognized_keys'
      ? 'is not a known query parameter'
      : issue.code === 'invalid_type' &&
          issue.input !== undefined &&
          typeof issue.input !== 'string'
        ? 'must be given once'
        : issue.message;
  throw new HttpError(400, 'invalid_query', `${field}: ${message}`, { field });
}

/** 400 `invalid_cursor` naming `field`. */
export function invalidCursor(field: string): HttpError {
  return new HttpError(
    400,
    'invalid_cursor',
    `${field}: is not a cursor this API issued (pass nextCursor back unchanged)`,
    { field },
  );
}

/**
 * Run a store read; a cursor the store did not issue becomes 400 `invalid_cursor` naming
 * `field`. Other errors pass through.
 */
export async function withCursor<T>(field: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof InvalidCursorError) throw invalidCursor(field);
    throw err;
  }
}

/** 503 `store_not_configured`: the engine was started without its store. */
export function storeNotConfigured(): HttpError {
  return new HttpError(
    503,
    'store_not_configured',
    'call history and the event feed need the store (DATABASE_URL)',
  );
}
