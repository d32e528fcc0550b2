/**
 * The notification-call flow (automatic calls, `POST /v1/autocalls` and campaigns): one attempt
 * of a job, placed by the scheduler (src/autocalls/scheduler.ts) through
 * {@link NotificationFlow.dial}. Top to bottom:
 *
 * 1. {@link NotificationFlow.dial}: the call is created (direction `out`, no operator) and, once
 *    the store holds it (an engine killed from then on leaves a call the next engine adopts),
 *    the customer channel is originated through the job's trunk endpoint (`POST /channels` with
 *    the job's caller ID, its variables, a client-generated id and Stasis args
 *    `notify,<jobId>,<callId>`) and a ring timeout ({@link originateCustomer}); its `Dial` events
 *    (RINGING, then ANSWER or BUSY/NOANSWER/CONGESTION/CHANUNAVAIL) come before its StasisStart,
 *    which comes only once the customer answered;
 * 2. {@link NotificationFlow.legUnanswered}: busy, rang out, unreachable: the call ends
 *    (`busy`, `no_answer`, `failed`) and the attempt resolves with the dial status and cause;
 * 3. {@link NotificationFlow.legInStasis}: answered and in Stasis: the script runs outside the
 *    per-call chain ({@link NotificationScript.start}) with the verb runner: the confirm
 *    prompt first (a one-digit `gather`, played up to `repeats` times until the confirm digit),
 *    then the message (`play` of the files, or the job's verbs);
 * 4. the message played to its end: the engine hangs up (`delivered`); the customer hanging up
 *    first: `cut_short` (or `not_confirmed` during the confirm prompt); a cancel (the `signal`)
 *    hangs up at once (`canceled`).
 *
 * Answering-machine detection (a job with `amd.enabled`): once answered and in Stasis, the
 * channel is continued to the AMD context ({@link NotificationAmd.start}:
 * `POST /channels/{id}/continue` to `<amdContext>,s,1`), which runs `AMD()` with the job's
 * settings (the `CRM_AMD_*` variables set at originate) and comes back with
 * `Stasis(crm-app,amd,<AMDSTATUS>,<AMDCAUSE>)`. The StasisEnd in between is not the end of the
 * call (the runtime ends it on the channel's ChannelDestroyed only). Back in Stasis
 * ({@link NotificationFlow.legBackInStasis}): MACHINE hangs up (`machine`), or plays the message
 * without the confirm prompt with `onMachine: "message"` (`machine` all the same); HUMAN and
 * NOTSURE run the script as above. After an engine restart ({@link NotificationFlow.adopted}), an
 * answered call of such a job still in the AMD context is awaited there (its return into Stasis
 * carries the verdict, whenever it comes); one already back in Stasis acts on the verdict the
 * channel holds (`AMDSTATUS`), the script running from its beginning; one never sent to AMD is
 * sent now.
 *
 * An attempt resolves only once its call ended and its channel is gone (the runtime let go of
 * the call), so a retry never overlaps the channel of the attempt before.
 *
 * The call is a call like the others: journaled in the store with its legs, disposition, wait
 * and talk time, and announced with `call.started` / `call.ended` webhooks (no `call.ringing`
 * nor `call.answered`: those are about operators). Reference: docs/autocalls.md.
 *
 * This file holds the flow's hooks and its attempts; its parts are `notification-attempt.ts`
 * (what an attempt gathers, and its outcome), `notification-originate.ts` (the customer channel
 * placed), `notification-amd.ts` (answering-machine detection) and `notification-script.ts` (the
 * confirm prompt and the message).
 */
import { randomUUID } from 'node:crypto';
import type { DialJob, NotificationDialer } from '../../autocalls/dialer.ts';
import type { AttemptOutcome } from '../../autocalls/model.ts';
import { type Call, type Leg } from '../model.ts';
import type { CallContext, Flow } from '../context.ts';
import type { CallRuntime } from '../runtime.ts';
import type { VerbCrm } from '../verbs/types.ts';
import { DEFAULT_AMD_CONTEXT, NotificationAmd } from './notification-amd.ts';
import {
  type Attempt,
  attemptOutcome,
  listenToChannel,
  newAttempt,
} from './notification-attempt.ts';
import { NOTIFICATION_STASIS_ROLE, originateCustomer } from './notification-originate.ts';
import { NotificationScript } from './notification-script.ts';

/** Default ring time of a notification call's customer channel, seconds. */
export const DEFAULT_NOTIFICATION_RING_TIMEOUT_SEC = 30;

/** Options of the {@link NotificationFlow}. */
export interface NotificationFlowOptions {
  /** Seconds the customer channel rings before Asterisk gives up (ARI originate `timeout`). */
  ringTimeoutSec?: number;
  /** Caller ID number when the job sets none (the company's). */
  defaultCallerId: string;
  /** The CRM client for `gather.actionUrl` and `redirect` verbs; absent: those verbs fail. */
  crm?: VerbCrm;
  /** Dialplan context running `AMD()` ({@link DEFAULT_AMD_CONTEXT}). */
  amdContext?: string;
}

/**
 * The notification-call flow. Registered with the runtime by the call service; the engine gives
 * it to the notification-call scheduler as its {@link NotificationDialer}.
 */
export class NotificationFlow implements Flow, NotificationDialer {
  readonly name = 'notification';
  readonly stasisRoles = [NOTIFICATION_STASIS_ROLE];
  // The customer leg is an engine leg the engine originated and never answers itself.
  readonly callerChannel = 'operator-leg';
  private readonly attempts = new Map<string, Attempt>();
  private readonly ringTimeoutSec: number;
  private readonly script: NotificationScript;
  private readonly amd: NotificationAmd;

  constructor(
    private readonly rt: CallRuntime,
    private readonly options: NotificationFlowOptions,
  ) {
    this.ringTimeoutSec = options.ringTimeoutSec ?? DEFAULT_NOTIFICATION_RING_TIMEOUT_SEC;
    this.script = new NotificationScript(rt, options.crm);
    this.amd = new NotificationAmd(
      rt,
      options.amdContext ?? DEFAULT_AMD_CONTEXT,
      (callId) => this.attempts.get(callId),
      this.script,
    );
  }

  /**
   * Place attempt `attemptNo` of `job` (see {@link NotificationDialer.dial}). Resolves once the
   * call ended and its channel is gone; never rejects.
   */
  dial(job: DialJob, attemptNo: number, signal: AbortSignal): Promise<AttemptOutcome> {
    const now = this.rt.now();
    const call: Call = {
      id: randomUUID(),
      direction: 'out',
      from: job.callerId ?? this.options.defaultCallerId,
      to: job.to,
      phase: 'dialing',
      legs: new Map(),
      callerChannelId: '',
      startedAt: now,
      nextSequence: 1,
      variables: {
        ...job.variables,
        autocallId: String(job.id),
        autocallAttempt: String(attemptNo),
      },
    };
    const ctx = this.rt.register(call, this.name, '');
    ctx.ringTimeoutSec = this.ringTimeoutSec;
    const leg = this.rt.addEngineLeg(ctx, 'customer', job.endpoint, undefined);
    leg.dialed = true; // an originate dials by itself
    call.callerChannelId = leg.channelId;
    ctx.anchorChannelId = leg.channelId;
    ctx.log.info('notification call', {
      autocallId: job.id,
      attempt: attemptNo,
      tries: job.tries,
      to: job.to,
      legChannelId: leg.channelId,
    });
    return new Promise<AttemptOutcome>((resolve) => {
      const attempt = newAttempt(job, ctx, leg, resolve);
      this.attempts.set(call.id, attempt);
      listenToChannel(this.rt.deps.gateway, attempt);
      this.rt.deps.notifier.started(call);
      this.cancelOnAbort(attempt, signal);
      void this.rt.run(ctx, () =>
        originateCustomer(this.rt, attempt, attemptNo, this.ringTimeoutSec),
      );
    });
  }

  /** The customer answered (`Dial ANSWER`): the script starts once the channel is in Stasis. */
  async legAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    leg.outcome = 'answered';
    ctx.call.answeredAt ??= leg.answeredAt;
    await this.maybeStartScript(ctx, leg);
  }

  /** The answered customer channel entered Stasis: run the script. */
  async legInStasis(ctx: CallContext, leg: Leg): Promise<void> {
    await this.maybeStartScript(ctx, leg);
  }

  private async maybeStartScript(ctx: CallContext, leg: Leg): Promise<void> {
    const attempt = this.attempts.get(ctx.call.id);
    if (!attempt || attempt.scriptStarted) return;
    if (!leg.answered || !leg.inStasis || leg.ended || ctx.call.phase !== 'dialing') return;
    attempt.scriptStarted = true;
    ctx.call.phase = 'bridged'; // answered: the call is in conversation with the script
    ctx.callerAnswered = true;
    if (attempt.job.script.amd?.enabled) {
      await this.amd.start(attempt);
      return;
    }
    ctx.log.info('notification call answered; running the script', {
      legChannelId: leg.channelId,
    });
    this.script.start(attempt, false);
  }

  /**
   * The customer channel came back from the AMD context: `args` = `amd,<AMDSTATUS>,<AMDCAUSE>`
   * (see {@link NotificationAmd.backInStasis}).
   */
  legBackInStasis(ctx: CallContext, leg: Leg, args: string[]): Promise<void> {
    return this.amd.backInStasis(ctx, leg, args);
  }

  /** Cancel the attempt when `signal` aborts (at once when it did already). */
  private cancelOnAbort(attempt: Attempt, signal: AbortSignal): void {
    const onAbort = (): void => {
      attempt.canceled = true;
      attempt.stop.abort();
      void this.rt.run(attempt.ctx, () => this.cancel(attempt));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  /** The job (or its campaign) was canceled, or the scheduler stops: hang up now. */
  private async cancel(attempt: Attempt): Promise<void> {
    const { ctx } = attempt;
    if (ctx.call.phase === 'ended') return;
    ctx.log.info('notification call canceled; hanging up');
    await this.rt.endCall(ctx, {
      disposition: ctx.call.answeredAt !== undefined ? 'answered' : 'canceled',
      hangupBy: 'system',
      reason: 'autocall_canceled',
    });
  }

  /** The customer channel ended unanswered (or was never created): the call ends. */
  async legUnanswered(ctx: CallContext, leg: Leg): Promise<void> {
    const outcome = leg.outcome ?? 'failed';
    await this.rt.endCall(ctx, {
      disposition:
        outcome === 'busy'
          ? 'busy'
          : outcome === 'no_answer'
            ? 'no_answer'
            : outcome === 'canceled'
              ? 'canceled'
              : 'failed',
      hangupBy: 'system',
      reason: 'customer_unreachable',
    });
  }

  /**
   * Engine restart, before ARI connects: the notification calls adopted from the store whose
   * attempt is not taken over yet, with their job and attempt number (from the call's
   * variables), for the scheduler's {@link AutocallScheduler.adoptAttempts}.
   */
  adoptedAttempts(): Array<{ callId: string; jobId: number; attemptNo: number }> {
    const found: Array<{ callId: string; jobId: number; attemptNo: number }> = [];
    for (const ctx of this.rt.active.values()) {
      if (ctx.flow !== this.name || this.attempts.has(ctx.call.id)) continue;
      const jobId = Number(ctx.call.variables?.autocallId);
      const attemptNo = Number(ctx.call.variables?.autocallAttempt);
      if (Number.isInteger(jobId) && Number.isInteger(attemptNo) && attemptNo > 0)
        found.push({ callId: ctx.call.id, jobId, attemptNo });
    }
    return found;
  }

  /**
   * Go on with attempt `attemptNo` of `job` on the adopted call `callId` (see
   * {@link NotificationDialer.resumeAttempt}): the attempt is tracked again from here (digits pressed
   * and seconds played from now on) and resolves with its outcome once the call is released,
   * like a placed one. What the call does is decided once ARI shows it ({@link adopted}).
   */
  resumeAttempt(
    callId: string,
    job: DialJob,
    attemptNo: number,
    signal: AbortSignal,
  ): Promise<AttemptOutcome> {
    const ctx = this.rt.active.get(callId);
    const leg = ctx
      ? (ctx.call.legs.get(ctx.anchorChannelId) ??
        [...ctx.call.legs.values()].find((l) => l.role === 'customer'))
      : undefined;
    if (!ctx || !leg || ctx.call.phase === 'ended')
      return Promise.resolve({
        dialStatus: 'FAILED',
        outcome: 'failed',
        digits: '',
        playedSec: 0,
        causeText: 'the adopted call was no longer there',
      });
    ctx.log.info('notification attempt taken over after an engine restart', {
      autocallId: job.id,
      attempt: attemptNo,
    });
    return new Promise<AttemptOutcome>((resolve) => {
      const attempt = newAttempt(job, ctx, leg, resolve);
      this.attempts.set(callId, attempt);
      // An answered call of a job with detection may be in the AMD context: when it comes back
      // into Stasis (as soon as the new engine's WebSocket is open, before the calls are
      // reconciled), its Stasis arguments carry the verdict ({@link legBackInStasis}).
      if (job.script.amd?.enabled && (leg.answered || ctx.call.answeredAt !== undefined))
        leg.inDialplan = true;
      listenToChannel(this.rt.deps.gateway, attempt);
      this.cancelOnAbort(attempt, signal);
    });
  }

  /**
   * A notification call adopted after an engine restart, once ARI shows it still up. When the
   * new engine took over its attempt ({@link resumeAttempt}): a customer channel still ringing goes on
   * as a placed one (the script runs once answered); an answered one runs the script again from
   * its beginning on the same call (after whatever Asterisk was still playing: the confirm
   * prompt again, then the message), and the attempt ends with that run's outcome; with
   * answering-machine detection, see {@link NotificationAmd.resume}. Otherwise
   * (the job was canceled or moved on meanwhile) the engine hangs the channel up and ends the
   * call (`engine_restart`).
   */
  async adopted(ctx: CallContext): Promise<void> {
    if (ctx.call.phase === 'ended') return;
    const attempt = this.attempts.get(ctx.call.id);
    if (attempt) {
      if (attempt.scriptStarted || attempt.settled) return;
      if (ctx.call.answeredAt === undefined && !attempt.leg.answered) return; // still ringing
      ctx.call.phase = 'bridged';
      ctx.callerAnswered = true;
      if (attempt.job.script.amd?.enabled) {
        await this.amd.resume(attempt);
        return;
      }
      attempt.scriptStarted = true;
      ctx.log.info('adopted notification call: running its script again from the beginning');
      this.script.start(attempt, false);
      return;
    }
    ctx.log.info('adopted notification call: its attempt was not taken over; hanging up');
    await this.rt.endCall(ctx, {
      disposition: ctx.call.answeredAt !== undefined ? 'answered' : 'canceled',
      hangupBy: 'system',
      reason: 'engine_restart',
    });
  }

  /**
   * The runtime let go of the call (it ended and its channels are gone, and the store has it):
   * the attempt resolves. Called by the call service for every released call.
   */
  released(callId: string): void {
    const attempt = this.attempts.get(callId);
    if (!attempt || attempt.settled) return;
    attempt.settled = true;
    this.attempts.delete(callId);
    attempt.offChannel?.();
    attempt.stop.abort();
    const outcome = attemptOutcome(attempt);
    attempt.ctx.log.info('notification attempt over', {
      autocallId: attempt.job.id,
      outcome: outcome.outcome,
      dialStatus: outcome.dialStatus,
      cause: outcome.cause,
      digits: outcome.digits,
      playedSec: outcome.playedSec,
    });
    attempt.resolve(outcome);
  }
}
