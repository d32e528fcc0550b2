/**
 * Answering-machine detection of notification calls (a job with `amd.enabled`; a part of the
 * notification-call flow, src/calls/flows/notification.ts). Once answered and in Stasis, the
 * channel is continued to the AMD context ({@link NotificationAmd.start}:
 * `POST /channels/{id}/continue` to `<amdContext>,s,1`), which runs `AMD()` with the job's
 * settings (the `CRM_AMD_*` variables set at originate, {@link amdVariables}) and comes back with
 * `Stasis(crm-app,amd,<AMDSTATUS>,<AMDCAUSE>)`. The StasisEnd in between is not the end of the
 * call (the runtime ends it on the channel's ChannelDestroyed only). Back in Stasis
 * ({@link NotificationAmd.backInStasis}): MACHINE hangs up (`machine`), or plays the message
 * without the confirm prompt with `onMachine: "message"` (`machine` all the same); HUMAN and
 * NOTSURE run the script (src/calls/flows/notification-script.ts). After an engine restart
 * ({@link NotificationAmd.resume}), an answered call still in the AMD context is awaited there;
 * one already back in Stasis acts on the verdict the channel holds (`AMDSTATUS`); one never sent
 * to AMD is sent now.
 */
import { AriConnectionError } from '../../ari/errors.ts';
import { AMD_STATUSES, type AmdStatus } from '../../autocalls/model.ts';
import type { AutocallAmd } from '../../autocalls/types.ts';
import type { Leg } from '../model.ts';
import type { CallContext } from '../context.ts';
import { isGone, type CallRuntime } from '../runtime.ts';
import { type Attempt, listenToChannel } from './notification-attempt.ts';
import type { NotificationScript } from './notification-script.ts';

/** Default dialplan context that runs `AMD()` (asterisk-conf/extensions.conf `[crm-amd]`). */
export const DEFAULT_AMD_CONTEXT = 'crm-amd';

/** The Stasis role of a channel back from AMD: `Stasis(crm-app,amd,<AMDSTATUS>,<AMDCAUSE>)`. */
export const AMD_STASIS_ROLE = 'amd';

/** Answering-machine detection of the notification calls (one per flow). */
export class NotificationAmd {
  /**
   * @param context the dialplan context running `AMD()` ({@link DEFAULT_AMD_CONTEXT})
   * @param attemptOf the attempt of a call the flow tracks, by call id
   * @param script runs the script once the verdict is in
   */
  constructor(
    private readonly rt: CallRuntime,
    private readonly context: string,
    private readonly attemptOf: (callId: string) => Attempt | undefined,
    private readonly script: NotificationScript,
  ) {}

  /**
   * Answering-machine detection: `POST /channels/{id}/continue` to `<amdContext>,s,1`. The
   * channel leaves Stasis (StasisEnd, which does not end the call) and comes back with
   * `amd,<AMDSTATUS>,<AMDCAUSE>` ({@link backInStasis}). When the continue fails for another
   * reason than a hang-up, the script runs without detection. Rejects with an
   * `AriConnectionError` when ARI is unreachable (the runtime repairs the call).
   */
  async start(attempt: Attempt): Promise<void> {
    const { ctx, leg } = attempt;
    const context = this.context;
    ctx.log.info('notification call answered; answering-machine detection', {
      legChannelId: leg.channelId,
      context,
    });
    leg.inDialplan = true;
    try {
      await this.rt.deps.gateway.channels.continueInDialplan(leg.channelId, {
        context,
        extension: 's',
        priority: 1,
      });
      leg.inStasis = false;
    } catch (err) {
      leg.inDialplan = false;
      if (isGone(err)) return; // hung up: its ChannelDestroyed ends the call
      if (err instanceof AriConnectionError) throw err; // the runtime repairs the call
      ctx.log.warn('could not start answering-machine detection; running the script without', {
        err,
      });
      this.script.start(attempt, false);
    }
  }

  /**
   * The customer channel came back from the AMD context: `args` = `amd,<AMDSTATUS>,<AMDCAUSE>`.
   * MACHINE: hang up, or play the message (`onMachine: "message"`); else run the script.
   */
  async backInStasis(ctx: CallContext, leg: Leg, args: string[]): Promise<void> {
    const attempt = this.attemptOf(ctx.call.id);
    if (!attempt || ctx.call.phase === 'ended') return;
    attempt.scriptStarted = true;
    // The listener of the attempt may have been dropped while the channel was out of Stasis.
    listenToChannel(this.rt.deps.gateway, attempt);
    let [role, status = '', cause = ''] = args;
    if (role !== AMD_STASIS_ROLE) {
      // Found back in Stasis by a reconciliation (the StasisStart came while the WebSocket was
      // down): no arguments, so the verdict is read from the channel.
      [status, cause] = await Promise.all([
        this.channelVariable(leg.channelId, 'AMDSTATUS'),
        this.channelVariable(leg.channelId, 'AMDCAUSE'),
      ]);
      role = AMD_STASIS_ROLE;
    }
    if (role === AMD_STASIS_ROLE && (AMD_STATUSES as readonly string[]).includes(status)) {
      attempt.amdStatus = status as AmdStatus;
      if (cause) attempt.amdCause = cause.slice(0, 200);
    }
    ctx.log.info('answering-machine detection done', {
      amdStatus: status,
      amdCause: cause,
      legChannelId: leg.channelId,
    });
    if (attempt.amdStatus === 'MACHINE') {
      attempt.machine = true;
      if (attempt.job.script.amd?.onMachine === 'message') {
        this.script.start(attempt, true);
        return;
      }
      await this.rt.endCall(ctx, {
        disposition: 'answered',
        hangupBy: 'system',
        reason: 'answering_machine',
      });
      return;
    }
    this.script.start(attempt, false);
  }

  /**
   * An adopted answered call of a job with answering-machine detection (the flow's `adopted`), as
   * ARI listed it. Out of Stasis: `AMD()` is still listening in the AMD context, and the channel's
   * return into Stasis brings the verdict ({@link backInStasis}). In Stasis: the verdict the
   * channel holds (`AMDSTATUS`, `AMDCAUSE`: it came back before the new engine saw it, or the old
   * engine was playing the script after it) decides as if it had just come back, the script
   * running from its beginning; no verdict: detection never ran, it starts now.
   */
  async resume(attempt: Attempt): Promise<void> {
    const { ctx, leg } = attempt;
    if (!leg.inStasis) {
      leg.inDialplan = true;
      ctx.log.info(
        'adopted notification call: answering-machine detection still running; awaiting its verdict',
        { legChannelId: leg.channelId },
      );
      return;
    }
    const [status, cause] = await Promise.all([
      this.channelVariable(leg.channelId, 'AMDSTATUS'),
      this.channelVariable(leg.channelId, 'AMDCAUSE'),
    ]);
    if (ctx.call.phase === 'ended' || attempt.scriptStarted) return;
    leg.inDialplan = false;
    if (status) {
      ctx.log.info('adopted notification call: verdict read from the channel', {
        amdStatus: status,
      });
      await this.backInStasis(ctx, leg, [AMD_STASIS_ROLE, status, cause]);
      return;
    }
    attempt.scriptStarted = true;
    await this.start(attempt);
  }

  /** A channel variable (`GET /channels/{id}/variable`); `''` when it cannot be read. */
  private async channelVariable(channelId: string, variable: string): Promise<string> {
    try {
      return await this.rt.deps.gateway.channels.getVariable(channelId, variable);
    } catch {
      return '';
    }
  }
}

/**
 * The channel variables that carry a job's AMD settings to `AMD()` in the AMD context
 * (`CRM_AMD_*`; an unset one leaves amd.conf's value). None without detection.
 */
export function amdVariables(amd: AutocallAmd | undefined): Record<string, string> {
  if (!amd?.enabled) return {};
  const out: Record<string, string> = {};
  const set = (name: string, value: number | undefined): void => {
    if (value !== undefined) out[name] = String(value);
  };
  set('CRM_AMD_INITIAL_SILENCE_MS', amd.initialSilenceMs);
  set('CRM_AMD_GREETING_MS', amd.greetingMs);
  set('CRM_AMD_AFTER_GREETING_SILENCE_MS', amd.afterGreetingSilenceMs);
  set('CRM_AMD_TOTAL_ANALYSIS_MS', amd.totalAnalysisTimeMs);
  set('CRM_AMD_MAX_WORDS', amd.maximumNumberOfWords);
  return out;
}
