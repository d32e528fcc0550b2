/**
 * What the parts of the event repository share: the mapping of `events` rows to
 * {@link FeedItem} (to `OutboxEvent`: outbox-rows.ts), the {@link EventContext} each part
 * (event-append.ts, event-delivery.ts, event-feed.ts) works in, and the largest page they
 * return. Times ISO 8601 UTC.
 */
import type { Kysely, Selectable } from 'kysely';
import type { LifecycleEvent } from '../events/types.ts';
import { encodeCursor } from './cursor.ts';
import type { FeedItem, OutboxStatus } from './events.ts';
import type { StoreDialect } from './migrations.ts';
import type { OutboxPositions } from './outbox-positions.ts';
import type { Database, EventsTable } from './schema.ts';

/** Largest page of the feed, the delivery log and `EventRepository.claimDue`. */
export const MAX_EVENTS_PAGE = 1000;

/** What the parts of one event repository share (built by {@link createEventContext}). */
export interface EventContext {
  /** A Kysely instance, or the transaction the repository is bound to. */
  db: Kysely<Database>;
  dialect: StoreDialect;
  /** The engine's numbering once started (the store was migrated); else the database numbers. */
  numbering: () => OutboxPositions | undefined;
  /** Run `fn` in the bound transaction, or in a new one of its own. */
  inTransaction: <T>(fn: (trx: Kysely<Database>) => Promise<T>) => Promise<T>;
}

/**
 * The context of a repository over `db` (a Kysely instance or a transaction); `positions` is the
 * engine's outbox numbering (SQLite), used once started.
 */
export function createEventContext(
  db: Kysely<Database>,
  dialect: StoreDialect,
  positions: OutboxPositions | undefined,
): EventContext {
  return {
    db,
    dialect,
    numbering: () => (positions?.started ? positions : undefined),
    inTransaction: async <T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
      db.isTransaction ? fn(db) : db.transaction().execute(fn),
  };
}

/** An `events` row as an item of the pull feed (its cursor is its outbox position). */
export function toFeedItem(row: Selectable<EventsTable>): FeedItem {
  return {
    cursor: encodeCursor('feed', [Number(row.id)]),
    event: JSON.parse(row.payload) as LifecycleEvent,
    status: row.status as OutboxStatus,
  };
}
