/**
 * Errors the store throws on purpose. Driver errors (connection refused, disk full)
 * are passed through unchanged; these are the ones a caller can act on.
 */

/** Base class of the store's own errors. */
export class StoreError extends Error {
  override name = 'StoreError';
}

/** `createStore` got a URL it cannot use (unknown scheme, empty path). */
export class StoreUrlError extends StoreError {
  override name = 'StoreUrlError';
}

/**
 * Another engine holds the store (src/store/ownership.ts): this one must not start on it, or it
 * would adopt the other's calls and resend its webhooks.
 */
export class StoreInUseError extends StoreError {
  override name = 'StoreInUseError';
}

/** A pagination cursor that this store did not issue (the HTTP layer answers 400). */
export class InvalidCursorError extends StoreError {
  override name = 'InvalidCursorError';
  constructor(readonly cursor: string) {
    super('invalid cursor');
  }
}

/**
 * A write conflicts with what is stored: e.g. an event with a new id but the same
 * (call id, sequence) as a stored one (sequences are gap-free and unique per call).
 */
export class StoreConflictError extends StoreError {
  override name = 'StoreConflictError';
}

/** Whether a driver error is a unique-constraint violation (SQLite or PostgreSQL). */
export function isUniqueViolation(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  return (
    code === '23505' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
