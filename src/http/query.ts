/**
 * Query-string validation of the read API (`GET /v1/calls`, `GET /v1/events`,
 * `GET /v1/webhooks/deliveries`): zod schemas of the shared parameters (RFC 3339 times, page
 * sizes, cursors) and {@link validateQuery}, which turns a failed parse into a 400 naming the
 * parameter, like {@link validate} does for bodies.
 */
import { z } from 'zod';
import { InvalidCursorError } from '../store/errors.ts';
import { HttpError } from './errors.ts';
import { fieldOfIssue } from './validation.ts';

/**
 * An RFC 3339 date-time (`2025-01-31T09:15:00Z`, `2025-01-31T12:15:00.5+03:00`; seconds and a
 * zone required, `T`/`Z` in either case) or full-date (`2025-01-31`): exactly JSON Schema's
 * `date-time` and `date` formats, as the OpenAPI document declares the parameters.
 */
const RFC3339_TIME =
  /^(\d{4}-\d{2}-\d{2})(?:[Tt](\d{2}:\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * Parse an instant as the query parameters accept it: an RFC 3339 date-time (with `Z` or a UTC
 * offset; fractions of a second optional), or a full-date (midnight UTC). A time without a zone
 * is refused (it would depend on the server's time zone), as are the other ISO 8601 spellings
 * RFC 3339 leaves out (`09:15Z` without seconds, `+0300`, `,5`).
 *
 * @returns the instant (to the millisecond), or undefined when `text` is not such a time or is
 *   outside years 0-9999
 */
export function parseIsoInstant(text: string): Date | undefined {
  const m = RFC3339_TIME.exec(text);
  if (!m) return undefined;
  const [, date, hm, sec, fraction, zone] = m;
  // RFC 3339's ranges: hours 00-23 (Date would read 24:00 as the next day), minutes 00-59.
  const [hour, minute] = (hm ?? '00:00').split(':').map(Number);
  const [zoneHour, zoneMinute] = (zone?.slice(1) ?? '00:00').split(':').map(Number);
  if (hour! > 23 || minute! > 59 || zoneHour! > 23 || (zoneMinute ?? 0) > 59) return undefined;
  let normalised = `${date}T${hm ?? '00:00'}:${sec ?? '00'}.${(fraction ?? '').padEnd(3, '0').slice(0, 3)}`;
  normalised += !zone || zone.toUpperCase() === 'Z' ? 'Z' : zone;
  const instant = new Date(normalised);
  if (!Number.isFinite(instant.getTime())) return undefined;
  // Reject impossible dates that Date would roll over (2025-02-30 → March 2).
  const [y, mo, d] = date!.split('-').map(Number);
  const local = new Date(Date.UTC(y!, mo! - 1, d));
  if (local.getUTCMonth() !== mo! - 1 || local.getUTCDate() !== d) return undefined;
  const iso = instant.toISOString();
  return iso.length === 24 ? instant : undefined;
}

/**
 * A query parameter holding an instant (see {@link parseIsoInstant}); parses to a `Date`. Its
 * JSON Schema: a string of format `date-time` or `date`.
 */
export const isoTimeParam = z
  .string()
  .transform((text, ctx) => {
    const instant = parseIsoInstant(text);
    if (instant) return instant;
    ctx.addIssue({
      code: 'custom',
      message:
        'must be an RFC 3339 time with seconds and Z or an offset (2025-01-31T09:15:00Z, 2025-01-31T12:15:00+03:00) or a date (2025-01-31, midnight UTC)',
    });
    return z.NEVER;
  })
  .meta({
    type: 'string',
    anyOf: [{ format: 'date-time' }, { format: 'date' }],
  });

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
