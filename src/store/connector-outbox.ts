/**
 * The outbox of one CRM connector (src/connectors/): the vendor's delivery state of each
 * lifecycle event the connector translates, beside the webhook's (`events.status`). Rows are
 * written with their event (`EventRepository.appendEvents` with a {@link ConnectorOutboxTarget});
 * the connector's {@link DurableEventQueue} reads the pending ones at start-up and settles them.
 * Attempts go to the same delivery log as webhooks (`webhook_deliveries`, with the vendor URL),
 * so `GET /v1/webhooks/deliveries` shows both.
 *
 * States: `pending` → `delivered` | `rejected` (the vendor refused the request, e.g. a
 * validation error) | `dead` (undelivered too long). Times ISO 8601 UTC.
 */
import type { Kysely } from 'kysely';
import type { LifecycleEvent } from '../events/types.ts';
import type { TimeInput } from './calls.ts';
import type { OutboxRepository } from './durable-queue.ts';
import type { AttemptInput, OutboxStatus } from './events.ts';
import { finalSettlements, toDeliveryRow, toOutboxEvent } from './outbox-rows.ts';
import type { ConnectorOutboxTable, Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

export type { ConnectorOutboxTarget } from './events.ts';

/**
 * The repository of connector `name`'s outbox over `db` (a Kysely instance, e.g. `Store.db`).
 * It has the shape {@link DurableEventQueue} needs; `appendEvents` only (re)queues events
 * already in the outbox (idempotent).
 */
export function createConnectorOutbox(db: Kysely<Database>, name: string): OutboxRepository {
  async function settle(
    eventId: string,
    set: Partial<Pick<ConnectorOutboxTable, 'last_error' | 'last_status' | 'attempts'>> & {
      status: OutboxStatus;
      settled_at: string;
    },
  ): Promise<boolean> {
    const result = await db
      .updateTable('connector_outbox')
      .set(set)
      .where('connector', '=', name)
      .where('event_id', '=', eventId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  return {
    async appendEvents(events: readonly LifecycleEvent[], now?: TimeInput) {
      const at = toIsoTime(now ?? Date.now());
      for (const event of events) {
        await db
          .insertInto('connector_outbox')
          .values({
            connector: name,
            event_id: event.id,
            call_id: event.callId,
            sequence: event.sequence,
            status: 'pending',
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
          })
          .onConflict((oc) => oc.columns(['connector', 'event_id']).doNothing())
          .execute();
      }
    },

    async loadPending() {
      const rows = await db
        .selectFrom('connector_outbox as c')
        .innerJoin('events as e', 'e.event_id', 'c.event_id')
        .selectAll('c')
        .select(['e.payload'])
        .where('c.connector', '=', name)
        .where('c.status', '=', 'pending')
        .orderBy('c.id')
        .execute();
      return rows.map(toOutboxEvent);
    },

    async markDelivered(eventId, status, now, attempts) {
      return settle(eventId, {
        status: 'delivered',
        last_status: status ?? null,
        last_error: null,
        settled_at: toIsoTime(now ?? Date.now()),
        ...(attempts === undefined || attempts < 1 ? {} : { attempts }),
      });
    },

    async markRetry(eventId, nextAttemptAt, error, status, attempts) {
      const result = await db
        .updateTable('connector_outbox')
        .set({
          next_attempt_at: toIsoTime(nextAttemptAt),
          last_error: error,
          last_status: status ?? null,
          ...(attempts === undefined ? {} : { attempts }),
        })
        .where('connector', '=', name)
        .where('event_id', '=', eventId)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async setAttempts(eventId, attempts) {
      const result = await db
        .updateTable('connector_outbox')
        .set({ attempts })
        .where('connector', '=', name)
        .where('event_id', '=', eventId)
        .where('status', '=', 'pending')
        .where('attempts', '<', attempts)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    ...finalSettlements(settle),

    async recordAttempt(input: AttemptInput) {
      await db.insertInto('webhook_deliveries').values(toDeliveryRow(input)).execute();
    },
  };
}
