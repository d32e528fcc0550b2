/**
 * What the two outboxes share: the webhook's (`events`, src/store/event-delivery.ts) and a CRM
 * connector's (`connector_outbox`, src/store/connector-outbox.ts). Their rows map to the same
 * {@link OutboxEvent}, they settle events as `dead` or `rejected` the same way, and they log
 * attempts to the same `webhook_deliveries` table. Times ISO 8601 UTC; durations milliseconds.
 */
import type { Insertable, Selectable } from 'kysely';
import type { LifecycleEvent } from '../events/types.ts';
import type { TimeInput } from './calls.ts';
import type { AttemptInput, EventRepository, OutboxEvent, OutboxStatus } from './events.ts';
import type { ConnectorOutboxTable, EventsTable, WebhookDeliveriesTable } from './schema.ts';
import { toIsoTime } from './schema.ts';

/**
 * An outbox row with its event's payload: an `events` row, or a `connector_outbox` row joined
 * with `events.payload` (which has no `delivered_at`). `id` is text on PostgreSQL (bigint).
 */
export type OutboxRow = Pick<
  Selectable<ConnectorOutboxTable>,
  | 'id'
  | 'status'
  | 'attempts'
  | 'next_attempt_at'
  | 'last_error'
  | 'last_status'
  | 'created_at'
  | 'settled_at'
> &
  Pick<Selectable<EventsTable>, 'payload'> &
  Partial<Pick<Selectable<EventsTable>, 'delivered_at'>>;

/** An outbox row as the delivery side sees it (optional fields only when set). */
export function toOutboxEvent(row: OutboxRow): OutboxEvent {
  const out: OutboxEvent = {
    seq: Number(row.id),
    event: JSON.parse(row.payload) as LifecycleEvent,
    body: row.payload,
    status: row.status as OutboxStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
  };
  if (row.last_error !== null) out.lastError = row.last_error;
  if (row.last_status !== null) out.lastStatus = Number(row.last_status);
  if (row.delivered_at !== undefined && row.delivered_at !== null) {
    out.deliveredAt = row.delivered_at;
  }
  if (row.settled_at !== null) out.settledAt = row.settled_at;
  return out;
}

/** The columns a final state (`dead`, `rejected`) writes to a pending outbox row. */
export interface FinalSettlement {
  status: OutboxStatus;
  last_error: string;
  last_status?: number;
  settled_at: string;
}

/**
 * `markDead` and `markRejected` over `settle`, which updates the row of `eventId` with `set`
 * when it is still pending and resolves whether it did.
 */
export function finalSettlements(
  settle: (eventId: string, set: FinalSettlement) => Promise<boolean>,
): Pick<EventRepository, 'markDead' | 'markRejected'> {
  return {
    markDead(eventId: string, reason: string, now?: TimeInput) {
      return settle(eventId, {
        status: 'dead',
        last_error: reason,
        settled_at: toIsoTime(now ?? Date.now()),
      });
    },

    markRejected(eventId: string, status: number, error: string, now?: TimeInput) {
      return settle(eventId, {
        status: 'rejected',
        last_status: status,
        last_error: error,
        settled_at: toIsoTime(now ?? Date.now()),
      });
    },
  };
}

/** The `webhook_deliveries` row of one attempt (`at` defaults to now; duration ≥ 0, whole ms). */
export function toDeliveryRow(
  input: AttemptInput,
): Required<Omit<Insertable<WebhookDeliveriesTable>, 'id'>> {
  return {
    event_id: input.eventId,
    attempt: input.attempt,
    url: input.url ?? null,
    at: toIsoTime(input.at ?? Date.now()),
    outcome: input.outcome,
    status_code: input.statusCode ?? null,
    error: input.error ?? null,
    duration_ms: Math.max(0, Math.round(input.durationMs)),
  };
}
