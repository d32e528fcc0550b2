/**
 * Reading calls for the API and the call history: one call with its legs, and the filtered,
 * keyset-paginated list (newest first, by start time then id; pages stay stable while calls are
 * added).
 */
import type { Kysely } from 'kysely';
import type { Disposition } from '../calls/model.ts';
import { withLegs } from './call-rows.ts';
import type { CallRepository } from './calls.ts';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.ts';
import type { Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** Largest page of {@link CallRepository.listCalls}. */
export const MAX_CALLS_PAGE = 500;

/** The methods of {@link CallRepository} that the API reads calls with. */
export type CallQueries = Pick<CallRepository, 'getCall' | 'listCalls'>;

/** The API's reads of a repository over `db`. */
export function callQueries(db: Kysely<Database>): CallQueries {
  return {
    async getCall(id) {
      const row = await db.selectFrom('calls').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return undefined;
      const [record] = await withLegs(db, [row]);
      return record;
    },

    async listCalls(filter) {
      const limit = checkLimit(filter.limit, MAX_CALLS_PAGE);
      let query = db.selectFrom('calls').selectAll('calls');
      if (filter.from) query = query.where('calls.started_at', '>=', toIsoTime(filter.from));
      if (filter.to) query = query.where('calls.started_at', '<', toIsoTime(filter.to));
      if (filter.direction) query = query.where('calls.direction', '=', filter.direction);
      if (filter.disposition !== undefined) {
        const list: readonly Disposition[] =
          typeof filter.disposition === 'string' ? [filter.disposition] : filter.disposition;
        query =
          list.length === 0
            ? query.where((eb) => eb.lit(false))
            : query.where('calls.disposition', 'in', list);
      }
      if (filter.number !== undefined) {
        const numbers: readonly string[] =
          typeof filter.number === 'string' ? [filter.number] : filter.number;
        query =
          numbers.length === 0
            ? query.where((eb) => eb.lit(false))
            : query.where((eb) =>
                eb.or([
                  eb('calls.from_number', 'in', numbers),
                  eb('calls.to_number', 'in', numbers),
                ]),
              );
      }
      const extension = filter.extension;
      if (extension !== undefined) {
        query = query.where((eb) =>
          eb.or([
            eb('calls.answered_by', '=', extension),
            eb.exists(
              eb
                .selectFrom('call_legs')
                .select('call_legs.channel_id')
                .whereRef('call_legs.call_id', '=', 'calls.id')
                .where('call_legs.extension', '=', extension),
            ),
          ]),
        );
      }
      if (filter.cursor !== undefined) {
        const [startedAt, id] = decodeCursor('calls', filter.cursor, ['string', 'string'] as const);
        query = query.where((eb) =>
          eb.or([
            eb('calls.started_at', '<', startedAt),
            eb.and([eb('calls.started_at', '=', startedAt), eb('calls.id', '<', id)]),
          ]),
        );
      }
      const rows = await query
        .orderBy('calls.started_at', 'desc')
        .orderBy('calls.id', 'desc')
        .limit(limit + 1)
        .execute();
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      const items = await withLegs(db, page);
      return rows.length > limit && last
        ? { items, nextCursor: encodeCursor('calls', [last.started_at, last.id]) }
        : { items };
    },
  };
}
