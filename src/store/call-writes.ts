/**
 * Writing calls: the call row and its legs at every state change (one transaction, idempotent;
 * an ended call never moved back by a late, older snapshot), recording fields, and the call
 * journal's last committed `seq` (src/store/journal-log.ts). The hot statements are compiled once
 * per dialect instance (./compiled.ts).
 */
import { sql, type Insertable, type Kysely } from 'kysely';
import { optionalTime } from './call-rows.ts';
import type { CallRepository, LegInput } from './calls.ts';
import { affectedRows, compiledStatement } from './compiled.ts';
import type { CallLegsTable, CallsTable, Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** A `calls` row as {@link upsertCallRow} writes it: every column, `null` for none. */
type CallRow = Required<Insertable<CallsTable>>;

/** A `call_legs` row as the leg upserts write it: every column, `null` for none. */
type LegRow = Required<Insertable<CallLegsTable>>;

/**
 * `setRecording` as one statement of fixed shape (written with every recording's statuses): a
 * field given as `null` keeps its value.
 */
const setRecordingRow = compiledStatement(
  'calls.setRecording',
  (
    db,
    p: {
      id: string;
      name: string | null;
      path: string | null;
      status: string | null;
      bytes: number | null;
      durationSec: number | null;
      at: string;
    },
  ) =>
    db
      .updateTable('calls')
      .set((eb) => ({
        recording_name: eb.fn.coalesce(eb.val(p.name), eb.ref('recording_name')),
        recording_path: eb.fn.coalesce(eb.val(p.path), eb.ref('recording_path')),
        recording_status: eb.fn.coalesce(eb.val(p.status), eb.ref('recording_status')),
        // Read as number or text (PostgreSQL bigint), written as a number.
        recording_bytes: sql<number | null>`coalesce(${p.bytes}, ${sql.ref('recording_bytes')})`,
        recording_duration_sec: eb.fn.coalesce(
          eb.val(p.durationSec),
          eb.ref('recording_duration_sec'),
        ),
        updated_at: p.at,
      }))
      .where('id', '=', p.id),
);

/** `journal_state.seq` set with every journal transaction while the journal log is on. */
const setJournalSeqRow = compiledStatement('journal_state.set', (db, p: { seq: number }) =>
  db.updateTable('journal_state').set({ seq: p.seq }).where('id', '=', 1),
);

/**
 * The call row upsert (hot: every state change of every call). A call already `ended` keeps its
 * row against a late, older snapshot; recording fields absent from the snapshot keep their
 * stored values.
 */
const upsertCallRow = compiledStatement('calls.upsert', (db, row: CallRow) =>
  db
    .insertInto('calls')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('id')
        .doUpdateSet((eb) => ({
          direction: eb.ref('excluded.direction'),
          from_number: eb.ref('excluded.from_number'),
          to_number: eb.ref('excluded.to_number'),
          did: eb.ref('excluded.did'),
          customer_id: eb.ref('excluded.customer_id'),
          customer_name: eb.ref('excluded.customer_name'),
          customer_link: eb.ref('excluded.customer_link'),
          state: eb.ref('excluded.state'),
          disposition: eb.ref('excluded.disposition'),
          answered_by: eb.ref('excluded.answered_by'),
          hangup_by: eb.ref('excluded.hangup_by'),
          end_reason: eb.ref('excluded.end_reason'),
          started_at: eb.ref('excluded.started_at'),
          answered_at: eb.ref('excluded.answered_at'),
          ended_at: eb.ref('excluded.ended_at'),
          wait_sec: eb.ref('excluded.wait_sec'),
          talk_sec: eb.ref('excluded.talk_sec'),
          variables: eb.ref('excluded.variables'),
          recording_name: eb.fn.coalesce('excluded.recording_name', 'calls.recording_name'),
          recording_path: eb.fn.coalesce('excluded.recording_path', 'calls.recording_path'),
          recording_status: eb.fn.coalesce('excluded.recording_status', 'calls.recording_status'),
          recording_bytes: eb.fn.coalesce('excluded.recording_bytes', 'calls.recording_bytes'),
          recording_duration_sec: eb.fn.coalesce(
            'excluded.recording_duration_sec',
            'calls.recording_duration_sec',
          ),
          updated_at: eb.ref('excluded.updated_at'),
        }))
        .where((eb) =>
          eb.or([eb('calls.state', '<>', 'ended'), eb('excluded.state', '=', 'ended')]),
        ),
    ),
);

/**
 * The leg upsert (hot: every leg of every call write). Absent optional fields keep stored values;
 * `keepCreated` keeps a stored `created_at` (the row's value is only the first-write default),
 * otherwise the given creation time wins.
 */
function legUpsert(name: string, keepCreated: boolean) {
  return compiledStatement(name, (db, row: LegRow) =>
    db
      .insertInto('call_legs')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['call_id', 'channel_id']).doUpdateSet((eb) => ({
          role: eb.ref('excluded.role'),
          extension: eb.fn.coalesce('excluded.extension', 'call_legs.extension'),
          endpoint: eb.fn.coalesce('excluded.endpoint', 'call_legs.endpoint'),
          outcome: eb.fn.coalesce('excluded.outcome', 'call_legs.outcome'),
          cause: eb.fn.coalesce('excluded.cause', 'call_legs.cause'),
          cause_text: eb.fn.coalesce('excluded.cause_text', 'call_legs.cause_text'),
          created_at: keepCreated ? eb.ref('call_legs.created_at') : eb.ref('excluded.created_at'),
          answered_at: eb.fn.coalesce('excluded.answered_at', 'call_legs.answered_at'),
          ended_at: eb.fn.coalesce('excluded.ended_at', 'call_legs.ended_at'),
        })),
      ),
  );
}

const upsertLegKeepCreated = legUpsert('call_legs.upsert.keep-created', true);
const upsertLegGivenCreated = legUpsert('call_legs.upsert.given-created', false);

/** The methods of {@link CallRepository} that write. */
export type CallWrites = Pick<
  CallRepository,
  'upsertCall' | 'upsertLegs' | 'setRecording' | 'journalSeq' | 'setJournalSeq'
>;

/** The writes of a repository over `db` (a Kysely instance or a transaction). */
export function callWrites(db: Kysely<Database>): CallWrites {
  async function inTransaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return db.isTransaction ? fn(db) : db.transaction().execute(fn);
  }

  async function writeLegs(
    trx: Kysely<Database>,
    callId: string,
    legs: readonly LegInput[],
    now: string,
  ): Promise<void> {
    for (const [index, leg] of legs.entries()) {
      const row: LegRow = {
        call_id: callId,
        channel_id: leg.channelId,
        position: leg.position ?? index,
        role: leg.role,
        extension: leg.extension ?? null,
        endpoint: leg.endpoint ?? null,
        outcome: leg.outcome ?? null,
        cause: leg.cause ?? null,
        cause_text: leg.causeText ?? null,
        created_at: leg.createdAt === undefined ? now : toIsoTime(leg.createdAt),
        answered_at: optionalTime(leg.answeredAt),
        ended_at: optionalTime(leg.endedAt),
      };
      // A given creation time wins over the first-write default.
      await (leg.createdAt === undefined ? upsertLegKeepCreated : upsertLegGivenCreated).run(
        trx,
        row,
      );
    }
  }

  return {
    async upsertCall(snapshot, extra = {}) {
      const now = toIsoTime(extra.at ?? Date.now());
      const rec = extra.recording ?? {};
      const row: CallRow = {
        id: snapshot.id,
        direction: snapshot.direction,
        from_number: snapshot.from,
        to_number: snapshot.to,
        did: snapshot.did ?? null,
        customer_id: snapshot.customer?.id ?? null,
        customer_name: snapshot.customer?.name ?? null,
        customer_link: snapshot.customer?.link ?? null,
        state: snapshot.state,
        disposition: snapshot.disposition ?? null,
        answered_by: snapshot.answeredBy ?? null,
        hangup_by: snapshot.hangupBy ?? null,
        end_reason: snapshot.endReason ?? null,
        started_at: toIsoTime(snapshot.startedAt),
        answered_at: optionalTime(snapshot.answeredAt),
        ended_at: optionalTime(snapshot.endedAt),
        wait_sec: snapshot.waitSec,
        talk_sec: snapshot.talkSec,
        variables: snapshot.variables === undefined ? null : JSON.stringify(snapshot.variables),
        recording_name: rec.name ?? null,
        recording_path: rec.path ?? null,
        recording_status: rec.status ?? null,
        recording_bytes: rec.bytes ?? null,
        recording_duration_sec: rec.durationSec ?? null,
        updated_at: now,
      };
      await inTransaction(async (trx) => {
        await upsertCallRow.run(trx, row);
        await writeLegs(trx, snapshot.id, extra.legs ?? snapshot.legs, now);
      });
    },

    async upsertLegs(callId, legs) {
      const now = toIsoTime(Date.now());
      await inTransaction((trx) => writeLegs(trx, callId, legs, now));
    },

    async setRecording(callId, recording) {
      const result = await setRecordingRow.run(db, {
        id: callId,
        name: recording.name ?? null,
        path: recording.path ?? null,
        status: recording.status ?? null,
        bytes: recording.bytes ?? null,
        durationSec: recording.durationSec ?? null,
        at: toIsoTime(Date.now()),
      });
      return affectedRows(result) > 0;
    },

    async journalSeq() {
      const row = await db
        .selectFrom('journal_state')
        .select('seq')
        .where('id', '=', 1)
        .executeTakeFirst();
      return row === undefined ? 0 : Number(row.seq);
    },

    async setJournalSeq(seq) {
      await setJournalSeqRow.run(db, { seq });
    },
  };
}
