/**
 * State a CRM connector keeps across restarts (`connector_state`): JSON values by key, one
 * namespace per connector. Bitrix24 keeps its refreshed OAuth tokens (`oauth`) and the
 * `CALL_ID` it registered for each call (`call:<engine call id>`) here. Writes are single-row
 * upserts (no transaction with the call's events is needed: a connector writes after the
 * vendor answered, and repeats its request if the write is lost).
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** The state of one connector. Values are JSON-serialisable. */
export interface ConnectorStateRepository {
  /** The value under `key`, undefined when none. */
  get<T>(key: string): Promise<T | undefined>;
  /** Store `value` under `key` (replacing the old one). */
  set(key: string, value: unknown): Promise<void>;
  /** Remove `key` (no-op when absent). */
  delete(key: string): Promise<void>;
  /**
   * Remove the keys starting with `prefix` last written before `before`; resolves with how
   * many went.
   */
  purge(prefix: string, before: Date): Promise<number>;
}

/** The repository of connector `name`'s state over `db` (e.g. `Store.db`). */
export function createConnectorState(db: Kysely<Database>, name: string): ConnectorStateRepository {
  return {
    async get<T>(key: string): Promise<T | undefined> {
      const row = await db
        .selectFrom('connector_state')
        .select('value')
        .where('connector', '=', name)
        .where('key', '=', key)
        .executeTakeFirst();
      return row ? (JSON.parse(row.value) as T) : undefined;
    },

    async set(key: string, value: unknown): Promise<void> {
      const row = {
        connector: name,
        key,
        value: JSON.stringify(value),
        updated_at: toIsoTime(Date.now()),
      };
      await db
        .insertInto('connector_state')
        .values(row)
        .onConflict((oc) =>
          oc
            .columns(['connector', 'key'])
            .doUpdateSet({ value: row.value, updated_at: row.updated_at }),
        )
        .execute();
    },

    async delete(key: string): Promise<void> {
      await db
        .deleteFrom('connector_state')
        .where('connector', '=', name)
        .where('key', '=', key)
        .execute();
    },

    async purge(prefix: string, before: Date): Promise<number> {
      const result = await db
        .deleteFrom('connector_state')
        .where('connector', '=', name)
        .where('key', '>=', prefix)
        .where('key', '<', `${prefix}\uffff`)
        .where('updated_at', '<', toIsoTime(before))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
