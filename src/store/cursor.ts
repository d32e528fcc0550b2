/**
 * Opaque pagination cursors (pages of a limit, the pull feed's `after`).
 * Clients must treat them as opaque strings; they are base64url JSON so that a typo is detected
 * ({@link InvalidCursorError}) rather than silently returning another page.
 */
import { InvalidCursorError } from './errors.ts';

/** Encode a cursor from its key values (strings and integers). */
export function encodeCursor(kind: string, key: ReadonlyArray<string | number>): string {
  return Buffer.from(JSON.stringify([kind, ...key]), 'utf8').toString('base64url');
}

/**
 * Decode a cursor issued by {@link encodeCursor} for `kind` with values of the given types.
 *
 * @throws InvalidCursorError when the text is not such a cursor
 */
export function decodeCursor<const T extends ReadonlyArray<'string' | 'number'>>(
  kind: string,
  cursor: string,
  types: T,
): { [K in keyof T]: T[K] extends 'string' ? string : number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError(cursor);
  }
  if (!Array.isArray(parsed) || parsed[0] !== kind || parsed.length !== types.length + 1) {
    throw new InvalidCursorError(cursor);
  }
  const values = parsed.slice(1) as unknown[];
  values.forEach((value, i) => {
    const ok =
      types[i] === 'number'
        ? typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
        : typeof value === 'string';
    if (!ok) throw new InvalidCursorError(cursor);
  });
  return values as { [K in keyof T]: T[K] extends 'string' ? string : number };
}

/**
 * Validate a page size.
 *
 * @throws RangeError unless `limit` is an integer in [1, max]
 */
export function checkLimit(limit: number, max: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new RangeError(`limit must be an integer from 1 to ${max}, got ${limit}`);
  }
  return limit;
}
