/**
 * Call details, written at every state change so a crash loses nothing finished (the fields a
 * CRM expects: direction, date, hold/wait, duration, status, record path).
 *
 * Times in and out are ISO 8601 UTC strings (`toIsoTime`), durations whole seconds, recording
 * sizes bytes. Every write is idempotent: writing the same snapshot twice leaves the same rows.
 *
 * This file: the types, the repository's contract and {@link createCallRepository}, which
 * composes its parts: call-writes.ts (calls, legs, recordings, the journal's seq),
 * call-queries.ts (one call, the paginated list), call-recovery.ts (start-up reads), call-rows.ts
 * (row mapping).
 */
import type { Kysely } from 'kysely';
import type {
  CallSnapshot,
  CallSnapshotLeg,
  Direction,
  Disposition,
  LegOutcome,
  LegRole,
} from '../calls/model.ts';
import { callQueries, MAX_CALLS_PAGE } from './call-queries.ts';
import { callRecovery } from './call-recovery.ts';
import { callWrites } from './call-writes.ts';
import type { Database } from './schema.ts';

export { MAX_CALLS_PAGE };

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

/** The calls repository over `db` (a Kysely instance or a transaction). */
export function createCallRepository(db: Kysely<Database>): CallRepository {
  return { ...callWrites(db), ...callQueries(db), ...callRecovery(db) };
}
