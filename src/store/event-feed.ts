/**
 * The read side of the outbox: the pull feed (every event, any delivery status, in outbox
 * order, resumed after an opaque cursor), its head, the events of given calls (the live stream's
 * snapshot), and the delivery log (newest attempt first). On SQLite the feed reads only up to
 * the engine's committed watermark (src/store/outbox-positions.ts), so a reader resuming after a
 * cursor never misses an event that commits later with a smaller position.
 */
import type { LifecycleEventType } from '../events/types.ts';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.ts';
import { MAX_EVENTS_PAGE, toFeedItem, type EventContext } from './event-rows.ts';
import type { AttemptOutcome, DeliveryRecord, EventRepository } from './events.ts';

/** The methods of {@link EventRepository} that read the feed and the delivery log. */
export type EventFeed = Pick<EventRepository, 'feed' | 'head' | 'callEvents' | 'deliveries'>;

/** The read side of a repository in `ctx` (see the module comment). */
export function eventFeed({ db, numbering }: EventContext): EventFeed {
  return {
    async feed({ after, limit }) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      const afterId = after === undefined ? 0 : decodeCursor('feed', after, ['number'] as const)[0];
      let query = db.selectFrom('events').selectAll().where('id', '>', afterId);
      // SQLite: nothing after a position that may still commit (positions commit out of order).
      const positions = numbering();
      if (positions) query = query.where('id', '<=', positions.committedThrough);
      const rows = await query.orderBy('id').limit(limit).execute();
      const items = rows.map(toFeedItem);
      const last = items[items.length - 1];
      return { items, nextCursor: last ? last.cursor : encodeCursor('feed', [afterId]) };
    },

    async head() {
      const positions = numbering();
      if (positions) return encodeCursor('feed', [positions.committedThrough]);
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('last'))
        .executeTakeFirst();
      return encodeCursor('feed', [Number(row?.last ?? 0)]);
    },

    async callEvents(callIds) {
      if (callIds.length > MAX_EVENTS_PAGE)
        throw new RangeError(`at most ${MAX_EVENTS_PAGE} call ids, got ${callIds.length}`);
      if (callIds.length === 0) return [];
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('call_id', 'in', [...callIds])
        .orderBy('id')
        .execute();
      return rows.map(toFeedItem);
    },

    async deliveries({ status, limit, cursor }) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      let query = db
        .selectFrom('webhook_deliveries as d')
        .innerJoin('events as e', 'e.event_id', 'd.event_id')
        .select([
          'd.id',
          'd.event_id',
          'e.call_id',
          'e.type',
          'd.attempt',
          'd.url',
          'd.at',
          'd.outcome',
          'd.status_code',
          'd.error',
          'd.duration_ms',
        ]);
      if (status === 'delivered') query = query.where('d.outcome', '=', 'delivered');
      if (status === 'failed') query = query.where('d.outcome', 'in', ['failed', 'rejected']);
      if (cursor !== undefined) {
        const [beforeId] = decodeCursor('deliveries', cursor, ['number'] as const);
        query = query.where('d.id', '<', beforeId);
      }
      const rows = await query
        .orderBy('d.id', 'desc')
        .limit(limit + 1)
        .execute();
      const page = rows.slice(0, limit);
      const items = page.map((row) => {
        const item: DeliveryRecord = {
          eventId: row.event_id,
          callId: row.call_id,
          eventType: row.type as LifecycleEventType,
          attempt: Number(row.attempt),
          at: row.at,
          outcome: row.outcome as AttemptOutcome,
          durationMs: Number(row.duration_ms),
        };
        if (row.url !== null) item.url = row.url;
        if (row.status_code !== null) item.statusCode = Number(row.status_code);
        if (row.error !== null) item.error = row.error;
        return item;
      });
      const last = page[page.length - 1];
      return rows.length > limit && last
        ? { items, nextCursor: encodeCursor('deliveries', [Number(last.id)]) }
        : { items };
    },
  };
}

/**
 * The outbox position (global event id) a feed cursor stands for: cursors of later events give
 * greater numbers (the live stream compares them to skip what it already sent).
 *
 * @throws InvalidCursorError on a cursor the feed did not issue
 */
export function feedPosition(cursor: string): number {
  return decodeCursor('feed', cursor, ['number'] as const)[0];
}

/** The feed cursor of outbox position `position` (inverse of {@link feedPosition}). */
export function feedCursor(position: number): string {
  return encodeCursor('feed', [position]);
}
