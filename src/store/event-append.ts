/**
 * Appending to the outbox ({@link EventRepository.appendEvents}): the insert statements, the
 * outbox positions of the new events (SQLite: the engine's numbering,
 * src/store/outbox-positions.ts; PostgreSQL: `bigserial` behind a transaction-level advisory
 * lock, so ids follow commit order), and the rows of a CRM connector's own outbox written in the
 * same transaction.
 */
import { sql } from 'kysely';
import { compiledStatement } from './compiled.ts';
import { isUniqueViolation, StoreConflictError } from './errors.ts';
import type { EventContext } from './event-rows.ts';
import type { ConnectorOutboxTarget, EventRepository } from './events.ts';
import type { OutboxPositions, PositionedEvent } from './outbox-positions.ts';
import type { EventsTable } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** Key of the PostgreSQL advisory lock that serialises outbox inserts ("ARICRMEV"). */
const OUTBOX_LOCK_KEY = 0x415249434d4556n;

// Hot statements (throughput: run for every event of every call), compiled once per
// dialect instance (./compiled.ts). Each `build` passes its values to Kysely unchanged.

/** The columns of a new event row that its writer gives (status and attempts are the statement's). */
type NewEventRow = Pick<
  EventsTable,
  | 'event_id'
  | 'call_id'
  | 'type'
  | 'sequence'
  | 'occurred_at'
  | 'payload'
  | 'next_attempt_at'
  | 'created_at'
>;

/** Append one event, pending and due at `next_attempt_at`; an event id already stored is skipped. */
const insertEvent = compiledStatement('events.insert', (db, row: NewEventRow) =>
  db
    .insertInto('events')
    .values({ ...row, status: 'pending', attempts: 0 })
    .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** Insert an event not to be sent (no webhook URL configured), settled when stored. */
const insertSkippedEvent = compiledStatement(
  'events.insert-skipped',
  (db, row: NewEventRow & { settled_at: string }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'skipped', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** {@link insertEvent} at an outbox position the engine assigned (SQLite). */
const insertEventAt = compiledStatement(
  'events.insert-at',
  (db, row: NewEventRow & { id: number }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'pending', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** {@link insertSkippedEvent} at an outbox position the engine assigned (SQLite). */
const insertSkippedEventAt = compiledStatement(
  'events.insert-skipped-at',
  (db, row: NewEventRow & { settled_at: string; id: number }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'skipped', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

/**
 * How {@link EventRepository.appendEvents} numbers the events it writes and reports them
 * (src/store/store.ts binds the repositories with these).
 */
export interface AppendHooks {
  /** SQLite: the engine's outbox numbering (absent on PostgreSQL, where the database numbers). */
  positions?: OutboxPositions;
  /**
   * Transaction-bound repository: told of the positions `appendEvents` allocated itself, at once;
   * the owner of the transaction settles them (`committed` or `abandoned`) when it ends. A
   * store-bound repository settles its own.
   */
  allocated?: (positions: readonly number[]) => void;
  /**
   * Told after the statements of `appendEvents` ran, with the events at their positions
   * (undefined on PostgreSQL): on a store-bound repository they are committed then; on a
   * transaction-bound one, once the owner's transaction commits.
   */
  appended?: (items: readonly PositionedEvent[] | undefined) => void;
}

/**
 * {@link EventRepository.appendEvents} of a repository in `ctx`: queueing the events of
 * `connector`'s types for it too, numbering and reporting them through `hooks`.
 */
export function eventAppender(
  { db, dialect, numbering, inTransaction }: EventContext,
  connector: ConnectorOutboxTarget | undefined,
  hooks: AppendHooks,
): Pick<EventRepository, 'appendEvents'> {
  return {
    async appendEvents(events, now, options) {
      if (events.length === 0) return;
      const createdAt = toIsoTime(now ?? Date.now());
      const skip = options?.skipDelivery === true;
      const own = !db.isTransaction;
      // SQLite: the positions given (the journal's), or allocated now; in the store's own
      // transaction below they are allocated while it holds the connection.
      let at: readonly number[] | undefined;
      let allocated: number[] = [];
      const positions = numbering();
      const place = (): readonly number[] | undefined => {
        if (!positions) return undefined;
        if (options?.positions) {
          if (options.positions.length !== events.length)
            throw new RangeError(
              `${options.positions.length} positions given for ${events.length} events`,
            );
          positions.observe(options.positions);
          return options.positions;
        }
        allocated = positions.allocate(events.length);
        if (!own) hooks.allocated?.(allocated);
        return allocated;
      };
      try {
        await inTransaction(async (trx) => {
          at = place();
          if (dialect === 'postgres') {
            await sql`select pg_advisory_xact_lock(${sql.lit(OUTBOX_LOCK_KEY.toString())}::bigint)`.execute(
              trx,
            );
          }
          for (let i = 0; i < events.length; i++) {
            const event = events[i]!;
            const row = {
              event_id: event.id,
              call_id: event.callId,
              type: event.type,
              sequence: event.sequence,
              occurred_at: toIsoTime(event.occurredAt),
              payload: JSON.stringify(event),
              next_attempt_at: createdAt,
              created_at: createdAt,
            };
            const id = at?.[i];
            if (id !== undefined) {
              if (skip) await insertSkippedEventAt.run(trx, { ...row, settled_at: createdAt, id });
              else await insertEventAt.run(trx, { ...row, id });
            } else if (skip) await insertSkippedEvent.run(trx, { ...row, settled_at: createdAt });
            else await insertEvent.run(trx, row);
            if (connector?.types.has(event.type))
              await trx
                .insertInto('connector_outbox')
                .values({
                  connector: connector.name,
                  event_id: event.id,
                  call_id: event.callId,
                  sequence: event.sequence,
                  status: 'pending',
                  attempts: 0,
                  next_attempt_at: createdAt,
                  created_at: createdAt,
                })
                .onConflict((oc) => oc.columns(['connector', 'event_id']).doNothing())
                .execute();
          }
        });
      } catch (err) {
        if (own && allocated.length > 0) positions?.abandoned(allocated);
        if (isUniqueViolation(err)) {
          throw new StoreConflictError(
            'an event with this call id and sequence is already stored under another event id',
            { cause: err },
          );
        }
        throw err;
      }
      const placed = at;
      const items = placed?.map((position, i) => ({ position, event: events[i]! }));
      if (own && items) positions?.committed(items);
      hooks.appended?.(items);
    },
  };
}
