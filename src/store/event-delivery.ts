/**
 * The delivery side of the outbox: claiming due events under a lease (never overtaking an
 * earlier pending event of the same call), settling them (`delivered`, `rejected`, `dead`) or
 * rescheduling them for a retry, their attempt counts, and the per-attempt delivery log. Only
 * pending events change. Times ISO 8601 UTC; durations milliseconds.
 */
import type { Insertable } from 'kysely';
import { affectedRows, compiledStatement } from './compiled.ts';
import { checkLimit } from './cursor.ts';
import { MAX_EVENTS_PAGE, type EventContext } from './event-rows.ts';
import type { EventRepository } from './events.ts';
import {
  finalSettlements,
  toDeliveryRow,
  toOutboxEvent,
  type FinalSettlement,
} from './outbox-rows.ts';
import type { WebhookDeliveriesTable } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** Default lease of {@link EventRepository.claimDue}, ms. */
export const DEFAULT_CLAIM_LEASE_MS = 60_000;

// Hot statements (throughput: run for every event of every call), compiled once per
// dialect instance (./compiled.ts). Each `build` passes its values to Kysely unchanged.

type RetryParams = {
  event_id: string;
  next_attempt_at: string;
  last_error: string;
  last_status: number | null;
};

/** Keep a pending event pending, due again at `next_attempt_at`, remembering the error. */
const markRetryStatement = compiledStatement('events.mark-retry', (db, p: RetryParams) =>
  db
    .updateTable('events')
    .set({
      next_attempt_at: p.next_attempt_at,
      last_error: p.last_error,
      last_status: p.last_status,
    })
    .where('event_id', '=', p.event_id)
    .where('status', '=', 'pending'),
);

/** {@link markRetryStatement} that also stores the attempt count. */
const markRetryWithAttemptsStatement = compiledStatement(
  'events.mark-retry-attempts',
  (db, p: RetryParams & { attempts: number }) =>
    db
      .updateTable('events')
      .set({
        next_attempt_at: p.next_attempt_at,
        last_error: p.last_error,
        last_status: p.last_status,
        attempts: p.attempts,
      })
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending'),
);

/**
 * pending → delivered at `at`, with the HTTP status, raising the attempt count to `attempts`
 * (never lowering it: 0 keeps it).
 */
const markDeliveredStatement = compiledStatement(
  'events.mark-delivered',
  (db, p: { event_id: string; last_status: number | null; at: string; attempts: number }) =>
    db
      .updateTable('events')
      .set((eb) => ({
        status: 'delivered',
        last_status: p.last_status,
        last_error: null,
        delivered_at: p.at,
        settled_at: p.at,
        attempts: eb
          .case()
          .when('attempts', '<', p.attempts)
          .then(eb.val(p.attempts))
          .else(eb.ref('attempts'))
          .end(),
      }))
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending'),
);

/** Raise a pending event's attempt count (never lowers it). */
const setAttemptsStatement = compiledStatement(
  'events.set-attempts',
  (db, p: { event_id: string; attempts: number }) =>
    db
      .updateTable('events')
      .set({ attempts: p.attempts })
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending')
      .where('attempts', '<', p.attempts),
);

/** Log one delivery attempt. */
const insertDeliveryStatement = compiledStatement(
  'webhook_deliveries.insert',
  (db, row: Required<Omit<Insertable<WebhookDeliveriesTable>, 'id'>>) =>
    db.insertInto('webhook_deliveries').values(row),
);

/** Raise an event's attempt count, any status (never lowers it). */
const raiseAttemptsStatement = compiledStatement(
  'events.raise-attempts',
  (db, p: { event_id: string; attempts: number }) =>
    db
      .updateTable('events')
      .set({ attempts: p.attempts })
      .where('event_id', '=', p.event_id)
      .where('attempts', '<', p.attempts),
);

/** The methods of {@link EventRepository} that deliver events. */
export type EventDelivery = Pick<
  EventRepository,
  | 'claimDue'
  | 'loadPending'
  | 'getEvent'
  | 'markDelivered'
  | 'markRetry'
  | 'setAttempts'
  | 'markDead'
  | 'markRejected'
  | 'recordAttempt'
  | 'pending'
>;

/** The delivery side of a repository in `ctx` (see the module comment). */
export function eventDelivery({ db, dialect, inTransaction }: EventContext): EventDelivery {
  async function settle(eventId: string, set: FinalSettlement): Promise<boolean> {
    const result = await db
      .updateTable('events')
      .set(set)
      .where('event_id', '=', eventId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  return {
    async claimDue(now, limit, leaseMs = DEFAULT_CLAIM_LEASE_MS) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      if (!Number.isFinite(leaseMs) || leaseMs < 0) {
        throw new RangeError(`leaseMs must be a non-negative number, got ${leaseMs}`);
      }
      const nowMs = new Date(toIsoTime(now)).getTime();
      const nowIso = toIsoTime(nowMs);
      return inTransaction(async (trx) => {
        let query = trx
          .selectFrom('events as e')
          .selectAll('e')
          .where('e.status', '=', 'pending')
          .where('e.next_attempt_at', '<=', nowIso)
          // Kysely's expression builder is documented to be destructured (its helpers are bound).
          // eslint-disable-next-line @typescript-eslint/unbound-method
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('events as p')
                  .select('p.id')
                  .whereRef('p.call_id', '=', 'e.call_id')
                  .where('p.status', '=', 'pending')
                  .whereRef('p.sequence', '<', 'e.sequence'),
              ),
            ),
          )
          .orderBy('e.id')
          .limit(limit);
        if (dialect === 'postgres') query = query.forUpdate().skipLocked();
        const rows = await query.execute();
        if (rows.length === 0) return [];
        const leasedUntil = toIsoTime(nowMs + leaseMs);
        await trx
          .updateTable('events')
          .set({ next_attempt_at: leasedUntil })
          .where(
            'event_id',
            'in',
            rows.map((row) => row.event_id),
          )
          .execute();
        return rows.map((row) => toOutboxEvent({ ...row, next_attempt_at: leasedUntil }));
      });
    },

    async loadPending() {
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('status', '=', 'pending')
        .orderBy('id')
        .execute();
      return rows.map(toOutboxEvent);
    },

    async getEvent(eventId) {
      const row = await db
        .selectFrom('events')
        .selectAll()
        .where('event_id', '=', eventId)
        .executeTakeFirst();
      return row && toOutboxEvent(row);
    },

    async markDelivered(eventId, status, now, attempts) {
      const delivered = {
        event_id: eventId,
        last_status: status ?? null,
        at: toIsoTime(now ?? Date.now()),
      };
      const result = await markDeliveredStatement.run(db, {
        ...delivered,
        attempts: attempts ?? 0,
      });
      return affectedRows(result) > 0;
    },

    async markRetry(eventId, nextAttemptAt, error, status, attempts) {
      const retry = {
        event_id: eventId,
        next_attempt_at: toIsoTime(nextAttemptAt),
        last_error: error,
        last_status: status ?? null,
      };
      const result = await (attempts === undefined
        ? markRetryStatement.run(db, retry)
        : markRetryWithAttemptsStatement.run(db, { ...retry, attempts }));
      return affectedRows(result) > 0;
    },

    async setAttempts(eventId, attempts) {
      const result = await setAttemptsStatement.run(db, { event_id: eventId, attempts });
      return affectedRows(result) > 0;
    },

    ...finalSettlements(settle),

    async recordAttempt(input) {
      if (!Number.isInteger(input.attempt) || input.attempt < 1) {
        throw new RangeError(`attempt must be a positive integer, got ${input.attempt}`);
      }
      await inTransaction(async (trx) => {
        await insertDeliveryStatement.run(trx, toDeliveryRow(input));
        if (input.raiseAttempts !== false)
          await raiseAttemptsStatement.run(trx, {
            event_id: input.eventId,
            attempts: input.attempt,
          });
      });
    },

    async pending() {
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('status', '=', 'pending')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
