/**
 * The call-recorder side of the recordings service, steps 1 and 2 of the flow in
 * src/recordings/service.ts, as the call service calls it (its `CallRecorder`):
 *
 * - `bridgeCreated`: when RECORD_CALLS (or the call's override) says so, the bridge is recorded
 *   (`POST /bridges/{id}/record`, format `wav`, name `rec-<callId>`). No answer to the request
 *   (connection cut, timeout) leads to a look-up in Asterisk instead of a failure
 *   (`RecordingRecovery.check`, recovery.ts);
 * - `recordingUrl`: the signed link `call.ended` carries;
 * - `callEnded`: the call's model is held for `recording.ready`, and two timers wait for
 *   RecordingFinished: `finishCheckMs`, then the recording is looked up in Asterisk
 *   ({@link BridgeRecorder.armFinishCheck}); `finishTimeoutMs`, then the file is fetched anyway
 *   (`RecordingDownloads.armFinishTimer`, download.ts).
 *
 * Nothing here throws into the call flows.
 */
import { AriConnectionError, AriNotFoundError } from '../ari/errors.ts';
import type { Call } from '../calls/model.ts';
import type { CallRecorder } from '../calls/service.ts';
import { shouldRecord } from './config.ts';
import type { RecordingDownloads } from './download.ts';
import { RECORDING_FORMAT, type Entry } from './entry.ts';
import type { RecordingRecovery } from './recovery.ts';
import type { RecordingRuntime } from './runtime.ts';
import { recordingKey } from './storage.ts';
import { persist } from './store.ts';

/** Starts the recordings of bridged calls and follows their calls to the end. */
export class BridgeRecorder implements Pick<
  CallRecorder,
  'bridgeCreated' | 'recordingUrl' | 'callEnded'
> {
  constructor(
    private readonly rt: RecordingRuntime,
    private readonly downloads: RecordingDownloads,
    private readonly recovery: RecordingRecovery,
  ) {}

  /** Start recording the call's bridge when configured (see {@link CallRecorder.bridgeCreated}). */
  async bridgeCreated(call: Call, bridgeId: string, record: boolean | undefined): Promise<void> {
    const { rt } = this;
    try {
      if (rt.stopped || rt.byCall.has(call.id)) return;
      if (!shouldRecord(rt.deps.options.mode, call.direction, record)) return;
      const name = `rec-${call.id}`;
      const entry = rt.register({
        callId: call.id,
        name,
        key: recordingKey(call.id, call.startedAt, RECORDING_FORMAT),
        call,
        status: 'starting',
        callEnded: false,
        readySent: false,
      });
      entry.bridgeId = bridgeId;
      entry.startTries = 1;
      try {
        await rt.deps.gateway.bridges.record(bridgeId, {
          name,
          format: RECORDING_FORMAT,
          ifExists: 'overwrite',
        });
      } catch (err) {
        if (err instanceof AriNotFoundError) {
          // The bridge went away (a party hung up at once): nothing was recorded.
          entry.log.info('bridge gone before its recording started; call not recorded', {
            bridgeId,
          });
          rt.forget(entry);
          return;
        }
        if (err instanceof AriConnectionError || rt.stopped) {
          // No answer: Asterisk may have started it or not. Like a recording taken up at
          // start-up, it is looked up in Asterisk (now, or at the reconnect): live or stored, it
          // is fetched in due course; missing, it is started again while the call goes on
          // (startAgain), else it failed.
          entry.status = 'recording';
          entry.startUnconfirmed = true;
          entry.checkDue = false;
          entry.log.warn('no answer to the recording start; looking it up in Asterisk', { err });
          void persist(rt, entry, 'recording');
          if (!rt.stopped && rt.deps.gateway.isConnected()) void this.recovery.check(entry);
          return;
        }
        rt.fail(entry, 'start', err);
        return;
      }
      if (entry.status === 'starting') entry.status = 'recording';
      rt.metrics.started.inc();
      entry.log.info('recording the call', { bridgeId, format: RECORDING_FORMAT });
      void persist(rt, entry, 'recording');
      if (entry.checkDue) {
        // The call ended and finishCheckMs passed while the request was unanswered: look the
        // recording up now rather than wait finishTimeoutMs. A RecordingFinished that comes
        // meanwhile (or came already) starts the download itself; check() and download() act
        // only on a recording still waiting (`recording`), so the file is fetched once.
        entry.checkDue = false;
        if (!entry.finished && !rt.stopped) {
          entry.log.info('recording start answered after the call ended; looking it up');
          void this.recovery.check(entry);
        }
      }
    } catch (err) {
      rt.deps.logger.error('recording could not be started', { callId: call.id, err });
    }
  }

  /** The signed link of a recorded call's recording, for `call.ended`; else undefined. */
  recordingUrl(callId: string): string | undefined {
    const entry = this.rt.byCall.get(callId);
    if (!entry || entry.status === 'failed' || entry.status === 'starting') return undefined;
    return this.rt.deps.links.sign(callId).url;
  }

  /** `call.ended` was emitted: `recording.ready` may follow (see {@link CallRecorder.callEnded}). */
  callEnded(call: Call): void {
    const entry = this.rt.byCall.get(call.id);
    if (!entry || entry.callEnded) return;
    entry.callEnded = true;
    if (entry.status === 'failed' || entry.readySent) return;
    entry.call = call;
    if (!entry.finished && (entry.status === 'recording' || entry.status === 'starting')) {
      this.downloads.armFinishTimer(entry);
      this.armFinishCheck(entry);
    }
    this.downloads.maybeReady(entry);
  }

  /**
   * Soon after the call's end: look the recording up in Asterisk if no RecordingFinished came by
   * then (see `finishCheckMs`), so that a lost event costs seconds, not `finishTimeoutMs`. When
   * `POST /bridges/{id}/record` is still unanswered then, the look-up is made at its answer
   * ({@link bridgeCreated}); no answer at all (connection cut, timeout) is looked up at once
   * there too.
   */
  private armFinishCheck(entry: Entry): void {
    const { rt } = this;
    if (rt.stopped) return;
    if (entry.checkTimer) clearTimeout(entry.checkTimer);
    const waitMs = rt.deps.options.finishCheckMs ?? 2_000;
    entry.checkTimer = setTimeout(() => {
      entry.checkTimer = undefined;
      if (entry.finished || rt.stopped) return;
      if (entry.status === 'starting') {
        // Asterisk has not answered the record request yet: look up once it has.
        entry.checkDue = true;
        entry.log.info('no answer to the recording start yet after the call ended', {
          waitedMs: waitMs,
        });
        return;
      }
      if (entry.status !== 'recording') return;
      entry.log.info('no RecordingFinished yet after the call ended; looking the recording up', {
        waitedMs: waitMs,
      });
      void this.recovery.check(entry);
    }, waitMs);
    entry.checkTimer.unref();
  }
}
