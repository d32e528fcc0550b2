/**
 * Remembered `Idempotency-Key` answers (the same key within IDEMPOTENCY_TTL_MS returns the same
 * call instead of dialling twice, also across a restart). The HTTP layer keeps the working set
 * in memory (`src/http/idempotency.ts`) and writes each completed answer here; start-up reloads
 * the unexpired ones.
 */
import type { Kysely } from 'kysely';
import { toIsoTime, type Database } from './schema.ts';

/** One remembered answer. */
export interface IdempotencyRecord {
  /** The API key's name. */
  scope: string;
  /** The client's `Idempotency-Key`. */
  key: string;
  /** SHA-256 (hex) of the normalised request. */
  fingerprint: string;
  /** The answer as JSON text. */
  value: string;
  /** When the key is forgotten, epoch milliseconds. */
  expiresAt: number;
}

/** The `idempotency_keys` table. */
export interface IdempotencyRepository {
  /** Insert or replace the answer of (scope, key). */
  save(record: IdempotencyRecord): Promise<void>;
  /** Answers not expired at `nowMs`, oldest expiry first. */
  loadLive(nowMs: number): Promise<IdempotencyRecord[]>;
  /** Delete answers expired at `nowMs`; returns how many. */
  purgeExpired(nowMs: number): Promise<number>;
}

/** The repository over `db` (a Kysely instance or a transaction). */
export function createIdempotencyRepository(db: Kysely<Database>): IdempotencyRepository {
  return {
    async save(record) {
      const row = {
        scope: record.scope,
        key: record.key,
        fingerprint: record.fingerprint,
        value: record.value,
        expires_at: toIsoTime(record.expiresAt),
      };
      await db
        .insertInto('idempotency_keys')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['scope', 'key']).doUpdateSet({
            fingerprint: row.fingerprint,
            value: row.value,
            expires_at: row.expires_at,
          }),
        )
        .execute();
    },

    async loadLive(nowMs) {
      const rows = await db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('expires_at', '>', toIsoTime(nowMs))
        .orderBy('expires_at')
        .execute();
      return rows.map((row) => ({
        scope: row.scope,
        key: row.key,
        fingerprint: row.fingerprint,
        value: row.value,
        expiresAt: Date.parse(row.expires_at),
      }));
    },

    async purgeExpired(nowMs) {
      const result = await db
        .deleteFrom('idempotency_keys')
        .where('expires_at', '<=', toIsoTime(nowMs))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
