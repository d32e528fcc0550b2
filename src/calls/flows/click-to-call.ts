/**
 * The click-to-call flow (`POST /v1/calls`, asterisk.fcgi `makecall`). Top to bottom:
 *
 * 1. {@link ClickToCallFlow.startCall}: the call is created (no channel yet), `call.started`;
 * 2. {@link ClickToCallFlow.originateOperator}: the operator leg is originated
 *    (`POST /channels` with `"CRM" <customer>` as caller ID); its `Dial RINGING` is the
 *    `call.ringing` screen pop; it enters Stasis only once the operator answered (fixtures
 *    fact 8);
 * 3. {@link ClickToCallFlow.legUnanswered}: busy or unanswered, the operator leg is originated
 *    again after `triesPeriodSec`, up to `tries` times, then the call ends
 *    (`operator_unreachable`);
 * 4. {@link ClickToCallFlow.legAnswered} / {@link ClickToCallFlow.legInStasis}: once the
 *    operator answered and is in Stasis, the operator hears ringback and the customer leg is
 *    created through the trunk chosen by prefix with the company caller ID;
 * 5. the customer's answer is bridged with the operator (the runtime's `connect`); a customer
 *    busy, not answering or unreachable makes the operator hear `sound:beep`
 *    ({@link ClickToCallFlow.customerFailed}), then the call ends.
 *
 * Hang-ups, transfers and the end of the call are the runtime's (src/calls/runtime.ts) and the
 * transfer flow's (src/calls/flows/transfer.ts).
 */
import { randomUUID } from 'node:crypto';
import {
  type Call,
  type CallSnapshot,
  type Disposition,
  type Leg,
  snapshotCall,
  unansweredDisposition,
} from '../model.ts';
import { operatorEndpoint } from '../dialstrings.ts';
import type { ClickToCallRequest } from '../control.ts';
import type { CallContext, Flow } from '../context.ts';
import { type CallRuntime, isGone } from '../runtime.ts';

/** Calls the engine starts by ringing an operator (no StasisStart role of its own). */
export class ClickToCallFlow implements Flow {
  readonly name = 'click2call';
  readonly stasisRoles = [];
  readonly callerChannel = 'operator-leg';

  constructor(private readonly rt: CallRuntime) {}

  /**
   * Click-to-call (also asterisk.fcgi `makecall`): originate the operator leg with CALLERID
   * `"<clickToCallCallerIdName>" <customer number>`; once the operator answers, dial the customer
   * through the trunk and bridge. The operator leg is retried `tries` times, `triesPeriodSec`
   * apart, when busy or not answering. Returns at once.
   */
  startCall(request: ClickToCallRequest): CallSnapshot {
    const id = randomUUID();
    const now = this.rt.now();
    const call: Call = {
      id,
      direction: 'out',
      from: request.operator,
      to: request.to,
      phase: 'dialing',
      legs: new Map(),
      callerChannelId: '',
      operatorExtension: request.operator,
      startedAt: now,
      nextSequence: 1,
      variables: request.variables,
      originated: true,
    };
    const ctx = this.rt.register(call, 'click2call', '');
    ctx.clickToCall = {
      operator: request.operator,
      tries: request.tries,
      triesPeriodSec: request.triesPeriodSec,
      attempt: 0,
      record: request.record,
    };
    ctx.log.info('click-to-call', {
      operator: request.operator,
      to: request.to,
      tries: request.tries,
      requestedBy: request.requestedBy,
    });
    this.rt.deps.notifier.started(call);
    void this.rt.run(ctx, () => this.originateOperator(ctx), 'leg-setup');
    return snapshotCall(call, now);
  }

  /** Originate the operator leg; it enters Stasis only once answered (fixtures fact 8). */
  private async originateOperator(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const c2c = ctx.clickToCall!;
    if (call.phase !== 'dialing') return;
    c2c.attempt++;
    const { options } = this.rt.deps;
    const endpoint = operatorEndpoint(c2c.operator, options.operatorEndpoint);
    const leg = this.rt.addEngineLeg(ctx, 'operator', endpoint, c2c.operator);
    leg.dialed = true; // an originate dials by itself
    call.callerChannelId = leg.channelId;
    ctx.anchorChannelId = leg.channelId;
    const name = options.clickToCallCallerIdName ?? 'CRM';
    try {
      await this.rt.deps.gateway.channels.originate({
        endpoint,
        channelId: leg.channelId,
        appArgs: ['click2call', 'operator', call.id],
        callerId: `"${name.replace(/"/g, '')}" <${call.to}>`,
        timeoutSec: options.clickToCallRingTimeoutSec ?? 20,
      });
      leg.created = true;
      ctx.log.info('operator leg originated', {
        legChannelId: leg.channelId,
        attempt: c2c.attempt,
      });
      // Ended while the originate was on its way (the end of a call leaves a leg not created
      // yet alone): the operator's phone rings for nothing, hang it up.
      if (ctx.call.phase === 'ended') await this.rt.hangupLeg(ctx, leg);
    } catch (err) {
      this.rt.legNotCreated(ctx, leg, err);
      await this.rt.afterUnansweredLeg(ctx, leg);
    }
  }

  /** The operator leg answered: the customer is dialled once the leg is in Stasis (fact 8). */
  async legAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.role === 'operator' && ctx.call.answeredAt === undefined) {
      leg.outcome = 'answered';
      ctx.log.info('operator answered; dialling the customer', { legChannelId: leg.channelId });
      await this.maybeDialCustomer(ctx);
      return;
    }
    await this.rt.connect(ctx, leg);
  }

  /** The operator leg entered Stasis (it answered): dial the customer; other legs are dialled. */
  async legInStasis(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.role === 'operator') await this.maybeDialCustomer(ctx);
    else await this.rt.maybeDial(ctx, leg);
  }

  /** Once the click-to-call operator answered and is in Stasis, dial the customer. */
  private async maybeDialCustomer(ctx: CallContext): Promise<void> {
    const operator = ctx.call.legs.get(ctx.anchorChannelId);
    if (!operator || !operator.answered || !operator.inStasis || operator.ended) return;
    if ([...ctx.call.legs.values()].some((leg) => leg.role === 'customer')) return;
    if (ctx.call.phase !== 'dialing') return;
    ctx.callerAnswered = true;
    await this.rt.deps.gateway.channels.ring(operator.channelId); // the operator hears ringback
    await this.rt.placeCustomerLeg(ctx);
  }

  /**
   * A dialled leg ended unanswered. The customer leg: {@link customerFailed}. The operator leg:
   * retried while busy / not answering (`tries`, `triesPeriodSec`), else the call ends
   * (`operator_unreachable`).
   */
  async legUnanswered(ctx: CallContext, leg: Leg): Promise<void> {
    const outcome = leg.outcome ?? 'failed';
    if (leg.role === 'customer') {
      await this.customerFailed(ctx, unansweredDisposition([outcome]));
      return;
    }
    const c2c = ctx.clickToCall!;
    if ((outcome === 'busy' || outcome === 'no_answer') && c2c.attempt < c2c.tries) {
      if (this.rt.stopping) {
        // The engine is stopping: no new operator leg (the next engine adopts the call).
        ctx.log.info('operator did not answer; engine stopping: not rung again', {
          outcome,
          attempt: c2c.attempt,
        });
        return;
      }
      ctx.log.info('operator did not answer; retrying', {
        outcome,
        attempt: c2c.attempt,
        tries: c2c.tries,
        inSec: c2c.triesPeriodSec,
      });
      ctx.retryTimer = setTimeout(() => {
        ctx.retryTimer = undefined;
        void this.rt.run(ctx, () => this.originateOperator(ctx), 'leg-setup');
      }, c2c.triesPeriodSec * 1000);
      return;
    }
    await this.rt.endCall(ctx, {
      disposition: unansweredDisposition([outcome]),
      hangupBy: 'system',
      reason: 'operator_unreachable',
    });
  }

  /**
   * The customer leg failed (busy, no answer, unreachable): the operator hears a short beep
   * first (trace click-to-call-client-busy), then is hung up ({@link playbackFinished}).
   */
  private async customerFailed(ctx: CallContext, disposition: Disposition): Promise<void> {
    const playbackId = `pb-${randomUUID()}`;
    ctx.beepPlaybackId = playbackId;
    ctx.endAfterBeep = { disposition, reason: 'customer_unreachable' };
    this.rt.trackPlayback(ctx, playbackId);
    try {
      await this.rt.deps.gateway.channels.play(ctx.anchorChannelId, {
        media: ['sound:beep'],
        playbackId,
      });
    } catch (err) {
      this.rt.untrackPlayback(ctx, playbackId);
      if (!isGone(err)) ctx.log.warn('could not play the failure tone', { err });
      await this.rt.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
    }
  }

  /** The failure beep finished: end the call as the customer's failure said. */
  async playbackFinished(ctx: CallContext, playbackId: string): Promise<void> {
    if (playbackId === ctx.beepPlaybackId && ctx.endAfterBeep)
      await this.rt.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
  }
}
