/**
 * `record {maxSec, maxSilenceSec?, beep?, finishOnKey?}`: record the caller with
 * `POST /channels/{id}/record` (name `vrec-<uuid>`, format `wav`, `maxDurationSeconds`,
 * `maxSilenceSeconds`, `beep`, `terminateOn`), until Asterisk's RecordingFinished (or
 * RecordingFailed: outcome `failed`, reason `recording_failed`). A hang-up stops it
 * (`POST /recordings/live/{name}/stop`) and the verb reports what was recorded (outcome
 * `hangup`). The result names the recording as Asterisk stored it (`record.name`, `.wav`) with
 * its duration. Once Asterisk finished it, `ctx.keepRecording` (when the engine keeps script
 * recordings) takes the file from Asterisk, stores it and signs a link: the result carries
 * `url`, `expiresAt` and `bytes`; when it could not be kept, `storeError` (a completed recording
 * then ends `failed`, reason `recording_not_stored`). See docs/verbs.md, docs/recordings.md.
 */
import { randomUUID } from 'node:crypto';
import { describeError } from '../../http/outbound.ts';
import { STOP_WAIT_MS } from './playback.ts';
import type { RecordVerb } from './schema.ts';
import type { RecordDetails, Verb, VerbContext, VerbResult } from './types.ts';

/** Extra time past `maxSec` after which the engine stops a recording Asterisk did not end, ms. */
export const RECORD_GRACE_MS = 10_000;

export class Record implements Verb {
  readonly name = 'record' as const;

  constructor(private readonly spec: RecordVerb) {}

  async exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    const { spec } = this;
    const name = `vrec-${randomUUID()}`;
    const details: RecordDetails = { name, format: 'wav', reason: 'ended' };
    if (signal.aborted) return { outcome: 'hangup', record: { ...details, reason: 'hangup' } };
    let sawFinishKey = false;
    /** Asterisk finished the recording (RecordingFinished): there is a file to keep. */
    let finished = false;
    let stopRequested = false;
    let settle: (r: VerbResult) => void = () => undefined;
    const done = new Promise<VerbResult>((resolve) => (settle = resolve));
    let stopTimer: NodeJS.Timeout | undefined;

    const stopRecording = (): void => {
      if (stopRequested) return;
      stopRequested = true;
      ctx.channel.stopRecording(name).catch(() => undefined); // already over: fine
    };
    const off = ctx.channel.onEvent((event) => {
      if (event.type === 'ChannelDtmfReceived') {
        const key = spec.finishOnKey;
        if (key === 'any' || event.digit === key) sawFinishKey = true;
        return;
      }
      if (
        (event.type === 'RecordingFinished' || event.type === 'RecordingFailed') &&
        event.recording.name === name
      ) {
        const duration = event.recording.duration;
        if (typeof duration === 'number') details.durationSec = duration;
        if (event.type === 'RecordingFailed' || event.recording.state === 'failed') {
          settle({
            outcome: signal.aborted ? 'hangup' : 'failed',
            reason: 'recording_failed',
            detail: event.recording.cause ?? 'Asterisk reported the recording failed',
            record: details,
          });
          return;
        }
        finished = true;
        details.reason = signal.aborted ? 'hangup' : endReason(spec, details, sawFinishKey);
        settle({ outcome: signal.aborted ? 'hangup' : 'completed', record: details });
      }
    });
    const onAbort = (): void => {
      stopRecording();
      clearTimeout(stopTimer);
      stopTimer = setTimeout(
        () => settle({ outcome: 'hangup', record: { ...details, reason: 'hangup' } }),
        STOP_WAIT_MS,
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // Asterisk ends the recording at maxSec; this only guards against a lost RecordingFinished.
    const guard = setTimeout(
      () => {
        stopRecording();
        stopTimer = setTimeout(
          () =>
            settle({
              outcome: 'failed',
              reason: 'recording_lost',
              detail: 'no RecordingFinished from Asterisk',
              record: details,
            }),
          STOP_WAIT_MS,
        );
      },
      spec.maxSec * 1000 + RECORD_GRACE_MS,
    );
    try {
      try {
        await ctx.channel.record({
          name,
          maxDurationSec: spec.maxSec,
          ...(spec.maxSilenceSec !== undefined ? { maxSilenceSec: spec.maxSilenceSec } : {}),
          ...(spec.beep !== undefined ? { beep: spec.beep } : {}),
          ...(spec.finishOnKey !== undefined ? { terminateOn: spec.finishOnKey } : {}),
        });
      } catch (err) {
        if (signal.aborted) return { outcome: 'hangup', record: { ...details, reason: 'hangup' } };
        return {
          outcome: 'failed',
          reason: 'record_refused',
          detail: describeError(err),
          record: details,
        };
      }
      const result = await done;
      return finished ? await keep(ctx, result, details) : result;
    } finally {
      off();
      clearTimeout(guard);
      clearTimeout(stopTimer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * Keep the finished recording (`ctx.keepRecording`): its link goes into `details`; when it
 * could not be kept, `details.storeError`, and a completed verb becomes `failed`.
 */
async function keep(
  ctx: VerbContext,
  result: VerbResult,
  details: RecordDetails,
): Promise<VerbResult> {
  if (!ctx.keepRecording) return result;
  try {
    const kept = await ctx.keepRecording(details.name, details.durationSec);
    details.url = kept.url;
    details.expiresAt = kept.expiresAt;
    details.bytes = kept.bytes;
    details.durationSec ??= kept.durationSec;
    return result;
  } catch (err) {
    details.storeError = describeError(err);
    ctx.logger.warn('call script recording not stored', { callId: ctx.callId, err });
    if (result.outcome !== 'completed') return result;
    return {
      ...result,
      outcome: 'failed',
      reason: 'recording_not_stored',
      detail: details.storeError,
    };
  }
}

/** Why a recording Asterisk finished on its own ended. */
function endReason(
  spec: RecordVerb,
  details: RecordDetails,
  sawFinishKey: boolean,
): RecordDetails['reason'] {
  if (sawFinishKey) return 'finishOnKey';
  if (details.durationSec !== undefined && details.durationSec >= spec.maxSec - 1) return 'maxSec';
  if (spec.maxSilenceSec !== undefined) return 'silence';
  return 'ended';
}
