/**
 * The calls store's rows: `calls` and `call_legs` rows mapped to {@link CallRecord} and
 * {@link LegRecord} (SQL NULL leaves a field out), and the legs read for a page of calls. Times
 * ISO 8601 UTC; durations whole seconds; recording sizes bytes.
 */
import type { Kysely, Selectable } from 'kysely';
import type {
  CallState,
  Direction,
  Disposition,
  HangupBy,
  LegOutcome,
  LegRole,
} from '../calls/model.ts';
import type { CallRecord, LegRecord, RecordingFields, TimeInput } from './calls.ts';
import type { CallLegsTable, CallsTable, Database } from './schema.ts';
import { toIsoTime } from './schema.ts';

/** The calls of `rows`, in their order, each with its legs (read from `db`) in creation order. */
export async function withLegs(
  db: Kysely<Database>,
  rows: Selectable<CallsTable>[],
): Promise<CallRecord[]> {
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

/** A time to store, or `null` (SQL NULL) when absent. */
export function optionalTime(value: TimeInput | undefined): string | null {
  return value === undefined ? null : toIsoTime(value);
}

/** Copy `value` into `target[key]` unless it is SQL NULL. */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | null): void {
  if (value !== null) target[key] = value;
}

/** A `call_legs` row as a stored leg. */
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

/** A `calls` row and its legs as a stored call. */
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
