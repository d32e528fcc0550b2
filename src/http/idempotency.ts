/**
 * Idempotency of call creation: the same key within IDEMPOTENCY_TTL_MS returns the same call
 * instead of dialling twice. Keys are scoped by API key name; a request is identified by a
 * fingerprint
 * of its normalised content. The working set is in memory (lookups are synchronous); each
 * completed answer is also handed to an optional `persist` callback (the engine writes it to the
 * store, `src/store/idempotency.ts`) and {@link IdempotencyStore.restore} reloads them at start-up,
 * so a key still answers the same call after a restart.
 */
import { createHash } from 'node:crypto';
import type { Response } from 'express';
import { HttpError } from './errors.ts';

/**
 * What {@link IdempotencyStore.begin} found: `new` (the key is now reserved for this request:
 * call `complete` or `abandon`), `hit` (the remembered answer), `conflict` (the key was used for
 * a different request), `pending` (the same key is being processed right now).
 */
export type IdempotencyLookup<T> =
  { kind: 'new' } | { kind: 'hit'; value: T } | { kind: 'conflict' } | { kind: 'pending' };

interface Entry<T> {
  fingerprint: string;
  /** Undefined while the first request is still being processed. */
  value: T | undefined;
  expiresAt: number;
}

/** JSON with object keys sorted, so equal content gives equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 (hex) of {@link canonicalJson}. */
export function fingerprintOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** A completed answer as it is persisted and restored. */
export interface PersistedIdempotencyAnswer<T> {
  scope: string;
  key: string;
  fingerprint: string;
  value: T;
  /** When it is forgotten, epoch milliseconds. */
  expiresAt: number;
}

/** Remembered answers by (scope, key), each for `ttlMs` after it was stored. */
export class IdempotencyStore<T> {
  // Insertion order is expiry order (one TTL for all), so expired entries are at the front.
  private readonly entries = new Map<string, Entry<T>>();

  /**
   * @param ttlMs how long an answer is remembered, in milliseconds (IDEMPOTENCY_TTL_MS)
   * @param now clock, epoch milliseconds
   */
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    /**
     * Called with every completed answer (write it durably); must not throw. Reservations of
     * requests still being processed are never persisted.
     */
    private readonly persist?: (answer: PersistedIdempotencyAnswer<T>) => void,
  ) {}

  /**
   * Load answers persisted by an earlier run (expired ones are skipped). Call before serving
   * requests; answers already in memory win.
   */
  restore(answers: Iterable<PersistedIdempotencyAnswer<T>>): void {
    const now = this.now();
    const sorted = [...answers]
      .filter((a) => a.expiresAt > now)
      .sort((a, b) => a.expiresAt - b.expiresAt);
    const fresh = new Map<string, Entry<T>>();
    for (const a of sorted) {
      const id = `${a.scope}\u0000${a.key}`;
      if (!this.entries.has(id))
        fresh.set(id, { fingerprint: a.fingerprint, value: a.value, expiresAt: a.expiresAt });
    }
    // Keep insertion order = expiry order: restored (older) entries first.
    const current = [...this.entries];
    this.entries.clear();
    for (const [id, entry] of fresh) this.entries.set(id, entry);
    for (const [id, entry] of current) this.entries.set(id, entry);
  }

  /** Number of remembered keys (after dropping expired ones). */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  /**
   * Start a request carrying `key` (of `scope`, e.g. the API key name) whose content hashes to
   * `fingerprint`; see {@link IdempotencyLookup}.
   */
  begin(scope: string, key: string, fingerprint: string): IdempotencyLookup<T> {
    this.sweep();
    const id = `${scope}\u0000${key}`;
    const entry = this.entries.get(id);
    if (!entry) {
      this.entries.set(id, { fingerprint, value: undefined, expiresAt: this.now() + this.ttlMs });
      return { kind: 'new' };
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' };
    return entry.value === undefined ? { kind: 'pending' } : { kind: 'hit', value: entry.value };
  }

  /** Remember `value` as the answer of the request that reserved `key` (kept for the TTL from now). */
  complete(scope: string, key: string, value: T): void {
    const id = `${scope}\u0000${key}`;
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    const expiresAt = this.now() + this.ttlMs;
    this.entries.set(id, { ...entry, value, expiresAt });
    this.persist?.({ scope, key, fingerprint: entry.fingerprint, value, expiresAt });
  }

  /** Forget a reservation whose request failed (the key may be used again). */
  abandon(scope: string, key: string): void {
    const id = `${scope}\u0000${key}`;
    if (this.entries.get(id)?.value === undefined) this.entries.delete(id);
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(id);
    }
  }
}

/** A remembered creation answer: its HTTP status and a JSON body carrying the created `id`. */
export interface IdempotentCreation {
  status: number;
  body: { id: string | number };
}

/**
 * Start a creation request (POST /v1/calls, POST /v1/autocalls) for the API key named `scope`,
 * carrying `key` in its Idempotency-Key header (undefined: no header, nothing to do) and creating
 * `content` (its normalised request, identified by {@link fingerprintOf}).
 *
 * @returns `false` when there is no key, or the key is now reserved for this request: the caller
 *   creates, then calls `store.complete` with its answer, or `store.abandon` when the creation
 *   fails. `true` when the key already answered the same request: `res` has been sent the
 *   remembered status and body, with `Location: locationOf(body.id)` and
 *   `Idempotent-Replayed: true`.
 * @throws HttpError 409 `idempotency_conflict` (the key was used for a different request) or 409
 *   `idempotency_in_progress` (a request with the key is still being processed), both with
 *   `field: Idempotency-Key`.
 */
export function beginIdempotentCreation<T extends IdempotentCreation>(
  store: IdempotencyStore<T>,
  scope: string,
  key: string | undefined,
  content: unknown,
  res: Response,
  locationOf: (id: string | number) => string,
): boolean {
  if (!key) return false;
  const found = store.begin(scope, key, fingerprintOf(content));
  if (found.kind === 'conflict')
    throw new HttpError(
      409,
      'idempotency_conflict',
      'this Idempotency-Key was used for a different request',
      { field: 'Idempotency-Key' },
    );
  if (found.kind === 'pending')
    throw new HttpError(
      409,
      'idempotency_in_progress',
      'a request with this Idempotency-Key is being processed; retry shortly',
      { field: 'Idempotency-Key' },
    );
  if (found.kind === 'new') return false;
  res
    .status(found.value.status)
    .location(locationOf(found.value.body.id))
    .set('Idempotent-Replayed', 'true')
    .json(found.value.body);
  return true;
}
