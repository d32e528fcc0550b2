/**
 * The notification-call flow (automatic calls, `POST /v1/autocalls` and campaigns): one attempt
 * of a job, placed by the scheduler (src/autocalls/scheduler.ts) through
 * {@link NotificationFlow.dial}. Top to bottom:
 *
 * 1. {@link NotificationFlow.dial}: the call is created (direction `out`, no operator) and, once
 *    the store holds it (an engine killed from then on leaves a call the next engine adopts),
 *    the customer channel is originated through the job's trunk endpoint (`POST /channels` with
 *    the job's caller ID, its variables, a client-generated id and Stasis args
 *    `notify,<jobId>,<callId>`) and a ring timeout; its `Dial` events (RINGING, then ANSWER or
 *    BUSY/NOANSWER/CONGESTION/CHANUNAVAIL) come before its StasisStart, which comes only once the
 *    customer answered;
 * 2. {@link NotificationFlow.legUnanswered}: busy, rang out, unreachable: the call ends
 *    (`busy`, `no_answer`, `failed`) and the attempt resolves with the dial status and cause;
 * 3. {@link NotificationFlow.legInStasis}: answered and in Stasis: the script runs outside the
 *    per-call chain ({@link NotificationFlow.runMessage}) with the verb runner: the confirm
 *    prompt first (a one-digit `gather`, played up to `repeats` times until the confirm digit),
 *    then the message (`play` of the files, or the job's verbs);
 * 4. the message played to its end: the engine hangs up (`delivered`); the customer hanging up
 *    first: `cut_short` (or `not_confirmed` during the confirm prompt); a cancel (the `signal`)
 *    hangs up at once (`canceled`).
 *
 * Answering-machine detection (a job with `amd.enabled`): once answered and in Stasis, the
 * channel is continued to the AMD context ({@link startAmd}: `POST /channels/{id}/continue`
 * to `<amdContext>,s,1`), which runs `AMD()` with the job's settings (the `CRM_AMD_*` variables
 * set at originate) and comes back with `Stasis(crm-app,amd,<AMDSTATUS>,<AMDCAUSE>)`. The
 * StasisEnd in between is not the end of the call (the runtime ends it on the channel's
 * ChannelDestroyed only). Back in Stasis ({@link NotificationFlow.legBackInStasis}): MACHINE
 * hangs up (`machine`), or plays the message without the confirm prompt with
 * `onMachine: "message"` (`machine` all the same); HUMAN and NOTSURE run the script as above.
 * After an engine restart ({@link NotificationFlow.adopted}), an answered call of such a job still
 * in the AMD context is awaited there (its return into Stasis carries the verdict, whenever it
 * comes); one already back in Stasis acts on the verdict the channel holds (`AMDSTATUS`), the
 * script running from its beginning; one never sent to AMD is sent now.
 *
 * An attempt resolves only once its call ended and its channel is gone (the runtime let go of
 * the call), so a retry never overlaps the channel of the attempt before.
 *
 * The call is a call like the others: journaled in the store with its legs, disposition, wait
 * and talk time, and announced with `call.started` / `call.ended` webhooks (no `call.ringing`
 * nor `call.answered`: those are about operators). Reference: docs/autocalls.md.
 */
import { randomUUID } from 'node:crypto';
import { AriConnectionError, AriServerError } from '../../ari/errors.ts';
import type { AriEvent } from '../../ari/types.ts';
import type { DialJob, NotificationDialer } from '../../autocalls/dialer.ts';
import {
  AMD_STATUSES,
  type AmdStatus,
  type AttemptOutcome,
  type AttemptResult,
  type AutocallDialStatus,
  unansweredResult,
} from '../../autocalls/model.ts';
import type { AutocallAmd, AutocallScript } from '../../autocalls/types.ts';
import { type Call, type Leg } from '../model.ts';
import type { CallContext, Flow } from '../context.ts';
import { isGone, type CallRuntime } from '../runtime.ts';
import { gatewayVerbChannel } from '../verbs/channel.ts';
import { runScript, type ScriptRun } from '../verbs/runner.ts';
import { type ScriptVerb, verbListSchema } from '../verbs/schema.ts';
import type { VerbContext, VerbCrm } from '../verbs/types.ts';

/** Default dialplan context that runs `AMD()` (asterisk-conf/extensions.conf `[crm-amd]`). */
export const DEFAULT_AMD_CONTEXT = 'crm-amd';

/** The Stasis role of a channel back from AMD: `Stasis(crm-app,amd,<AMDSTATUS>,<AMDCAUSE>)`. */
export const AMD_STASIS_ROLE = 'amd';

/**
 * Longest wait, ms, for the store to hold a new notification call before its channel is
 * originated; past it (the store is failing) the call is placed all the same.
 */
export const NOTIFICATION_STORE_WAIT_MS = 5000;

/** Default ring time of a notification call's customer channel, seconds. */
export const DEFAULT_NOTIFICATION_RING_TIMEOUT_SEC = 30;

/** The Stasis role of notification-call channels: `Stasis(crm-app,notify,<jobId>,<callId>)`. */
export const NOTIFICATION_STASIS_ROLE = 'notify';

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

/** What one attempt gathers while it runs. */
interface Attempt {
  job: DialJob;
  ctx: CallContext;
  leg: Leg;
  /** The last final dial status of the channel's `Dial` events. */
  dialStatus?: AutocallDialStatus;
  digits: string;
  /** The script (or answering-machine detection) started on the answered channel. */
  scriptStarted: boolean;
  /** Answering-machine detection's verdict, once the channel came back (AMDSTATUS, AMDCAUSE). */
  amdStatus?: AmdStatus;
  amdCause?: string;
  /** AMD found a machine: the attempt is `machine` whatever plays afterwards. */
  machine: boolean;
  confirmed: boolean;
  playedMs: number;
  delivered: boolean;
  /** A message item could not be played (unreachable media, unknown sound). */
  mediaFailed: boolean;
  canceled: boolean;
  /** The originate request failed: no channel. */
  originateError?: string;
  /**
   * The originate failure may pass: Asterisk unreachable, or it could not allocate the channel
   * (500, e.g. the trunk is offline). The attempt is then `congestion` (retried), else `failed`.
   */
  originateTransient?: boolean;
  /** Stops the script (cancel). */
  stop: AbortController;
  resolve: (outcome: AttemptOutcome) => void;
  offChannel?: () => void;
  settled: boolean;
}

const FINAL_DIAL_STATUSES: ReadonlySet<string> = new Set([
  'ANSWER',
  'BUSY',
  'NOANSWER',
  'CANCEL',
  'CONGESTION',
  'CHANUNAVAIL',
]);

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

  constructor(
    private readonly rt: CallRuntime,
    private readonly options: NotificationFlowOptions,
  ) {
    this.ringTimeoutSec = options.ringTimeoutSec ?? DEFAULT_NOTIFICATION_RING_TIMEOUT_SEC;
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
      const attempt: Attempt = {
        job,
        ctx,
        leg,
        digits: '',
        scriptStarted: false,
        machine: false,
        confirmed: false,
        playedMs: 0,
        delivered: false,
        mediaFailed: false,
        canceled: false,
        stop: new AbortController(),
        resolve,
        settled: false,
      };
      this.attempts.set(call.id, attempt);
      attempt.offChannel = this.rt.deps.gateway.onChannel(leg.channelId, (event) =>
        this.onChannelEvent(attempt, event),
      );
      this.rt.deps.notifier.started(call);
      const onAbort = (): void => {
        attempt.canceled = true;
        attempt.stop.abort();
        void this.rt.run(ctx, () => this.cancel(attempt));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      void this.rt.run(ctx, () => this.originate(attempt, attemptNo));
    });
  }

  /** Dial status and digits, straight from the channel's events (the runtime acts on the rest). */
  private onChannelEvent(attempt: Attempt, event: AriEvent): void {
    if (event.type === 'Dial' && event.peer.id === attempt.leg.channelId) {
      if (FINAL_DIAL_STATUSES.has(event.dialstatus))
        attempt.dialStatus = event.dialstatus as AutocallDialStatus;
    } else if (event.type === 'ChannelDtmfReceived') {
      attempt.digits += event.digit;
    }
  }

  /**
   * `POST /channels` (originate): the customer channel through the job's trunk, once the store
   * holds the call ({@link stored}).
   */
  private async originate(attempt: Attempt, attemptNo: number): Promise<void> {
    const { ctx, leg, job } = attempt;
    if (ctx.call.phase !== 'dialing') return; // canceled before the originate went out
    if (!(await this.stored(ctx)))
      ctx.log.warn('notification call placed before the store holds it (store slow)', {
        waitedMs: NOTIFICATION_STORE_WAIT_MS,
      });
    if (ctx.call.phase !== 'dialing') return;
    const variables: Record<string, string> = {
      ...job.variables,
      AUTOCALL_ID: String(job.id),
      AUTOCALL_ATTEMPT: String(attemptNo),
      ...amdVariables(job.script.amd),
    };
    try {
      await this.rt.deps.gateway.channels.originate({
        endpoint: job.endpoint,
        channelId: leg.channelId,
        appArgs: [NOTIFICATION_STASIS_ROLE, String(job.id), ctx.call.id],
        callerId: ctx.call.from,
        timeoutSec: this.ringTimeoutSec,
        variables,
      });
      leg.created = true;
      ctx.log.info('notification channel originated', { legChannelId: leg.channelId });
      // Canceled while the originate was on its way: the channel rings, hang it up.
      if (callEnded(ctx)) await this.rt.hangupLeg(ctx, leg);
    } catch (err) {
      attempt.originateError = err instanceof Error ? err.message : String(err);
      attempt.originateTransient =
        err instanceof AriConnectionError || err instanceof AriServerError;
      this.rt.legNotCreated(ctx, leg, err);
      await this.rt.afterUnansweredLeg(ctx, leg);
      this.rt.maybeForget(ctx);
    }
  }

  /**
   * Resolves true once the store holds the call with its customer leg (the call journal's
   * `whenWritten`: committed, or in the journal log), false after
   * {@link NOTIFICATION_STORE_WAIT_MS}. Waited for before the originate: an engine killed
   * once the channel exists leaves a call the next engine adopts (it takes the attempt over, or
   * hangs up), never a channel no engine knows of, left up with the customer on it while the job's
   * lease expires and the job is dialled again.
   */
  private stored(ctx: CallContext): Promise<boolean> {
    const whenWritten = this.rt.deps.journal?.whenWritten?.bind(this.rt.deps.journal);
    if (!whenWritten) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), NOTIFICATION_STORE_WAIT_MS);
      whenWritten(ctx.call.id, () => {
        clearTimeout(timer);
        resolve(true);
      });
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
      await this.startAmd(attempt);
      return;
    }
    ctx.log.info('notification call answered; running the script', {
      legChannelId: leg.channelId,
    });
    this.startMessage(attempt, false);
  }

  /**
   * Answering-machine detection: `POST /channels/{id}/continue` to `<amdContext>,s,1`. The
   * channel leaves Stasis (StasisEnd, which does not end the call) and comes back with
   * `amd,<AMDSTATUS>,<AMDCAUSE>` ({@link legBackInStasis}). When the continue fails for another
   * reason than a hang-up, the script runs without detection.
   */
  private async startAmd(attempt: Attempt): Promise<void> {
    const { ctx, leg } = attempt;
    const context = this.options.amdContext ?? DEFAULT_AMD_CONTEXT;
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
      this.startMessage(attempt, false);
    }
  }

  /**
   * The customer channel came back from the AMD context: `args` = `amd,<AMDSTATUS>,<AMDCAUSE>`.
   * MACHINE: hang up, or play the message (`onMachine: "message"`); else run the script.
   */
  async legBackInStasis(ctx: CallContext, leg: Leg, args: string[]): Promise<void> {
    const attempt = this.attempts.get(ctx.call.id);
    if (!attempt || ctx.call.phase === 'ended') return;
    attempt.scriptStarted = true;
    // The listener of the attempt may have been dropped while the channel was out of Stasis.
    attempt.offChannel?.();
    attempt.offChannel = this.rt.deps.gateway.onChannel(leg.channelId, (event) =>
      this.onChannelEvent(attempt, event),
    );
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
        this.startMessage(attempt, true);
        return;
      }
      await this.rt.endCall(ctx, {
        disposition: 'answered',
        hangupBy: 'system',
        reason: 'answering_machine',
      });
      return;
    }
    this.startMessage(attempt, false);
  }

  /** A channel variable (`GET /channels/{id}/variable`); `''` when it cannot be read. */
  private async channelVariable(channelId: string, variable: string): Promise<string> {
    try {
      return await this.rt.deps.gateway.channels.getVariable(channelId, variable);
    } catch {
      return '';
    }
  }

  /** Run the script outside the per-call chain (it takes the whole call). */
  private startMessage(attempt: Attempt, skipConfirm: boolean): void {
    const { ctx } = attempt;
    void this.runMessage(attempt, skipConfirm).catch((err: unknown) => {
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
  private async runMessage(attempt: Attempt, skipConfirm = false): Promise<void> {
    const { ctx, leg, job } = attempt;
    const verbCtx: VerbContext = {
      callId: ctx.call.id,
      channel: gatewayVerbChannel(this.rt.deps.gateway, leg.channelId),
      logger: ctx.log,
      call: { from: ctx.call.from, to: ctx.call.to, autocallId: String(job.id) },
      ...(this.options.crm ? { crm: this.options.crm } : {}),
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
      const attempt: Attempt = {
        job,
        ctx,
        leg,
        digits: '',
        scriptStarted: false,
        confirmed: false,
        playedMs: 0,
        delivered: false,
        machine: false,
        mediaFailed: false,
        canceled: false,
        stop: new AbortController(),
        resolve,
        settled: false,
      };
      this.attempts.set(callId, attempt);
      // An answered call of a job with detection may be in the AMD context: when it comes back
      // into Stasis (as soon as the new engine's WebSocket is open, before the calls are
      // reconciled), its Stasis arguments carry the verdict ({@link legBackInStasis}).
      if (job.script.amd?.enabled && (leg.answered || ctx.call.answeredAt !== undefined))
        leg.inDialplan = true;
      attempt.offChannel = this.rt.deps.gateway.onChannel(leg.channelId, (event) =>
        this.onChannelEvent(attempt, event),
      );
      const onAbort = (): void => {
        attempt.canceled = true;
        attempt.stop.abort();
        void this.rt.run(ctx, () => this.cancel(attempt));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A notification call adopted after an engine restart, once ARI shows it still up. When the
   * new engine took over its attempt ({@link resumeAttempt}): a customer channel still ringing goes on
   * as a placed one (the script runs once answered); an answered one runs the script again from
   * its beginning on the same call (after whatever Asterisk was still playing: the confirm
   * prompt again, then the message), and the attempt ends with that run's outcome; with
   * answering-machine detection, see {@link resumeDetection}. Otherwise
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
        await this.resumeDetection(attempt);
        return;
      }
      attempt.scriptStarted = true;
      ctx.log.info('adopted notification call: running its script again from the beginning');
      void this.runMessage(attempt).catch((err: unknown) => {
        ctx.log.error('notification script failed', { err });
        void this.rt.run(ctx, () =>
          this.rt.endCall(ctx, {
            disposition: 'answered',
            hangupBy: 'system',
            reason: 'handler_error',
          }),
        );
      });
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
   * An adopted answered call of a job with answering-machine detection ({@link adopted}), as
   * ARI listed it. Out of Stasis: `AMD()` is still listening in the AMD context, and the channel's
   * return into Stasis brings the verdict ({@link legBackInStasis}). In Stasis: the verdict the
   * channel holds (`AMDSTATUS`, `AMDCAUSE`: it came back before the new engine saw it, or the old
   * engine was playing the script after it) decides as if it had just come back, the script
   * running from its beginning; no verdict: detection never ran, it starts now.
   */
  private async resumeDetection(attempt: Attempt): Promise<void> {
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
      await this.legBackInStasis(ctx, leg, [AMD_STASIS_ROLE, status, cause]);
      return;
    }
    attempt.scriptStarted = true;
    await this.startAmd(attempt);
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

/** The call ended (read afresh: an `await` may have changed it). */
function callEnded(ctx: CallContext): boolean {
  return ctx.call.phase === 'ended';
}

/** What the attempt achieved, from what it gathered (see {@link AttemptResult}). */
function attemptOutcome(attempt: Attempt): AttemptOutcome {
  const { leg, ctx } = attempt;
  const answeredAt = ctx.call.answeredAt;
  const base = {
    digits: attempt.digits,
    playedSec: Math.floor(attempt.playedMs / 1000),
    callId: ctx.call.id,
    ...(leg.cause !== undefined ? { cause: leg.cause } : {}),
    ...(leg.causeText ? { causeText: leg.causeText } : {}),
    ...(attempt.amdStatus ? { amdStatus: attempt.amdStatus } : {}),
    ...(attempt.amdCause ? { amdCause: attempt.amdCause } : {}),
  };
  if (attempt.originateError !== undefined)
    return {
      ...base,
      dialStatus: attempt.originateTransient ? 'CHANUNAVAIL' : 'FAILED',
      outcome: attempt.originateTransient ? 'congestion' : 'failed',
      causeText: attempt.originateError.slice(0, 200),
    };
  if (answeredAt !== undefined) {
    let outcome: AttemptResult;
    if (attempt.machine) outcome = 'machine';
    else if (attempt.delivered) outcome = 'delivered';
    else if (attempt.canceled) outcome = 'canceled';
    else if (attempt.job.script.confirm && !attempt.confirmed) outcome = 'not_confirmed';
    else if (attempt.mediaFailed) outcome = 'failed';
    else outcome = 'cut_short';
    return { ...base, dialStatus: 'ANSWER', answeredAt, outcome };
  }
  const dialStatus: AutocallDialStatus = attempt.canceled
    ? 'CANCEL'
    : (attempt.dialStatus ?? dialStatusOfCause(leg.cause));
  return {
    ...base,
    dialStatus,
    outcome: attempt.canceled ? 'canceled' : unansweredResult(dialStatus, leg.cause),
  };
}

/**
 * Asterisk's dial status for a channel that ended without a `Dial` event telling it (an
 * originate whose ring timeout expired hangs the channel up with cause 19).
 */
function dialStatusOfCause(cause: number | undefined): AutocallDialStatus {
  switch (cause) {
    case 17:
      return 'BUSY';
    case 18:
    case 19:
      return 'NOANSWER';
    case 34:
    case 38:
    case 41:
    case 42:
    case 44:
    case 47:
      return 'CONGESTION';
    default:
      return 'CHANUNAVAIL';
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
