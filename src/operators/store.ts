/**
 * Operators in the store (`operators`, migration 0007, src/store/operators.ts): each operator's
 * status (set through the API), the last state the engine published, and the sequence of its
 * `operator.state` events. Changes are written in batches ({@link OperatorStore.saveChanges}):
 * the rows and the events of a batch are one write batch of the store (`Store.writeBatch`: one
 * transaction, one round trip to the SQLite thread), so the outbox never holds an event for a
 * change the table does not (and the reverse).
 */
import { createEventEnvelope, type LifecycleEvent } from '../events/types.ts';
import type { Store } from '../store/index.ts';
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

/** One change of an operator's presence, to store with its `operator.state` event. */
export interface OperatorChange {
  /** The operator as it is after the change; its event has sequence `operator.eventSeq`. */
  operator: StoredOperator;
  /** The state before the change, when the state changed (the event's `previousState`). */
  previousState?: OperatorState;
  /** When the change happened, epoch ms (the event's `occurredAt`). */
  atMs: number;
}

/** Options of {@link OperatorStore}. */
export interface OperatorStoreOptions {
  /**
   * Store events `skipped` (no webhook URL configured: for the pull feed only), as the call
   * journal does. Default false.
   */
  skipDelivery?: boolean;
}

/** Operators over a store (SQLite or PostgreSQL). */
export class OperatorStore {
  constructor(
    private readonly store: Pick<Store, 'operators' | 'writeBatch'>,
    private readonly options: OperatorStoreOptions = {},
  ) {}

  /** Every stored operator, by extension. */
  async loadAll(): Promise<Map<string, StoredOperator>> {
    const rows = await this.store.operators.list();
    return new Map(
      rows.map((row) => [
        row.extension,
        {
          extension: row.extension,
          state: row.state as OperatorState,
          status: row.status as OperatorStatus,
          since: row.since,
          ...(row.callId !== undefined ? { callId: row.callId } : {}),
          eventSeq: row.eventSeq,
        },
      ]),
    );
  }

  /**
   * Store `changes` (in the order they happened) in one write batch of the store: each
   * operator's row as its last change left it, and every change's `operator.state` event, in
   * change order. Two changes of one operator are two events (their sequences must increase).
   * The events' outbox time (`created_at`) and the rows' `updated_at` are the last change's time.
   *
   * @returns the events, committed, in change order
   * @throws the driver's error (nothing written)
   */
  async saveChanges(changes: readonly OperatorChange[]): Promise<LifecycleEvent[]> {
    if (changes.length === 0) return [];
    const events = changes.map(({ operator, previousState, atMs }) =>
      createEventEnvelope(
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
        atMs,
      ),
    );
    // The row of each operator's last change (a Map keeps the first change's place).
    const rows = new Map<string, StoredOperator>();
    for (const { operator } of changes) rows.set(operator.extension, operator);
    const nowMs = changes[changes.length - 1]!.atMs;
    await this.store.writeBatch(async (repos) => {
      for (const row of rows.values()) await repos.operators.save(row, nowMs);
      await repos.events.appendEvents(events, nowMs, {
        skipDelivery: this.options.skipDelivery ?? false,
      });
    });
    return events;
  }
}
