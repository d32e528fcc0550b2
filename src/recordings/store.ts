/**
 * The recordings service's store writes: the recording columns of the call's row (name, path,
 * `recording.status`, and bytes and seconds once `stored`). Through the call journal when it takes
 * recording statuses (`recording` after the call's row, `stored` in the commit of
 * `recording.ready`), else with `store.calls.setRecording`, retried a few times. One write after
 * another per recording (`Entry.writes`). Reads are the service's own (`RecordingService.lookup`,
 * `RecordingRecovery.sweepStored`).
 */
import { computeBackoffDelay } from '../ari/backoff.ts';
import type { RecordingFields } from '../store/calls.ts';
import type { Entry, StoredRecordingStatus } from './entry.ts';
import type { RecordingRuntime } from './runtime.ts';

/** `calls.setRecording` tries of one status, the first included. */
const STORE_WRITE_TRIES = 6;

/**
 * Write `status` to the call's row, after the earlier writes. Through the journal (when it
 * takes recording statuses) the status is recorded at once, in call order, and the promise
 * resolves true once it is committed (the journal retries failed writes; after the engine
 * stopped with it unwritten, never). Otherwise `calls.setRecording` writes it: a missing row
 * (the call journal has not written the call yet) or a store error is retried a few times,
 * and the promise resolves true once written, false when it gave up. Never rejects.
 */
export function persist(
  rt: Pick<RecordingRuntime, 'deps' | 'stopped' | 'sleep'>,
  entry: Entry,
  status: StoredRecordingStatus,
): Promise<boolean> {
  const journal = rt.deps.journal;
  let write: Promise<boolean>;
  if (journal?.recordRecording) {
    journal.recordRecording(entry.callId, recordingFields(entry, status));
    write = entry.writes.then(
      () =>
        new Promise<boolean>((resolve) => journal.whenCommitted(entry.callId, () => resolve(true))),
    );
  } else {
    write = entry.writes.then(() => writeStore(rt, entry, status));
  }
  entry.writes = write.then(() => undefined);
  return write;
}

/** `calls.setRecording` of `status`, tried up to {@link STORE_WRITE_TRIES} times. */
async function writeStore(
  rt: Pick<RecordingRuntime, 'deps' | 'stopped' | 'sleep'>,
  entry: Entry,
  status: StoredRecordingStatus,
): Promise<boolean> {
  const delayMs = rt.deps.options.storeRetryDelayMs ?? 200;
  for (let attempt = 1; attempt <= STORE_WRITE_TRIES; attempt++) {
    const fields = recordingFields(entry, status);
    let problem: unknown;
    try {
      if (await rt.deps.calls.setRecording(entry.callId, fields)) return true;
      problem = 'the call is not in the store yet';
    } catch (err) {
      problem = err;
    }
    if (attempt === STORE_WRITE_TRIES || rt.stopped) {
      entry.log.error('recording state could not be written to the store', {
        status,
        err: problem,
      });
      return false;
    }
    await rt.sleep(
      computeBackoffDelay(attempt - 1, {
        initialDelayMs: delayMs,
        maxDelayMs: delayMs * 16,
        jitter: 0,
      }),
    );
  }
  return false;
}

/** The recording columns of `entry` with `status` (size and length once `stored`). */
function recordingFields(entry: Entry, status: StoredRecordingStatus): RecordingFields {
  const fields: RecordingFields = { name: entry.name, path: entry.key, status };
  if (status === 'stored') {
    fields.bytes = entry.bytes;
    fields.durationSec = entry.durationSec;
  }
  return fields;
}
