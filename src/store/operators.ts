/**
 * The `operators` table (migration 0007): one row per operator extension, the operator's status,
 * the last presence state the engine published and the sequence of its last `operator.state`
 * event. Written by operator presence (src/operators/store.ts) together with those events, in
 * one transaction or write batch (`Store.writeBatch`: {@link OperatorRepository.save} only
 * writes, so it can be collected).
 */
import type { Kysely } from 'kysely';
import type { TimeInput } from './calls.ts';
import { toIsoTime, type Database } from './schema.ts';

/** One operator's row. Times are ISO 8601 UTC text (see docs/store.md). */
export interface OperatorRow {
  extension: string;
  /** `available`, `break` or `dnd`. */
  status: string;
  /** `offline`, `idle`, `ringing` or `on_call`. */
  state: string;
  /** When `state` or `status` last changed. */
  since: string;
  /** The call ringing the operator or the operator is on, if any. */
  callId?: string;
  /** Sequence of the operator's last `operator.state` event (0: none yet). */
  eventSeq: number;
}

/** The `operators` table. */
export interface OperatorRepository {
  /**
   * Insert the operator's row, or replace every column of the stored one (`updated_at` =
   * `now`, a Date, epoch ms or ISO text). Reads nothing: usable inside `Store.writeBatch`.
   *
   * @throws RangeError when `now` is not a valid time; the driver's error
   */
  save(row: OperatorRow, now: TimeInput): Promise<void>;
  /** Every stored operator, in extension order. */
  list(): Promise<OperatorRow[]>;
}

/** The repository over `db` (a Kysely instance or a transaction). */
export function createOperatorRepository(db: Kysely<Database>): OperatorRepository {
  return {
    async save(operator, now) {
      const row = {
        extension: operator.extension,
        status: operator.status,
        state: operator.state,
        since: operator.since,
        call_id: operator.callId ?? null,
        event_seq: operator.eventSeq,
        updated_at: toIsoTime(now),
      };
      await db
        .insertInto('operators')
        .values(row)
        .onConflict((oc) =>
          oc.column('extension').doUpdateSet({
            status: row.status,
            state: row.state,
            since: row.since,
            call_id: row.call_id,
            event_seq: row.event_seq,
            updated_at: row.updated_at,
          }),
        )
        .execute();
    },

    async list() {
      const rows = await db.selectFrom('operators').selectAll().orderBy('extension').execute();
      return rows.map((row) => ({
        extension: row.extension,
        status: row.status,
        state: row.state,
        since: row.since,
        ...(row.call_id !== null ? { callId: row.call_id } : {}),
        eventSeq: Number(row.event_seq),
      }));
    },
  };
}
