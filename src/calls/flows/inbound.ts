/**
 * The inbound flow: a customer calls a DID and Asterisk runs `Stasis(crm-app,inbound,<DID>)`.
 * Top to bottom:
 *
 * 1. {@link InboundFlow.start}: the call is created with its caller leg, `call.started`; the
 *    caller is rung (`POST /channels/{id}/ring`: the caller hears ringback);
 * 2. the CRM is asked for the route (`POST CRM_ROUTE_URL {callId, from, did}`; the route client
 *    falls back on any failure), outside the per-call chain;
 * 3. {@link InboundFlow.applyRoute}: `hangup`, or optionally answer and play a greeting (dialling
 *    starts on its `PlaybackFinished`), then {@link InboundFlow.startDialing};
 * 4. operator legs: all at once (ring-all) or one after another (sequential), each created with
 *    CALLERID set and dialled once in Stasis (the runtime's `placeOperatorLeg`);
 * 5. the first answer is bridged with the caller and the other legs cancelled (the runtime's
 *    `connect`, the default of {@link Flow.legAnswered});
 * 6. {@link InboundFlow.legUnanswered}: a busy or unanswered leg makes the next extension ring;
 *    with nobody left the caller goes to `NO_ANSWER_DIALPLAN` or is hung up.
 *
 * Hang-ups (either side), transfers and the end of the call are the runtime's
 * (src/calls/runtime.ts) and the transfer flow's (src/calls/flows/transfer.ts).
 */
import { randomUUID } from 'node:crypto';
import type { AriChannel } from '../../ari/types.ts';
import type { Route } from '../../crm/types.ts';
import { type LegOutcome, unansweredDisposition } from '../model.ts';
import type { CallContext, Flow } from '../context.ts';
import type { CallRuntime } from '../runtime.ts';

/** Calls entering Stasis with `inbound,<DID>`. */
export class InboundFlow implements Flow {
  readonly name = 'inbound';
  readonly stasisRoles = ['inbound'];
  readonly callerChannel = 'customer';

  constructor(private readonly rt: CallRuntime) {}

  /** Inbound: ring the caller, ask the CRM, optionally greet, then ring operators. */
  async start(channel: AriChannel, args: string[]): Promise<void> {
    const did = args[1] || channel.dialplan.exten;
    const ctx = this.rt.dialplanCall(channel, 'inbound', 'in', channel.caller.number, did);
    const { call } = ctx;
    call.did = did;
    ctx.log.info('inbound call', { from: call.from, did });
    this.rt.deps.notifier.started(call);
    await this.rt.run(ctx, async () => {
      await this.rt.ringCaller(ctx);
    });
    const decision = await this.rt.deps.routes.lookup({ callId: call.id, from: call.from, did });
    // The route client already logged a failed lookup (warn, with its reason).
    ctx.log.info('route decided', {
      source: decision.source,
      fallbackReason: decision.failure?.reason,
      action: decision.route.action.type,
      durationMs: decision.durationMs,
    });
    await this.rt.run(ctx, () => this.applyRoute(ctx, decision.route));
  }

  /** The CRM's answer: hang up, or (after an optional greeting) ring the operators. */
  private async applyRoute(ctx: CallContext, route: Route): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    ctx.route = route;
    if (route.customer) call.customer = route.customer;
    if (route.action.type === 'hangup') {
      await this.rt.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'route_hangup',
      });
      return;
    }
    ctx.ringTimeoutSec = route.action.ringTimeoutSec;
    if (route.greeting && route.greeting.media.length > 0) {
      call.phase = 'greeting';
      await this.rt.answerCaller(ctx);
      const playbackId = `pb-${randomUUID()}`;
      ctx.greetingPlaybackId = playbackId;
      this.rt.trackPlayback(ctx, playbackId);
      try {
        await this.rt.deps.gateway.channels.play(call.callerChannelId, {
          media: route.greeting.media,
          playbackId,
        });
        return; // dialling starts on PlaybackFinished
      } catch (err) {
        this.rt.untrackPlayback(ctx, playbackId);
        ctx.log.warn('greeting could not be played; dialling operators now', { err });
      }
    }
    await this.startDialing(ctx);
  }

  /** The greeting finished: ring the operators. */
  async playbackFinished(ctx: CallContext, playbackId: string): Promise<void> {
    if (playbackId === ctx.greetingPlaybackId && ctx.call.phase === 'greeting')
      await this.startDialing(ctx);
  }

  /** Ring the route's extensions: all at once, or the first of a sequential route. */
  private async startDialing(ctx: CallContext): Promise<void> {
    const action = ctx.route?.action;
    if (!action || action.type !== 'dial') return;
    ctx.call.phase = 'dialing';
    const extensions = [...new Set(action.extensions)];
    if (extensions.length === 0) {
      await this.rt.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'no_extensions',
      });
      return;
    }
    if (action.strategy === 'sequential') {
      ctx.pending = extensions.slice(1);
      await this.rt.placeOperatorLeg(ctx, extensions[0]!);
    } else {
      await Promise.all(extensions.map((ext) => this.rt.placeOperatorLeg(ctx, ext)));
    }
  }

  /** An operator leg ended unanswered: see {@link nobodyDialled}. */
  legUnanswered(ctx: CallContext): Promise<void> {
    return this.nobodyDialled(ctx);
  }

  /**
   * Once no operator leg rings any more: the next extension of a sequential route, else the
   * caller goes to the no-answer dialplan (`continue`) or is hung up; `nobody_answered`.
   */
  async nobodyDialled(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const dialled = [...call.legs.values()].filter((l) => l.role === 'operator');
    if (dialled.some((l) => !l.ended)) return;
    const next = ctx.pending.shift();
    if (next !== undefined) {
      await this.rt.placeOperatorLeg(ctx, next);
      return;
    }
    const outcomes = dialled.map((l) => l.outcome).filter((o): o is LegOutcome => o !== undefined);
    const disposition = unansweredDisposition(outcomes);
    const dialplan = this.rt.deps.options.noAnswerDialplan;
    if (dialplan) {
      ctx.released.add(call.callerChannelId);
      try {
        await this.rt.deps.gateway.channels.continueInDialplan(call.callerChannelId, dialplan);
        ctx.log.info('nobody answered; caller sent to the dialplan', { ...dialplan, disposition });
      } catch (err) {
        ctx.released.delete(call.callerChannelId);
        ctx.log.warn('could not send the caller to the no-answer dialplan; hanging up', { err });
      }
    }
    await this.rt.endCall(ctx, { disposition, hangupBy: 'system', reason: 'nobody_answered' });
  }

  /**
   * An adopted call whose route was lost with the old process: ask the CRM again and dial (a
   * greeting already started is not played again).
   */
  async resume(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const skipGreeting = call.phase === 'greeting';
    const decision = await this.rt.deps.routes.lookup({
      callId: call.id,
      from: call.from,
      did: call.did ?? call.to,
    });
    ctx.log.info('route decided again after a restart', {
      source: decision.source,
      action: decision.route.action.type,
    });
    const { greeting, ...rest } = decision.route;
    await this.rt.run(ctx, async () => {
      if (call.phase !== 'routing' && call.phase !== 'greeting') return;
      await this.applyRoute(ctx, skipGreeting || !greeting ? rest : { ...rest, greeting });
    });
  }
}
