/**
 * Rebuilding what an earlier run of the engine held in memory for a recording it had not
 * settled (nothing accepted is ever lost): the recordings service resumes such
 * recordings at start-up from the store (`store.calls.unsettledRecordings()`), and for a call
 * that had already ended it needs the call's model to send `recording.ready` on, continuing the
 * call's event sequence. Pure functions. Reference: docs/recordings.md "After a restart".
 */
import type { Call } from '../calls/model.ts';
import { adoptedCallFromRecord } from '../calls/reconcile.ts';
import type { UnsettledRecordingRecord } from '../store/calls.ts';

/**
 * The model of an ended call rebuilt from its stored record: numbers, DID, customer, variables,
 * times, operator, disposition, who hung up, end reason and legs as stored, and
 * `nextSequence` = the last stored event sequence + 1. Its snapshot (`snapshotCall`) equals the
 * stored call, so the call journal writing it again with `recording.ready` changes nothing else.
 * (Built with the restart adoption of src/calls/reconcile.ts, then ended.)
 */
export function endedCallFromRecord(record: UnsettledRecordingRecord): Call {
  const { call } = adoptedCallFromRecord(record);
  call.phase = 'ended';
  call.endedAt = record.endedAt === undefined ? undefined : Date.parse(record.endedAt);
  call.disposition = record.disposition;
  call.hangupBy = record.hangupBy;
  call.endReason = record.endReason;
  return call;
}
