/**
 * ARI events to calls, a part of the call runtime (src/calls/runtime.ts, whose `handleEvent`
 * hands every event here):
 *
 * - a StasisStart of a role a flow registered (`inbound`, `outbound`) starts a call of that flow;
 *   a StasisStart of a known call's channel is one of its engine legs entering Stasis (to dial);
 *   any other channel entering Stasis is hung up;
 * - a `PlaybackFinished` goes to the call waiting for it, then to its flow;
 * - an event of a channel no call tracks is dropped, unless the channel is a leg the engine gave
 *   up on that Asterisk created late: it is hung up (src/calls/unconfirmed.ts);
 * - every other event goes to the call owning its channel, in the call's per-call chain
 *   (`CallRuntime.run`): the caller's StasisEnd or ChannelDestroyed, a leg's ringing, answer and
 *   end go to the leg handlers (src/calls/leg-states.ts); what the runtime does not act on goes
 *   to the call's flow (`Flow.channelEvent`).
 *
 * A leg's ringing is announced on arrival, ahead of its turn in the chain, when only legs' set-up
 * and other ringing signals are queued before it (see the header of src/calls/runtime.ts).
 */
import type { AriChannel, AriEvent } from '../ari/types.ts';
import type { Leg } from './model.ts';
import type { CallContext, Flow } from './context.ts';
import type { LegStates } from './leg-states.ts';
import type { CallRuntime } from './runtime.ts';

/** The dispatch of ARI events to the runtime's calls and their flows. */
export class CallEventRouter {
  constructor(
    private readonly rt: CallRuntime,
    private readonly legStates: LegStates,
  ) {}

  /**
   * Entry point for ARI events (`CallRuntime.handleEvent`). Never throws: failures of a call's
   * handler are logged, counted and the call is cleaned up (`CallRuntime.run`).
   */
  handleEvent(event: AriEvent): void {
    if (event.type === 'StasisStart') {
      this.onStasisStart(event.channel, event.args);
      return;
    }
    if (event.type === 'PlaybackFinished') {
      const ctx = this.rt.byPlayback.get(event.playback.id);
      if (ctx) {
        this.rt.byPlayback.delete(event.playback.id);
        void this.rt.run(ctx, () => this.onPlaybackDone(ctx, event.playback.id));
      }
      return;
    }
    const channelId = channelIdOf(event);
    if (!channelId) return;
    const ctx = this.rt.byChannel.get(channelId);
    if (!ctx) {
      // A leg given up on whose channel Asterisk created late: hung up (src/calls/unconfirmed.ts).
      this.rt.unconfirmed.chase(channelId, event.type);
      return;
    }
    const leg = ctx.call.legs.get(channelId);
    const quiet = leg !== undefined && leg.role !== 'caller' && isQuietLegEvent(event, channelId);
    if (quiet && ctx.changingSteps === 0 && isRingingSignal(event, channelId))
      this.ringingNow(ctx, leg);
    void this.rt.run(
      ctx,
      () => this.onChannelEvent(ctx, channelId, event),
      quiet ? 'quiet' : 'change',
    );
  }

  /**
   * Announce a leg's ringing now, outside the per-call chain (see the header): nothing queued
   * before it may change the call. Otherwise (or when it is no news) its turn in the chain does.
   */
  private ringingNow(ctx: CallContext, leg: Leg): void {
    if (leg.hangupRequested || !this.legStates.markRinging(ctx, leg)) return;
    this.rt.handOff(ctx);
  }

  /**
   * A channel entered Stasis: a registered role (`args[0]`) starts a call of its flow; a
   * channel of a known call is one of its engine legs; anything else is hung up. A StasisStart
   * of a caller already routed by {@link startMissedCall} (it came late) is ignored.
   */
  private onStasisStart(channel: AriChannel, args: string[]): void {
    const flow = this.rt.startingFlow(args);
    if (flow) {
      const owner = this.rt.byChannel.get(channel.id);
      const leg = owner?.call.legs.get(channel.id);
      if (owner && leg?.role === 'caller' && !leg.ended && !owner.released.has(channel.id)) {
        owner.log.info('StasisStart of a caller already routed; ignored', {
          stasisArgs: args.join(','),
        });
        return;
      }
      this.startFlow(flow, channel, args);
      return;
    }
    const ctx = this.rt.byChannel.get(channel.id);
    if (ctx) {
      void this.rt.run(ctx, () => this.rt.onLegStasisStart(ctx, channel.id, args), 'leg-setup');
      return;
    }
    if (this.rt.unconfirmed.chase(channel.id, 'StasisStart')) return;
    this.rt.deps.logger.warn('channel entered Stasis for no known call; hanging it up', {
      channelId: channel.id,
      args,
    });
    void this.rt.deps.gateway.channels.hangup(channel.id).catch(() => undefined);
  }

  /**
   * Route a channel found in the app whose StasisStart never reached the engine (the event was
   * lost with the connection, or with a previous run before it stored the call) as that
   * StasisStart would have: `channel` as `GET /channels` shows it, `args` its Stasis arguments
   * (`inbound,<DID>`). False, doing nothing, when a call already holds the channel (its
   * StasisStart came meanwhile), when `args` start no call, or while the engine stops.
   */
  startMissedCall(channel: AriChannel, args: string[]): boolean {
    const flow = this.rt.startingFlow(args);
    if (!flow || this.rt.stopping || this.rt.byChannel.has(channel.id)) return false;
    this.rt.deps.logger.warn('routing a caller whose StasisStart was missed', {
      channelId: channel.id,
      channel: channel.name,
      state: channel.state,
      stasisArgs: args.join(','),
    });
    this.startFlow(flow, channel, args);
    return true;
  }

  /**
   * Start a call of `flow` for `channel` ({@link Flow.start}), tracked in
   * `CallRuntime.starting`.
   */
  private startFlow(flow: Flow, channel: AriChannel, args: string[]): void {
    const started = flow.start!(channel, args);
    this.rt.starting.add(started);
    void started.finally(() => this.rt.starting.delete(started));
  }

  /** The playback finished (or was found gone by a reconciliation): the flow goes on. */
  onPlaybackDone(ctx: CallContext, playbackId: string): Promise<void> {
    ctx.playbacks.delete(playbackId);
    return this.rt.flowOf(ctx).playbackFinished?.(ctx, playbackId) ?? Promise.resolve();
  }

  private async onChannelEvent(
    ctx: CallContext,
    channelId: string,
    event: AriEvent,
  ): Promise<void> {
    const leg = ctx.call.legs.get(channelId);
    if (!leg) return;
    if (leg.role === 'caller') {
      if ((event.type === 'StasisEnd' || event.type === 'ChannelDestroyed') && !leg.ended) {
        leg.ended = true;
        leg.endedAt = this.rt.now();
        this.rt.byChannel.delete(channelId);
        await this.legStates.onCallerGone(ctx, leg);
      } else if (event.type === 'ChannelStateChange' && event.channel.state === 'Up') {
        ctx.callerAnswered = true;
      } else {
        await this.toFlow(ctx, leg, event);
      }
      this.rt.maybeForget(ctx);
      return;
    }
    switch (event.type) {
      case 'Dial':
        if (event.peer.id !== channelId) return;
        if (event.dialstatus === 'RINGING') await this.legStates.onLegRinging(ctx, leg);
        else if (event.dialstatus === 'ANSWER') await this.legStates.onLegAnswered(ctx, leg);
        return;
      case 'ChannelStateChange':
        if (event.channel.state === 'Ringing') await this.legStates.onLegRinging(ctx, leg);
        else if (event.channel.state === 'Up') await this.legStates.onLegAnswered(ctx, leg);
        return;
      case 'ChannelDestroyed':
        leg.cause = event.cause;
        leg.causeText = event.cause_txt;
        await this.legStates.onLegGone(ctx, leg);
        return;
      case 'StasisEnd':
        if (ctx.released.has(channelId)) {
          // Handed to the dialplan by a transfer: no longer ours.
          leg.ended = true;
          this.rt.byChannel.delete(channelId);
          this.rt.maybeForget(ctx);
        }
        return;
      default:
        await this.toFlow(ctx, leg, event);
        return;
    }
  }

  /** An event the runtime does not act on: to the flow's {@link Flow.channelEvent}, if any. */
  private async toFlow(ctx: CallContext, leg: Leg, event: AriEvent): Promise<void> {
    const flow = this.rt.flowOf(ctx);
    if (flow.channelEvent) await flow.channelEvent(ctx, leg, event);
  }
}

/**
 * An event of an engine leg (not the caller) that can at most mark the leg ringing: a `Dial`
 * other than ANSWER, a `ChannelStateChange` other than Up (see `onChannelEvent`).
 */
function isQuietLegEvent(event: AriEvent, channelId: string): boolean {
  if (event.type === 'Dial') return event.peer.id === channelId && event.dialstatus !== 'ANSWER';
  if (event.type === 'ChannelStateChange') return event.channel.state !== 'Up';
  return false;
}

/** `Dial RINGING` or `ChannelStateChange` Ringing of the leg: its phone rings. */
function isRingingSignal(event: AriEvent, channelId: string): boolean {
  if (event.type === 'Dial') return event.peer.id === channelId && event.dialstatus === 'RINGING';
  return event.type === 'ChannelStateChange' && event.channel.state === 'Ringing';
}

/** The channel an event is about: `channel`, or `peer` for Dial events. */
function channelIdOf(event: AriEvent): string | undefined {
  if ('channel' in event && event.channel) return event.channel.id;
  if (event.type === 'Dial') return event.peer.id;
  return undefined;
}
