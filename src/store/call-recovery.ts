/**
 * Reading calls at start-up: the calls not yet ended (restart reconciliation,
 * src/calls/reconcile.ts) and the calls whose recording is not settled (src/recordings/), each
 * with where its event sequence stands in the outbox, and which ARI channels belong to a stored
 * call.
 */
import type { Kysely } from 'kysely';
import { withLegs } from './call-rows.ts';
import type { CallRepository } from './calls.ts';
import type { Database } from './schema.ts';

/** Channel ids per query of {@link CallRepository.knownChannels} (bound parameters stay few). */
const KNOWN_CHANNELS_BATCH = 500;

/** The methods of {@link CallRepository} that start-up recovery reads with. */
export type CallRecovery = Pick<
  CallRepository,
  'unfinishedCalls' | 'knownChannels' | 'unsettledRecordings'
>;

/** The start-up reads of a repository over `db`. */
export function callRecovery(db: Kysely<Database>): CallRecovery {
  return {
    async unfinishedCalls() {
      const rows = await db
        .selectFrom('calls')
        .selectAll()
        .where('state', '<>', 'ended')
        .orderBy('started_at')
        .orderBy('id')
        .execute();
      const records = await withLegs(db, rows);
      if (records.length === 0) return [];
      const sequences = await db
        .selectFrom('events')
        .select(['call_id', (eb) => eb.fn.max('sequence').as('last')])
        .where(
          'call_id',
          'in',
          records.map((record) => record.id),
        )
        .groupBy('call_id')
        .execute();
      const last = new Map(sequences.map((row) => [row.call_id, Number(row.last)]));
      return records.map((record) => ({ ...record, lastSequence: last.get(record.id) ?? 0 }));
    },

    async knownChannels(channelIds) {
      const known = new Set<string>();
      const ids = [...new Set(channelIds)];
      for (let i = 0; i < ids.length; i += KNOWN_CHANNELS_BATCH) {
        const rows = await db
          .selectFrom('call_legs')
          .select('channel_id')
          .distinct()
          .where('channel_id', 'in', ids.slice(i, i + KNOWN_CHANNELS_BATCH))
          .execute();
        for (const row of rows) known.add(row.channel_id);
      }
      return known;
    },

    async unsettledRecordings() {
      const rows = await db
        .selectFrom('calls')
        .selectAll()
        .where('recording_status', '=', 'recording')
        .orderBy('started_at')
        .orderBy('id')
        .execute();
      const records = await withLegs(db, rows);
      if (records.length === 0) return [];
      const ids = records.map((record) => record.id);
      const [sequences, ready] = await Promise.all([
        db
          .selectFrom('events')
          .select(['call_id', (eb) => eb.fn.max('sequence').as('last')])
          .where('call_id', 'in', ids)
          .groupBy('call_id')
          .execute(),
        db
          .selectFrom('events')
          .select('call_id')
          .distinct()
          .where('call_id', 'in', ids)
          .where('type', '=', 'recording.ready')
          .execute(),
      ]);
      const last = new Map(sequences.map((row) => [row.call_id, Number(row.last)]));
      const readyStored = new Set(ready.map((row) => row.call_id));
      return records.map((record) => ({
        ...record,
        lastSequence: last.get(record.id) ?? 0,
        recordingReadyStored: readyStored.has(record.id),
      }));
    },
  };
}
