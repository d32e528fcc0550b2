/**
 * Operators in the store (`operators`, migration 0006): each operator's status (set through the
 * API), the last state the engine published, and the sequence of its `operator.state` events.
 * A change and its event are written in one transaction, so the outbox never holds an event for
 * a change the table does not (and the reverse).
 */
import type { Kysely } from 'kysely';
import { createEventEnvelope, type LifecycleEvent } from '../events/types.ts';
import { createEventRepository } from '../store/events.ts';
import type { StoreDialect } from '../store/migrations.ts';
import type { Database } from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import type { Operator, OperatorState, OperatorStatus } from './model.ts';

/** The outbox key (`callId` of the envelope) of an operator's events: `operator-<extension>`. */
export function operatorEventKey(extension: string): string {
  return `operator-${extension}`;
}

/** One stored operator. */
export interface StoredOperator extends Operator {
  /** Sequence of its last `operator.state` event (0: none yet). */
  eventSeq: number;
}

/** Options of {@link OperatorStore}. */
export interface OperatorStoreOptions {
  /**
   * Store events `skipped` (no webhook URL configured: for the pull feed only), as the call
   * journal does. Default false.
   */
  skipDelivery?: boolean;
}

/** Operators over a store's Kysely instance (SQLite or PostgreSQL). */
export class OperatorStore {
  constructor(
    private readonly store: { db: Kysely<Database>; dialect: StoreDialect },
    private readonly options: OperatorStoreOptions = {},
  ) {}

  /** Every stored operator, by extension. */
  async loadAll(): Promise<Map<string, StoredOperator>> {
    const rows = await this.store.db.selectFrom('operators').selectAll().execute();
    return new Map(
      rows.map((row) => [
        row.extension,
        {
          extension: row.extension,
          state: row.state as OperatorState,
          status: row.status as OperatorStatus,
          since: row.since,
          ...(row.call_id !== null ? { callId: row.call_id } : {}),
          eventSeq: Number(row.event_seq),
        },
      ]),
    );
  }

  /**
   * Save the operator as it is now and append its `operator.state` event (sequence
   * `operator.eventSeq`), in one transaction.
   *
   * @returns the event, committed
   * @throws the driver's error (nothing written)
   */
  async saveChange(
    operator: StoredOperator,
    previousState: OperatorState | undefined,
    now: number,
  ): Promise<LifecycleEvent> {
    const event = createEventEnvelope(
      'operator.state',
      operatorEventKey(operator.extension),
      operator.eventSeq,
      {
        extension: operator.extension,
        state: operator.state,
        status: operator.status,
        since: operator.since,
        ...(operator.callId !== undefined ? { callId: operator.callId } : {}),
        ...(previousState !== undefined ? { previousState } : {}),
      },
      now,
    );
    const row = {
      extension: operator.extension,
      status: operator.status,
      state: operator.state,
      since: operator.since,
      call_id: operator.callId ?? null,
      event_seq: operator.eventSeq,
      updated_at: toIsoTime(now),
    };
    await this.store.db.transaction().execute(async (trx) => {
      await trx
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
      await createEventRepository(trx, this.store.dialect).appendEvents([event], now, {
        skipDelivery: this.options.skipDelivery ?? false,
      });
    });
    return event;
  }
}
