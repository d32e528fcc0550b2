/**
 * What a leg's ringing, answer and end do to its call, a part of the call runtime
 * (src/calls/runtime.ts, which delegates its leg handlers here; the event routing,
 * src/calls/routing.ts, calls them):
 *
 * - ringing: `call.ringing` for an operator (the screen pop);
 * - answer: the transfer target joins the customer (src/calls/flows/transfer.ts), a leg of a
 *   dialling call goes to the flow (`Flow.legAnswered`) or, by default, the first answer is
 *   bridged with the anchor and the other dialled legs cancelled ({@link LegStates.connect});
 * - end: an answered party leaving ends the call; a dialled leg ending unanswered calls the
 *   transfer off or lets the flow go on (`Flow.legUnanswered`).
 */
import { randomUUID } from 'node:crypto';
import { AriConnectionError } from '../ari/errors.ts';
import { type HangupBy, type Leg, legOutcomeFromCause } from './model.ts';
import type { CallContext, TransferTargetHandlers } from './context.ts';
import { isGone } from './legs.ts';
import { apiHangupOutcome } from './lifecycle.ts';
import type { CallRuntime } from './runtime.ts';

/** The handlers of the legs' ringing, answer and end. */
export class LegStates {
  /** The blind transfer, told about the leg ringing its target (`setTransferHandlers`). */
  transfer: TransferTargetHandlers | undefined;

  constructor(private readonly rt: CallRuntime) {}

  /** `Dial RINGING` of a leg: `call.ringing` for an operator (the screen pop). */
  async onLegRinging(ctx: CallContext, leg: Leg): Promise<void> {
    this.markRinging(ctx, leg);
  }

  /**
   * Mark the leg ringing and announce an operator's; false when that was no news. Also called on
   * a ringing signal's arrival, ahead of its turn in the per-call chain (src/calls/routing.ts).
   */
  markRinging(ctx: CallContext, leg: Leg): boolean {
    if (leg.ringing || leg.answered || leg.ended) return false;
    leg.ringing = true;
    ctx.log.info('leg ringing', {
      legChannelId: leg.channelId,
      extension: leg.extension,
      endpoint: leg.endpoint,
    });
    if (leg.role === 'operator' && (ctx.call.phase === 'dialing' || this.isTransferLeg(ctx, leg)))
      this.rt.deps.notifier.ringing(ctx.call, leg);
    return true;
  }

  /** `Dial ANSWER` of a leg: the transfer target, the flow's answer, or too late. */
  async onLegAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.answered || leg.ended) return;
    leg.answered = true;
    leg.answeredAt = this.rt.now();
    if (this.isTransferLeg(ctx, leg) && !leg.hangupRequested) {
      await this.transfer?.targetAnswered(ctx, leg);
      return;
    }
    if (ctx.call.phase !== 'dialing' || leg.hangupRequested) {
      ctx.log.info('leg answered after the call moved on; hanging it up', {
        legChannelId: leg.channelId,
      });
      await this.rt.hangupLeg(ctx, leg);
      return;
    }
    const flow = this.rt.flowOf(ctx);
    if (flow.legAnswered) await flow.legAnswered(ctx, leg);
    else await this.connect(ctx, leg);
  }

  /** First answer wins: bridge it with the anchor, cancel the other dialled legs. */
  async connect(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    const { gateway } = this.rt.deps;
    call.phase = 'bridged';
    call.answeredAt ??= leg.answeredAt;
    leg.outcome = 'answered';
    const extension = leg.role === 'operator' ? leg.extension : call.operatorExtension;
    call.answeredBy ??= extension;
    ctx.pending = [];
    ctx.transferring = false;
    if (extension) this.rt.deps.notifier.answered(call, extension);
    const others = [...call.legs.values()].filter(
      (l) => l !== leg && l.channelId !== ctx.anchorChannelId && l.role !== 'caller' && !l.ended,
    );
    await Promise.all(others.map((other) => this.rt.hangupLeg(ctx, other)));
    const bridgeId = call.bridgeId ?? `br-${randomUUID()}`;
    try {
      await this.rt.answerCaller(ctx);
      if (call.bridgeId) {
        await gateway.bridges.addChannel(bridgeId, [leg.channelId]);
      } else {
        await gateway.bridges.create({
          bridgeId,
          type: ['mixing'],
          name: `call-${call.id}`,
        });
        call.bridgeId = bridgeId;
        await gateway.bridges.addChannel(bridgeId, [ctx.anchorChannelId, leg.channelId]);
        await this.rt.recorder?.bridgeCreated(call, bridgeId, this.recordOverride(ctx));
      }
    } catch (err) {
      // A party hung up while we were bridging: its StasisEnd/ChannelDestroyed is queued behind
      // this step and ends the call with the right side as the one who hung up.
      if (isGone(err)) {
        ctx.log.info('a party hung up while the call was being bridged', {
          legChannelId: leg.channelId,
        });
        return;
      }
      // No answer from Asterisk: the create may have taken effect. The id is ours, so keep it:
      // the reconciliation then finds that bridge (or creates it under this id) and the end of
      // the call destroys it, instead of leaving an unknown bridge behind in Asterisk.
      if (err instanceof AriConnectionError) call.bridgeId ??= bridgeId;
      throw err;
    }
    ctx.log.info('call answered and bridged', { extension, legChannelId: leg.channelId, bridgeId });
  }

  /** The per-call recording override: the CRM route's or the click-to-call request's. */
  recordOverride(ctx: CallContext): boolean | undefined {
    return ctx.route?.record ?? ctx.clickToCall?.record;
  }

  /** `ChannelDestroyed` of an engine leg. */
  async onLegGone(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.ended) return;
    leg.ended = true;
    leg.endedAt = this.rt.now();
    this.rt.byChannel.delete(leg.channelId);
    const { call } = ctx;
    if (call.phase !== 'ended' && leg.hangupRequested && leg.outcome === 'answered') {
      // We dropped this party on purpose (transfer); the call goes on.
    } else if (leg.outcome === 'answered') {
      if (call.phase !== 'ended')
        await this.onPartyGone(ctx, leg.role === 'customer' ? 'customer' : 'operator');
    } else {
      // `canceled` may be the end of the call's stand-in (endCall): the report decides.
      if (leg.outcome === undefined || leg.outcome === 'canceled')
        leg.outcome = legOutcomeFromCause(leg.cause, leg.hangupRequested);
      ctx.log.info('leg ended without answer', {
        legChannelId: leg.channelId,
        extension: leg.extension,
        outcome: leg.outcome,
        cause: leg.cause,
      });
      if (this.isTransferLeg(ctx, leg)) await this.transfer?.targetFailed(ctx, leg);
      else if (call.phase === 'dialing') await this.afterUnansweredLeg(ctx, leg);
    }
    this.rt.maybeForget(ctx);
  }

  /** `StasisEnd` of the caller channel (the dialplan leg). */
  async onCallerGone(ctx: CallContext, leg: Leg): Promise<void> {
    if (ctx.call.phase === 'ended') return;
    if (leg.hangupRequested) return; // dropped by a blind transfer
    await this.onPartyGone(
      ctx,
      this.rt.flowOf(ctx).callerChannel === 'customer' ? 'caller' : 'operator',
    );
  }

  /** A party that had answered (or the caller) left: end the call. */
  private async onPartyGone(ctx: CallContext, by: HangupBy): Promise<void> {
    if (ctx.endAfterBeep) {
      await this.rt.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
    } else if (ctx.call.answeredAt !== undefined) {
      await this.rt.endCall(ctx, { disposition: 'answered', hangupBy: by });
    } else {
      // Abandoned while ringing: every dialled leg is hung up at once (fixtures fact 6).
      await this.rt.endCall(ctx, { disposition: 'canceled', hangupBy: by, reason: 'abandoned' });
    }
  }

  /**
   * A dialled leg ended unanswered (or was never created): the transfer is called off; a call
   * the CRM is hanging up ({@link CallContext.apiHangup}) ends as the CRM asked; an adopted
   * call's transfer with nobody left ringing ends; else the flow goes on (`Flow.legUnanswered`:
   * retry, next extension, or end the call).
   */
  async afterUnansweredLeg(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    if (this.isTransferLeg(ctx, leg)) {
      await this.transfer?.targetFailed(ctx, leg);
      return;
    }
    if (call.phase !== 'dialing') return;
    if (ctx.apiHangup) {
      // The CRM's hang-up, queued behind this step, decides: no retry, no next operator.
      await this.rt.endCall(ctx, apiHangupOutcome(call));
      return;
    }
    if (ctx.transferring) {
      if (
        [...call.legs.values()].some((l) => l.role === 'operator' && !l.ended && !l.hangupRequested)
      )
        return;
      await this.rt.endCall(ctx, {
        disposition: 'answered',
        hangupBy: 'system',
        reason: 'transfer_failed',
      });
      return;
    }
    await this.rt.flowOf(ctx).legUnanswered(ctx, leg);
  }

  /** The leg is the target of the blind transfer in progress. */
  isTransferLeg(ctx: CallContext, leg: Leg): boolean {
    return ctx.call.phase !== 'ended' && ctx.call.transfer?.channelId === leg.channelId;
  }
}
