/**
 * The legs of a call, a part of the call runtime (src/calls/runtime.ts, which delegates its leg
 * methods here):
 *
 * - engine legs: registered with a client-generated id (`op-<uuid>`, `cu-<uuid>`) before they are
 *   created (`POST /channels/create`), dialled once both created and in Stasis (fixtures facts
 *   1, 2), or hung up when the call moved on meanwhile;
 * - the caller's channel: rung (180) and answered;
 * - hanging a leg up (`DELETE /channels/{id}`);
 * - the unconfirmed channels: an engine leg whose create or originate got no answer from ARI may
 *   exist in Asterisk all the same; it is hung up by its id (src/calls/unconfirmed.ts).
 */
import { newChannelId } from '../ari/ids.ts';
import type { HangupParams } from '../ari/types.ts';
import {
  AriBadRequestError,
  AriConnectionError,
  AriNotFoundError,
  AriServerError,
} from '../ari/errors.ts';
import type { Leg } from './model.ts';
import { customerEndpoint, operatorEndpoint } from './dialstrings.ts';
import type { CallContext } from './context.ts';
import type { CallRuntime } from './runtime.ts';

/** Creating, dialling and hanging up the legs of the runtime's calls. */
export class CallLegs {
  constructor(private readonly rt: CallRuntime) {}

  /** A new engine leg (`op-<uuid>`, `cu-<uuid>`), registered before it is created. */
  addEngineLeg(
    ctx: CallContext,
    role: 'operator' | 'customer',
    endpoint: string,
    extension: string | undefined,
  ): Leg {
    const leg: Leg = {
      channelId: newChannelId(role === 'operator' ? 'op' : 'cu'),
      role,
      extension,
      endpoint,
      createdByEngine: true,
      created: false,
      inStasis: false,
      dialed: false,
      ringing: false,
      answered: false,
      ended: false,
      hangupRequested: false,
      createdAt: this.rt.now(),
    };
    // Registered before the create so that a StasisStart arriving before the create's answer
    // (fixtures fact 1) already finds its call.
    ctx.call.legs.set(leg.channelId, leg);
    this.rt.byChannel.set(leg.channelId, ctx);
    return leg;
  }

  /**
   * Create an operator leg with CALLERID set at create time (fixtures fact 3), then dial it.
   * `beforeCreate` runs once the leg exists in the call, before the create is sent (a blind
   * transfer marks it as its target there). Returns the leg.
   */
  async placeOperatorLeg(
    ctx: CallContext,
    extension: string,
    beforeCreate?: (leg: Leg) => void,
  ): Promise<Leg> {
    const { call } = ctx;
    const { options } = this.rt.deps;
    const name = call.customer?.name ?? call.callerName ?? this.rt.customerNumber(ctx);
    const endpoint = operatorEndpoint(extension, options.operatorEndpoint);
    const leg = this.addEngineLeg(ctx, 'operator', endpoint, extension);
    beforeCreate?.(leg);
    await this.createLeg(ctx, leg, ['operator', call.id], {
      'CALLERID(name)': `${options.callerIdPrefix}${name}`,
      'CALLERID(num)': this.rt.customerNumber(ctx),
    });
    return leg;
  }

  /** Create the customer leg through the trunk chosen by prefix, with the company caller ID. */
  async placeCustomerLeg(ctx: CallContext): Promise<void> {
    const { options } = this.rt.deps;
    let endpoint: string;
    try {
      endpoint = customerEndpoint(ctx.call.to, options.trunks);
    } catch {
      await this.rt.endCall(ctx, { disposition: 'failed', hangupBy: 'system', reason: 'no_trunk' });
      return;
    }
    ctx.ringTimeoutSec = options.outboundRingTimeoutSec;
    const leg = this.addEngineLeg(ctx, 'customer', endpoint, undefined);
    await this.createLeg(
      ctx,
      leg,
      ['customer', ctx.call.id],
      { 'CALLERID(num)': options.companyCallerId },
      ctx.anchorChannelId,
    );
  }

  /** `POST /channels/create`, then dial once in Stasis; a refused create ends the leg. */
  private async createLeg(
    ctx: CallContext,
    leg: Leg,
    appArgs: string[],
    variables: Record<string, string>,
    originator?: string,
  ): Promise<void> {
    try {
      await this.rt.deps.gateway.channels.create({
        endpoint: leg.endpoint!,
        channelId: leg.channelId,
        appArgs,
        variables,
        ...(originator ? { originator } : {}),
      });
      leg.created = true;
    } catch (err) {
      this.legNotCreated(ctx, leg, err);
      await this.rt.afterUnansweredLeg(ctx, leg);
      return;
    }
    await this.maybeDial(ctx, leg);
  }

  /**
   * The create or originate of an engine leg failed (`POST /channels/create`, `POST /channels`):
   * the leg ended unanswered without a channel (`unavailable` when Asterisk refused the channel,
   * 500 "Allocation failed" for an offline endpoint, fact 10; else `failed`). When ARI gave no
   * answer (AriConnectionError: the connection dropped, or no answer within the command timeout)
   * Asterisk may have carried the request out all the same, so a channel with the leg's id may
   * exist, ringing the phone for an originate: it is hung up by that id
   * (`CallRuntime.unconfirmed`, src/calls/unconfirmed.ts).
   */
  legNotCreated(ctx: CallContext, leg: Leg, err: unknown): void {
    leg.ended = true;
    leg.endedAt = this.rt.now();
    leg.outcome = err instanceof AriServerError ? 'unavailable' : 'failed';
    this.rt.byChannel.delete(leg.channelId);
    ctx.log.warn('could not create leg', {
      legChannelId: leg.channelId,
      endpoint: leg.endpoint,
      err,
    });
    if (err instanceof AriConnectionError) this.rt.unconfirmed.hangUp(ctx.log, leg.channelId);
  }

  /**
   * StasisStart of an engine leg (`args`: its Stasis arguments, e.g. `operator,<callId>`; none
   * when a reconciliation found it in Stasis): dial it, or hang it up if the call moved on.
   */
  async onLegStasisStart(ctx: CallContext, channelId: string, args: string[] = []): Promise<void> {
    const leg = ctx.call.legs.get(channelId);
    if (!leg) return;
    const flow = this.rt.flowOf(ctx);
    // Back from the dialplan, and already handled (a reconciliation found it in Stasis before
    // its StasisStart came): nothing more to do.
    if (flow.legBackInStasis && leg.answered && leg.inStasis && !leg.inDialplan) return;
    leg.inStasis = true;
    if (this.rt.isTransferLeg(ctx, leg)) {
      await this.maybeDial(ctx, leg);
      return;
    }
    if (
      leg.inDialplan &&
      flow.legBackInStasis &&
      !leg.hangupRequested &&
      ctx.call.phase !== 'ended'
    ) {
      // An answered leg the flow had sent into the dialplan (`continue`) came back.
      leg.inDialplan = false;
      await flow.legBackInStasis(ctx, leg, args);
      return;
    }
    if (ctx.call.phase !== 'dialing' || leg.hangupRequested) {
      // The call moved on (answered elsewhere, abandoned) while this leg was being created.
      if (!leg.hangupRequested) await this.hangupLeg(ctx, leg);
      return;
    }
    if (flow.legInStasis) await flow.legInStasis(ctx, leg, args);
    else await this.maybeDial(ctx, leg);
  }

  /** Dial once both the create was answered and the channel is in Stasis (facts 1, 2). */
  async maybeDial(ctx: CallContext, leg: Leg): Promise<void> {
    if (!leg.created || !leg.inStasis || leg.dialed || leg.ended || leg.hangupRequested) return;
    const transfer = this.rt.isTransferLeg(ctx, leg);
    if (ctx.call.phase !== 'dialing' && !transfer) {
      await this.hangupLeg(ctx, leg);
      return;
    }
    leg.dialed = true;
    try {
      // A transfer target rings on behalf of the customer, for the default operator ring time.
      await this.rt.deps.gateway.channels.dial(leg.channelId, {
        caller: transfer
          ? (this.rt.customerLeg(ctx)?.channelId ?? ctx.anchorChannelId)
          : ctx.anchorChannelId,
        timeoutSec: transfer ? this.rt.deps.options.defaultRingTimeoutSec : ctx.ringTimeoutSec,
      });
      ctx.log.debug('leg dialled', { legChannelId: leg.channelId, endpoint: leg.endpoint });
    } catch (err) {
      if (isGone(err)) return; // its ChannelDestroyed follows
      ctx.log.warn('dial failed; hanging the leg up', { legChannelId: leg.channelId, err });
      leg.outcome = 'failed';
      await this.hangupLeg(ctx, leg);
    }
  }

  /**
   * Ring the caller's channel (180) unless it is answered. False when the caller already hung up
   * (404): its StasisEnd, queued behind this step, ends the call as abandoned.
   */
  async ringCaller(ctx: CallContext): Promise<boolean> {
    if (ctx.callerAnswered) return true;
    try {
      await this.rt.deps.gateway.channels.ring(ctx.call.callerChannelId);
      return true;
    } catch (err) {
      if (!isGone(err)) throw err;
      ctx.log.info('the caller hung up before the call was rung');
      return false;
    }
  }

  /** Answer the caller's channel (not an engine-originated operator leg: it answered itself). */
  async answerCaller(ctx: CallContext): Promise<void> {
    if (ctx.callerAnswered || this.rt.flowOf(ctx).callerChannel === 'operator-leg') return;
    await this.rt.deps.gateway.channels.answer(ctx.call.callerChannelId);
    ctx.callerAnswered = true;
  }

  /** Ask Asterisk to hang a leg up; a leg already gone (404) counts as done. */
  async hangupLeg(ctx: CallContext, leg: Leg, reason?: HangupParams['reason']): Promise<void> {
    if (leg.ended || leg.hangupRequested) return;
    leg.hangupRequested = true;
    try {
      await this.rt.deps.gateway.channels.hangup(leg.channelId, reason ? { reason } : undefined);
    } catch (err) {
      if (isGone(err)) {
        if (leg.role === 'caller') {
          leg.ended = true;
          this.rt.byChannel.delete(leg.channelId);
        }
        return;
      }
      ctx.log.warn('hangup failed', { legChannelId: leg.channelId, err });
    }
  }
}

/**
 * The channel or bridge an ARI command was about no longer exists: 404, or the 400 "Channel not
 * found" that `POST /bridges/{id}/addChannel` answers for a channel that hung up (ARI docs).
 */
export function isGone(err: unknown): boolean {
  if (err instanceof AriNotFoundError) return true;
  return err instanceof AriBadRequestError && /^Channel not found$/i.test(err.asteriskMessage);
}

const ENGINE_LEG_ID = /^(?:op|cu)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The id names a leg the engine creates or originates: `op-<uuid>` (operator) or `cu-<uuid>`
 * (customer), as {@link CallLegs.addEngineLeg} names them (src/ari/ids.ts `newChannelId`).
 */
export function isEngineLegId(channelId: string): boolean {
  return ENGINE_LEG_ID.test(channelId);
}
