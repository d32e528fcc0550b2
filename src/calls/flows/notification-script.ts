/**
 * The script of a notification call on the answered customer channel (a part of the
 * notification-call flow, src/calls/flows/notification.ts), run with the verb runner
 * (src/calls/verbs/runner.ts): the confirm prompt first (a one-digit `gather`, played up to
 * `repeats` times until the confirm digit), then the message (`play` of the job's files, or the
 * job's verbs); then the engine hangs up (`delivered`, `not_confirmed`, `media_failed`,
 * `invalid_script`). A hang-up by the customer ends the call through the runtime (its
 * ChannelDestroyed); a cancel stops the run (the attempt's `stop`).
 */
import type { AutocallScript } from '../../autocalls/types.ts';
import type { CallContext } from '../context.ts';
import type { CallRuntime } from '../runtime.ts';
import { gatewayVerbChannel } from '../verbs/channel.ts';
import { runScript, type ScriptRun } from '../verbs/runner.ts';
import { type ScriptVerb, verbListSchema } from '../verbs/schema.ts';
import type { VerbContext, VerbCrm } from '../verbs/types.ts';
import type { Attempt } from './notification-attempt.ts';

/** Runs the script of notification calls (one per flow). */
export class NotificationScript {
  /**
   * @param crm the CRM client for `gather.actionUrl` and `redirect` verbs; absent: those verbs
   *   fail.
   */
  constructor(
    private readonly rt: CallRuntime,
    private readonly crm: VerbCrm | undefined,
  ) {}

  /**
   * Run the script outside the per-call chain (it takes the whole call); without the confirm
   * prompt when `skipConfirm` (a machine left the message). A script that throws ends the call
   * (`handler_error`).
   */
  start(attempt: Attempt, skipConfirm: boolean): void {
    const { ctx } = attempt;
    void this.run(attempt, skipConfirm).catch((err: unknown) => {
      ctx.log.error('notification script failed', { err });
      void this.rt.run(ctx, () =>
        this.rt.endCall(ctx, {
          disposition: 'answered',
          hangupBy: 'system',
          reason: 'handler_error',
        }),
      );
    });
  }

  /**
   * The script on the answered channel: the confirm prompt (when the job has one), then the
   * message; then the engine hangs up. A hang-up by the customer ends the call through the
   * runtime (its ChannelDestroyed).
   */
  private async run(attempt: Attempt, skipConfirm: boolean): Promise<void> {
    const { ctx, leg, job } = attempt;
    const verbCtx: VerbContext = {
      callId: ctx.call.id,
      channel: gatewayVerbChannel(this.rt.deps.gateway, leg.channelId),
      logger: ctx.log,
      call: { from: ctx.call.from, to: ctx.call.to, autocallId: String(job.id) },
      ...(this.crm ? { crm: this.crm } : {}),
    };
    const signal = attempt.stop.signal;
    const confirm = skipConfirm ? undefined : job.script.confirm;
    if (confirm) {
      for (let i = 0; i < confirm.repeats && !attempt.confirmed; i++) {
        const run = await runScript(
          verbCtx,
          [
            {
              verb: 'gather',
              numDigits: 1,
              timeoutSec: confirm.timeoutSec,
              prompts: [{ media: confirm.prompt.map(mediaItem) }],
            },
          ],
          { signal },
        );
        if (run.results[0]?.gather?.digits === confirm.digit) attempt.confirmed = true;
        if (run.ended !== 'completed') return; // hung up or canceled
      }
      if (!attempt.confirmed) {
        ctx.log.info('confirm digit not pressed; hanging up', { digits: attempt.digits });
        await this.hangUp(ctx, 'not_confirmed');
        return;
      }
    }
    const verbs = messageVerbs(job.script);
    if (!verbs) {
      ctx.log.warn('notification job has no valid message; hanging up');
      attempt.mediaFailed = true;
      await this.hangUp(ctx, 'invalid_script');
      return;
    }
    const run: ScriptRun = await runScript(verbCtx, verbs, {
      signal,
      onVerb: (report) => {
        if (report.play) attempt.playedMs += report.play.playedMs;
        if (report.play?.failedMedia.length) {
          attempt.mediaFailed = true;
          ctx.log.warn('notification message media could not be played', {
            failedMedia: report.play.failedMedia.map((m) => ({ index: m.index, detail: m.detail })),
          });
        }
      },
    });
    if (run.ended === 'completed' || run.ended === 'ended_by_verb') {
      attempt.delivered = !attempt.mediaFailed;
      await this.hangUp(ctx, attempt.delivered ? 'delivered' : 'media_failed');
    }
  }

  /** The engine ends the answered call (the script is over). */
  private hangUp(ctx: CallContext, reason: string): Promise<void> {
    return this.rt.run(ctx, () =>
      this.rt.endCall(ctx, { disposition: 'answered', hangupBy: 'system', reason }),
    );
  }
}

/**
 * A job's sound as a media item of the `play` verb: `sound:NAME` and `http(s)://` URLs as is,
 * `sound:http(s)://…` as its URL, a bare name as `sound:NAME`.
 */
export function mediaItem(sound: string): string {
  if (/^sound:https?:\/\//i.test(sound)) return sound.slice('sound:'.length);
  if (/^https?:\/\//i.test(sound) || sound.startsWith('sound:')) return sound;
  return `sound:${sound}`;
}

/** The message of a job: a `play` of its files, or its verbs (validated); undefined when none. */
export function messageVerbs(script: AutocallScript): ScriptVerb[] | undefined {
  if (script.files && script.files.length > 0)
    return [{ verb: 'play', media: script.files.map(mediaItem) }];
  if (script.verbs) {
    const parsed = verbListSchema.safeParse(script.verbs);
    return parsed.success ? parsed.data : undefined;
  }
  return undefined;
}
