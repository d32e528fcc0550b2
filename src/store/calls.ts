/**
 * Call details, written at every state change so a crash loses nothing finished (the fields a
 * CRM expects: direction, date, hold/wait, duration, status, record path).
 *
 * Times in and out are ISO 8601 UTC strings (`toIsoTime`), durations whole seconds, recording
 * sizes bytes. Every write is idempotent: writing the same snapshot twice leaves the same rows.
 */
import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type {
  CallSnapshot,
  CallSnapshotLeg,
  CallState,
  Direction,
  Disposition,
  HangupBy,
  LegOutcome,
  LegRole,
} from '../calls/model.ts';
import { affectedRows, compiledStatement } from './compiled.ts';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.ts';
import type { CallLegsTable, CallsTable, Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** Largest page of {@link CallRepository.listCalls}. */
export const MAX_CALLS_PAGE = 500;

/** A time as the store accepts it: Date, epoch milliseconds, or an ISO 8601 string. */
export type TimeInput = Date | number | string;

/**
 * One leg to write. Structurally compatible with both the model's `Leg` (epoch-ms times) and a
 * `CallSnapshot` leg (no times). Absent optional fields never erase stored values.
 */
export interface LegInput {
  channelId: string;
  /**
   * Order of the leg within its call (0, 1, …); default: its index in the written list. Give it
   * when writing only some legs of a call. Kept from the first write.
   */
  position?: number;
  role: LegRole;
  extension?: string;
  endpoint?: string;
  outcome?: LegOutcome;
  /** Q.850 cause from ChannelDestroyed. */
  cause?: number;
  causeText?: string;
  /** When the leg was created; default: the time of its first write. */
  createdAt?: TimeInput;
  answeredAt?: TimeInput;
  endedAt?: TimeInput;
}

/** Recording of a call; every field optional so partial updates are possible. */
export interface RecordingFields {
  /** Asterisk's stored recording name (`GET /recordings/stored/{name}`). */
  name?: string;
  /** Where the engine's recording storage keeps the file (storage-relative path or key). */
  path?: string;
  /** Free text kept for the API, e.g. `recording`, `stored`, `failed`. */
  status?: string;
  /** File size in bytes. */
  bytes?: number;
  /** Audio length in whole seconds. */
  durationSec?: number;
}

/** What {@link CallRepository.upsertCall} may write besides the snapshot. */
export interface CallExtra {
  /** Legs with their times (e.g. `[...call.legs.values()]`); default: the snapshot's legs. */
  legs?: readonly LegInput[];
  /** Recording fields to set; absent fields keep their stored values. */
  recording?: RecordingFields;
  /** `updated_at` of the row; default now. */
  at?: TimeInput;
}

/** A stored leg: the snapshot's leg plus its times. Times ISO 8601 UTC. */
export interface LegRecord extends CallSnapshotLeg {
  createdAt: string;
  answeredAt?: string;
  endedAt?: string;
}

/**
 * A stored call with its legs (the `GET /v1/calls/{id}` shape): the call's snapshot
 * ({@link CallSnapshot}: times ISO 8601 UTC, `waitSec`/`talkSec` whole seconds) plus what only
 * the store keeps.
 */
export interface CallRecord extends Omit<CallSnapshot, 'legs'> {
  recording?: RecordingFields;
  /** Last write, ISO 8601 UTC. */
  updatedAt: string;
  /** Legs in creation order. */
  legs: LegRecord[];
}

/**
 * A call not yet ended, as {@link CallRepository.unfinishedCalls} returns it for restart
 * reconciliation (src/calls/reconcile.ts): the record plus where its event sequence stands.
 */
export interface UnfinishedCallRecord extends CallRecord {
  /** Highest `sequence` of the call's stored events, 0 when none: the next event is this + 1. */
  lastSequence: number;
}

/**
 * A call whose recording is not settled (`recording.status` still `recording`), as
 * {@link CallRepository.unsettledRecordings} returns it for the recordings domain at start-up
 * (src/recordings/): an earlier run was recording it or downloading the file when it stopped.
 */
export interface UnsettledRecordingRecord extends CallRecord {
  /** Highest `sequence` of the call's stored events, 0 when none: the next event is this + 1. */
  lastSequence: number;
  /** A `recording.ready` event of the call is already in the outbox (never send it twice). */
  recordingReadyStored: boolean;
}

/** Filter of {@link CallRepository.listCalls}. All given conditions must hold. */
export interface CallFilter {
  /** Calls that started at or after this instant. */
  from?: Date;
  /** Calls that started strictly before this instant. */
  to?: Date;
  /**
   * Exact number on either side (caller `from` or called `to`). A list matches any of its
   * numbers (the forms one phone number may be stored in: `+74957654321`, `74957654321`,
   * `84957654321`); an empty list matches nothing.
   */
  number?: string | readonly string[];
  /** An operator extension that answered or had a leg in the call. */
  extension?: string;
  direction?: Direction;
  disposition?: Disposition | readonly Disposition[];
  /** Page size, 1 to {@link MAX_CALLS_PAGE}. */
  limit: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** A page of calls, newest first; `nextCursor` is absent on the last page. */
export interface CallPage {
  items: CallRecord[];
  nextCursor?: string;
}

/** Calls and legs. */
export interface CallRepository {
  /**
   * Write a call's current state and its legs in one transaction (its own, or the one this
   * repository is bound to). Idempotent. A call already `ended` is never moved back to a live
   * state by a late, older snapshot (it keeps its row; legs are still merged).
   */
  upsertCall(snapshot: CallSnapshot, extra?: CallExtra): Promise<void>;
  /**
   * Insert or merge legs of a call (`position` = index in `legs` for new legs). Absent optional
   * fields keep stored values.
   *
   * @throws the driver's foreign-key error when the call row does not exist
   */
  upsertLegs(callId: string, legs: readonly LegInput[]): Promise<void>;
  /** Set recording fields of a call; false when the call does not exist. */
  setRecording(callId: string, recording: RecordingFields): Promise<boolean>;
  /** One call with its legs, or undefined. */
  getCall(id: string): Promise<CallRecord | undefined>;
  /**
   * Calls matching `filter`, newest first (by start time, then id), keyset-paginated: pages are
   * stable while calls are added (no duplicates or skips).
   *
   * @throws RangeError on a bad limit; InvalidCursorError on a cursor not issued here
   */
  listCalls(filter: CallFilter): Promise<CallPage>;
  /**
   * Calls not yet `ended` (restart reconciliation), oldest first, with legs and the last event
   * sequence stored for each (from the `events` outbox).
   */
  unfinishedCalls(): Promise<UnfinishedCallRecord[]>;
  /**
   * Calls, ended or not, whose `recording.status` is `recording` (the recording was being made or
   * downloaded when an earlier run stopped), oldest first, with legs, the last event sequence
   * and whether their `recording.ready` is already stored. Found through the partial index
   * `calls_recording_pending_idx` (migration 0003); run once at start-up.
   */
  unsettledRecordings(): Promise<UnsettledRecordingRecord[]>;
  /**
   * Which of `channelIds` (ARI channel ids) are the channel of a leg of some stored call, ended
   * or not: the reconciliation tells a leftover of a known call (hung up) from a caller it never
   * heard of (routed). Found through the index `call_legs_channel_idx` (migration 0001), in
   * batches of 500 ids; an empty list asks nothing.
   */
  knownChannels(channelIds: readonly string[]): Promise<Set<string>>;
  /**
   * `seq` of the last committed call journal transaction (`journal_state`, migration 0004; 0
   * before the first): which journal log entries start-up must replay (src/store/journal-log.ts).
   */
  journalSeq(): Promise<number>;
  /** Set {@link journalSeq} (with the journal transaction of that `seq`). */
  setJournalSeq(seq: number): Promise<void>;
}

/** Channel ids per query of {@link CallRepository.knownChannels} (bound parameters stay few). */
const KNOWN_CHANNELS_BATCH = 500;

/** A `calls` row as {@link upsertCallRow} writes it: every column, `null` for none. */
type CallRow = Required<Insertable<CallsTable>>;

/** A `call_legs` row as the leg upserts write it: every column, `null` for none. */
type LegRow = Required<Insertable<CallLegsTable>>;

/**
 * The call row upsert (hot: every state change of every call). A call already `ended` keeps its
 * row against a late, older snapshot; recording fields absent from the snapshot keep their
 * stored values.
 */
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

/** The calls repository over `db` (a Kysely instance or a transaction). */
export function createCallRepository(db: Kysely<Database>): CallRepository {
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

  async function withLegs(rows: Selectable<CallsTable>[]): Promise<CallRecord[]> {
    if (rows.length === 0) return [];
    const legRows = await db
      .selectFrom('call_legs')
      .selectAll()
      .where(
        'call_id',
        'in',
        rows.map((row) => row.id),
      )
      .orderBy('call_id')
      .orderBy('created_at')
      .orderBy('position')
      .execute();
    const byCall = new Map<string, LegRecord[]>();
    for (const leg of legRows) {
      const list = byCall.get(leg.call_id) ?? [];
      list.push(toLegRecord(leg));
      byCall.set(leg.call_id, list);
    }
    return rows.map((row) => toCallRecord(row, byCall.get(row.id) ?? []));
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

    async getCall(id) {
      const row = await db.selectFrom('calls').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return undefined;
      const [record] = await withLegs([row]);
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
      const items = await withLegs(page);
      return rows.length > limit && last
        ? { items, nextCursor: encodeCursor('calls', [last.started_at, last.id]) }
        : { items };
    },

    async unfinishedCalls() {
      const rows = await db
        .selectFrom('calls')
        .selectAll()
        .where('state', '<>', 'ended')
        .orderBy('started_at')
        .orderBy('id')
        .execute();
      const records = await withLegs(rows);
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
      const records = await withLegs(rows);
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

function optionalTime(value: TimeInput | undefined): string | null {
  return value === undefined ? null : toIsoTime(value);
}

/** Copy `value` into `target[key]` unless it is SQL NULL. */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | null): void {
  if (value !== null) target[key] = value;
}

function toLegRecord(row: Selectable<CallLegsTable>): LegRecord {
  const leg: LegRecord = {
    channelId: row.channel_id,
    role: row.role as LegRole,
    createdAt: row.created_at,
  };
  put(leg, 'extension', row.extension);
  put(leg, 'endpoint', row.endpoint);
  put(leg, 'outcome', row.outcome as LegOutcome | null);
  put(leg, 'cause', row.cause === null ? null : Number(row.cause));
  put(leg, 'causeText', row.cause_text);
  put(leg, 'answeredAt', row.answered_at);
  put(leg, 'endedAt', row.ended_at);
  return leg;
}

function toCallRecord(row: Selectable<CallsTable>, legs: LegRecord[]): CallRecord {
  const call: CallRecord = {
    id: row.id,
    direction: row.direction as Direction,
    state: row.state as CallState,
    from: row.from_number,
    to: row.to_number,
    startedAt: row.started_at,
    waitSec: Number(row.wait_sec),
    talkSec: Number(row.talk_sec),
    updatedAt: row.updated_at,
    legs,
  };
  put(call, 'did', row.did);
  if (row.customer_id !== null || row.customer_name !== null || row.customer_link !== null) {
    call.customer = {};
    put(call.customer, 'id', row.customer_id);
    put(call.customer, 'name', row.customer_name);
    put(call.customer, 'link', row.customer_link);
  }
  put(call, 'answeredBy', row.answered_by);
  put(call, 'disposition', row.disposition as Disposition | null);
  put(call, 'hangupBy', row.hangup_by as HangupBy | null);
  put(call, 'endReason', row.end_reason);
  if (row.variables !== null) call.variables = JSON.parse(row.variables) as Record<string, string>;
  put(call, 'answeredAt', row.answered_at);
  put(call, 'endedAt', row.ended_at);
  const recording: RecordingFields = {};
  put(recording, 'name', row.recording_name);
  put(recording, 'path', row.recording_path);
  put(recording, 'status', row.recording_status);
  put(recording, 'bytes', row.recording_bytes === null ? null : Number(row.recording_bytes));
  put(
    recording,
    'durationSec',
    row.recording_duration_sec === null ? null : Number(row.recording_duration_sec),
  );
  if (Object.keys(recording).length > 0) call.recording = recording;
  return call;
}
