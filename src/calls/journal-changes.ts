/**
 * What the call journal (./journal.ts) writes: a call's changes waiting to be written
 * ({@link Pending}), a transaction ({@link Write}), and a call's snapshot compared with what was
 * last written of it ({@link diffCall}), so only the call row and legs that changed are written.
 */
import type { LifecycleEvent } from '../events/types.ts';
import type { LegInput, RecordingFields } from '../store/calls.ts';
import type { JournalLogEntry } from '../store/journal-log.ts';
import { type Call, type CallSnapshot, type Leg, snapshotCall } from './model.ts';

/** A call's changes recorded and not committed yet, with the callbacks waiting for them. */
export interface Pending {
  /** The call's id. */
  id: string;
  /** The live call, when a change of it was recorded (not for a recording status alone). */
  call?: Call;
  events: LifecycleEvent[];
  /** Recording columns to set ({@link CallJournal.recordRecording}), the latest values. */
  recording?: RecordingFields;
  /** {@link CallJournal.whenWritten} callbacks: run once this write commits or is logged. */
  written?: Array<() => void>;
  /**
   * These changes are in the journal log: until they commit (also through the retry of a failed
   * transaction) the log must not be emptied. A retry someone waits for is logged again; a replay
   * writes it once (calls are upserted, events inserted by event id at their logged positions).
   */
  logged?: boolean;
}

/** One transaction: sent, or failed and waiting to be retried. */
export interface Write {
  /** The calls it holds, by id (with their events and waiting callbacks). */
  pending: Map<string, Pending>;
  /** Each call's state once it commits. */
  sent: Map<string, WrittenCall>;
  /** Why it failed (once it did). */
  error?: unknown;
  /** Resolves true once it committed, false once it failed. */
  done: Promise<boolean>;
  /** With a journal log: what the transaction writes, with its `seq` (absent when empty). */
  entry?: JournalLogEntry;
  /**
   * It survives a crash: appended to the journal log, with every write before it. Its callbacks
   * have run and its events were handed to the dispatcher.
   */
  durable: boolean;
}

/**
 * The committed state of a call: its row (the snapshot without legs) and its legs, per channel
 * id. Own objects, never changed once made; the values they share with the live call (variables,
 * customer) are replaced by the call service, never changed in place.
 */
export interface WrittenCall {
  call: Omit<CallSnapshot, 'legs'>;
  legs: Map<string, LegInput>;
}

/** What one write of a call holds. */
export interface ChangeSet {
  snapshot: CallSnapshot;
  callChanged: boolean;
  /** Only the legs that changed. */
  legs: LegInput[];
  /** The call's state once this write commits. */
  written: WrittenCall;
}

/**
 * The call's snapshot at `at`, whether it differs from `previous` (what the store holds of it once
 * the transactions in flight commit; the growing wait/talk seconds of a live call do not count),
 * and the legs that changed, with their positions.
 */
export function diffCall(call: Call, at: number, previous: WrittenCall | undefined): ChangeSet {
  const snapshot = snapshotCall(call, at);
  // The call's row: the snapshot without its legs (they have rows of their own, compared one by
  // one below), and without the growing wait/talk seconds of a live call.
  const { legs: _legs, ...row } = snapshot;
  if (snapshot.state !== 'ended') {
    row.waitSec = 0;
    row.talkSec = 0;
  }
  const written: WrittenCall = { call: row, legs: new Map() };
  const legs: LegInput[] = [];
  let position = 0;
  for (const leg of call.legs.values()) {
    const input = legInput(leg, position++);
    written.legs.set(leg.channelId, input);
    const before = previous?.legs.get(leg.channelId);
    if (!before || !sameJson(before, input)) legs.push(input);
  }
  const callChanged = !previous || !sameJson(previous.call, row);
  return { snapshot, callChanged, legs, written };
}

/**
 * Add the changes of `later` to `earlier` (of the same call, recorded before): the latest call
 * and recording columns, the events and callbacks after the earlier ones.
 */
export function mergePending(earlier: Pending, later: Pending): void {
  if (later.call) earlier.call = later.call;
  if (later.logged) earlier.logged = true;
  if (later.recording) earlier.recording = mergeRecording(earlier.recording, later.recording);
  earlier.events.push(...later.events);
  if (later.written) (earlier.written ??= []).push(...later.written);
}

/**
 * Whether someone waits for these changes to be stored: a {@link CallJournal.whenWritten}
 * callback (a `202`) or a `call.ringing` (the screen pop).
 */
export function isAwaited(pending: Pending): boolean {
  if (pending.written !== undefined) return true;
  for (const event of pending.events) if (event.type === 'call.ringing') return true;
  return false;
}

/** Whether someone waits for any of `pendings` ({@link isAwaited}). */
export function someAwaited(pendings: Iterable<Pending>): boolean {
  for (const pending of pendings) if (isAwaited(pending)) return true;
  return false;
}

/** Whether any of `pendings` is in the journal log. */
export function holdsLogged(pendings: Iterable<Pending>): boolean {
  for (const pending of pendings) if (pending.logged === true) return true;
  return false;
}

/** `earlier` updated with the fields `later` sets (an `undefined` field keeps the earlier value). */
export function mergeRecording(
  earlier: RecordingFields | undefined,
  later: RecordingFields,
): RecordingFields {
  const merged: RecordingFields = { ...earlier };
  for (const [key, value] of Object.entries(later) as Array<[keyof RecordingFields, unknown]>)
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  return merged;
}

/**
 * Whether two values made of JSON data (plain objects, arrays, strings, numbers, booleans, null,
 * Dates) serialise to the same JSON: members that are `undefined` count as absent. Compares
 * without serialising (the journal compares every call it writes with what it last wrote). Where
 * it errs, it says "different" (a Date and its ISO text, NaN and NaN): one write more, never one
 * less.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const key in x) if (!sameJson(x[key], y[key])) return false;
  for (const key in y) if (!(key in x) && y[key] !== undefined) return false;
  return true;
}

/** A copy of a leg's stored fields (the live leg keeps changing while the write is pending). */
function legInput(leg: Leg, position: number): LegInput {
  // Built field by field: a leg is snapshotted at every write of its call.
  const input: LegInput = { channelId: leg.channelId, position, role: leg.role };
  if (leg.extension !== undefined) input.extension = leg.extension;
  if (leg.endpoint !== undefined) input.endpoint = leg.endpoint;
  if (leg.outcome !== undefined) input.outcome = leg.outcome;
  if (leg.cause !== undefined) input.cause = leg.cause;
  if (leg.causeText !== undefined) input.causeText = leg.causeText;
  input.createdAt = leg.createdAt;
  if (leg.answeredAt !== undefined) input.answeredAt = leg.answeredAt;
  if (leg.endedAt !== undefined) input.endedAt = leg.endedAt;
  return input;
}
