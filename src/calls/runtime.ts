/**
 * The call runtime: what every call flow shares, over the ARI gateway. The engine owns every
 * channel and bridge of its calls (Asterisk never hangs up the other leg nor destroys a bridge,
 * fixtures fact 9), so the runtime holds:
 *
 * - the live calls (by call id, by channel, by playback) and their per-call ordering ({@link run});
 * - the legs: engine legs created with client-generated ids, dialled once created and in Stasis,
 *   hung up; the mixing bridge of the first answer ({@link CallRuntime.connect});
 * - the end of a call ({@link CallRuntime.endCall}): hang-ups, bridge destruction, `call.ended`;
 *   the hand-off of every change to the journal (store) and the watchers; forgetting the call;
 * - the dispatch of ARI events: a StasisStart of a registered role starts a call of that flow
 *   (src/calls/flows/), every other event goes to the call owning its channel or playback, and
 *   the moments where flows differ go to the call's {@link Flow}.
 *
 * Concurrency: events of one call are handled one at a time, in arrival order (a per-call promise
 * chain), so a flow never sees half-applied state. Long waits (the CRM lookup, a greeting, the
 * period between operator tries) happen outside that chain; every step re-checks the phase.
 * One exception keeps the screen pop fast: a leg's ringing (`ChannelStateChange` Ringing,
 * `Dial` RINGING) is announced on arrival when the only steps ahead of it are legs' set-up
 * (a leg's StasisStart waiting for ARI's answer to its `dial`, a click-to-call originate) and
 * other ringing signals, none of which can make the ringing wrong; its own turn in the chain
 * then finds it done.
 */
import { randomUUID } from 'node:crypto';
import type { Counter, Gauge } from 'prom-client';
import { counter, gauge } from '../metrics/registry.ts';
import type { AriChannel, AriEvent, HangupParams } from '../ari/types.ts';
import type { Logger } from '../logging/logger.ts';
import {
  AriBadRequestError,
  AriConnectionError,
  AriNotFoundError,
  AriServerError,
} from '../ari/errors.ts';
import {
  type Call,
  type CallSnapshot,
  type Direction,
  type Disposition,
  type HangupBy,
  type Leg,
  legOutcomeFromCause,
  snapshotCall,
} from './model.ts';
import { customerEndpoint, operatorEndpoint } from './dialstrings.ts';
import { CallNotFoundError, CallStateError } from './control.ts';
import type {
  CallContext,
  CallRecorder,
  CallServiceDeps,
  Flow,
  FlowName,
  TransferTargetHandlers,
} from './context.ts';

const HANGUP_REASON: Record<Disposition, HangupParams['reason']> = {
  answered: 'normal',
  busy: 'busy',
  no_answer: 'no_answer',
  canceled: 'normal',
  failed: 'congestion',
};

/** What the runtime tells the call service's in-process listeners. */
export interface RuntimeEvents {
  /** `call.ended` of this call was just emitted. */
  ended(call: CallSnapshot): void;
  /** The runtime let go of the call with this id (only the store knows it now). */
  released(callId: string): void;
}

/**
 * The call runtime. Flows register with {@link registerFlow}; feed it every ARI event with
 * {@link handleEvent}. Used by the flows and the call service only (src/calls/).
 */
export class CallRuntime {
  /** Live calls by the id of each of their channels still tracked. */
  readonly byChannel = new Map<string, CallContext>();
  /** Calls by the id of a playback whose `PlaybackFinished` they wait for. */
  readonly byPlayback = new Map<string, CallContext>();
  /** Calls held, by call id: in progress, or ended and not yet committed to the store. */
  readonly active = new Map<string, CallContext>();
  /**
   * Calls still starting in their flow (`Flow.start`, e.g. an inbound call waiting for its CRM
   * route), until that start has run: `CallService.settled` waits for them.
   */
  readonly starting = new Set<Promise<void>>();
  /** Listeners of `CallService.watchCall`, by call id. */
  readonly watchers = new Map<string, Set<(call: CallSnapshot) => void>>();
  readonly now: () => number;
  /** The recordings domain, once plugged in (`CallService.setRecorder`). */
  recorder: CallRecorder | undefined;
  /**
   * Called when a step failed because ARI was unreachable (the call is marked
   * {@link CallContext.needsRepair}): the reconciliation (src/calls/recovery.ts) repairs it.
   */
  repairNeeded: () => void = () => undefined;
  /**
   * The engine is stopping (`CallService.stop`): no call step starts on its own any more (a
   * click-to-call operator is not rung again); steps already under way go on.
   */
  stopping = false;
  /**
   * Channels the engine may have left in Asterisk: engine legs whose create or originate got no
   * answer from ARI (AriConnectionError, the request may have been carried out), given up on and
   * not hung up yet, by channel id, with their call's logger. See {@link hangUpUnconfirmed}.
   */
  readonly unconfirmedChannels = new Map<string, Logger>();
  private readonly flows = new Map<FlowName, Flow>();
  private readonly flowByRole = new Map<string, Flow>();
  private transfer: TransferTargetHandlers | undefined;
  private readonly activeGauge: Gauge<'direction'>;
  private readonly endedCounter: Counter<'direction' | 'disposition'>;
  private readonly failures: Counter;

  constructor(
    readonly deps: CallServiceDeps,
    private readonly events: RuntimeEvents,
  ) {
    this.now = deps.now ?? Date.now;
    this.activeGauge = gauge(deps.registry, {
      name: 'aricrm_calls_active',
      help: 'Calls in progress, by direction.',
      labelNames: ['direction'] as const,
    });
    this.endedCounter = counter(deps.registry, {
      name: 'aricrm_calls_ended_total',
      help: 'Calls ended, by direction and disposition.',
      labelNames: ['direction', 'disposition'] as const,
    });
    this.failures = counter(deps.registry, {
      name: 'aricrm_call_handler_errors_total',
      help: 'Call flow steps that failed unexpectedly (the call was cleaned up).',
    });
  }

  /**
   * Make `flow` drive the calls whose context names it, and start its calls on a StasisStart of
   * its {@link Flow.stasisRoles}. Throws when the flow name or a role is already taken.
   */
  registerFlow(flow: Flow): void {
    if (this.flows.has(flow.name)) throw new Error(`flow ${flow.name} is already registered`);
    for (const role of flow.stasisRoles)
      if (this.flowByRole.has(role)) throw new Error(`Stasis role ${role} is already taken`);
    this.flows.set(flow.name, flow);
    for (const role of flow.stasisRoles) this.flowByRole.set(role, flow);
  }

  /** Let the blind transfer handle the leg ringing a transfer target ({@link isTransferLeg}). */
  setTransferHandlers(handlers: TransferTargetHandlers): void {
    this.transfer = handlers;
  }

  /** The flow driving the call. Throws for a flow nobody registered (a wiring bug). */
  flowOf(ctx: CallContext): Flow {
    const flow = this.flows.get(ctx.flow);
    if (!flow) throw new Error(`no flow ${ctx.flow} registered`);
    return flow;
  }

  /**
   * Entry point for ARI events (subscribe it to the gateway). Never throws: failures of a call's
   * handler are logged, counted and the call is cleaned up.
   */
  handleEvent(event: AriEvent): void {
    if (event.type === 'StasisStart') {
      this.onStasisStart(event.channel, event.args);
      return;
    }
    if (event.type === 'PlaybackFinished') {
      const ctx = this.byPlayback.get(event.playback.id);
      if (ctx) {
        this.byPlayback.delete(event.playback.id);
        void this.run(ctx, () => this.onPlaybackDone(ctx, event.playback.id));
      }
      return;
    }
    const channelId = channelIdOf(event);
    if (!channelId) return;
    const ctx = this.byChannel.get(channelId);
    if (!ctx) return;
    const leg = ctx.call.legs.get(channelId);
    const quiet = leg !== undefined && leg.role !== 'caller' && isQuietLegEvent(event, channelId);
    if (quiet && ctx.changingSteps === 0 && isRingingSignal(event, channelId))
      this.ringingNow(ctx, leg);
    void this.run(
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
    if (leg.hangupRequested || !this.markRinging(ctx, leg)) return;
    this.deps.journal?.record(ctx.call);
    this.notifyWatchers(ctx);
  }

  /**
   * A channel entered Stasis: a registered role (`args[0]`) starts a call of its flow; a
   * channel of a known call is one of its engine legs; anything else is hung up. A StasisStart
   * of a caller already routed by {@link startMissedCall} (it came late) is ignored.
   */
  private onStasisStart(channel: AriChannel, args: string[]): void {
    const flow = this.startingFlow(args);
    if (flow) {
      const owner = this.byChannel.get(channel.id);
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
    const ctx = this.byChannel.get(channel.id);
    if (ctx) {
      void this.run(ctx, () => this.onLegStasisStart(ctx, channel.id, args), 'leg-setup');
      return;
    }
    this.deps.logger.warn('channel entered Stasis for no known call; hanging it up', {
      channelId: channel.id,
      args,
    });
    void this.deps.gateway.channels.hangup(channel.id).catch(() => undefined);
  }

  /**
   * The flow a channel entering Stasis with `args` starts a call of (`args[0]` a role of its
   * {@link Flow.stasisRoles}, the flow having a `start`: `inbound`, `outbound`), if any. The
   * engine's own channels (operator and customer legs, originates, notification calls) carry
   * roles no flow starts calls with.
   */
  startingFlow(args: readonly string[]): Flow | undefined {
    const flow = args[0] === undefined ? undefined : this.flowByRole.get(args[0]);
    return flow?.start ? flow : undefined;
  }

  /**
   * Route a channel found in the app whose StasisStart never reached the engine (the event was
   * lost with the connection, or with a previous run before it stored the call) as that
   * StasisStart would have: `channel` as `GET /channels` shows it, `args` its Stasis arguments
   * (`inbound,<DID>`). False, doing nothing, when a call already holds the channel (its
   * StasisStart came meanwhile), when `args` start no call, or while the engine stops.
   */
  startMissedCall(channel: AriChannel, args: string[]): boolean {
    const flow = this.startingFlow(args);
    if (!flow || this.stopping || this.byChannel.has(channel.id)) return false;
    this.deps.logger.warn('routing a caller whose StasisStart was missed', {
      channelId: channel.id,
      channel: channel.name,
      state: channel.state,
      stasisArgs: args.join(','),
    });
    this.startFlow(flow, channel, args);
    return true;
  }

  /** Start a call of `flow` for `channel` ({@link Flow.start}), tracked in {@link starting}. */
  private startFlow(flow: Flow, channel: AriChannel, args: string[]): void {
    const started = flow.start!(channel, args);
    this.starting.add(started);
    void started.finally(() => this.starting.delete(started));
  }

  /** The playback finished (or was found gone by a reconciliation): the flow goes on. */
  onPlaybackDone(ctx: CallContext, playbackId: string): Promise<void> {
    ctx.playbacks.delete(playbackId);
    return this.flowOf(ctx).playbackFinished?.(ctx, playbackId) ?? Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Calls
  // -------------------------------------------------------------------------------------------

  /** Hold a new call driven by `flow` (counted in `aricrm_calls_active`). */
  register(call: Call, flow: FlowName, anchorChannelId: string): CallContext {
    const ctx: CallContext = {
      call,
      flow,
      log: this.deps.logger.child(
        anchorChannelId ? { callId: call.id, channelId: anchorChannelId } : { callId: call.id },
      ),
      tail: Promise.resolve(),
      changingSteps: 0,
      pending: [],
      ringTimeoutSec: this.deps.options.defaultRingTimeoutSec,
      anchorChannelId,
      playbacks: new Set(),
      callerAnswered: false,
      released: new Set(),
      transferring: false,
    };
    this.active.set(call.id, ctx);
    this.activeGauge.inc({ direction: call.direction });
    return ctx;
  }

  /** A call whose first channel came from the dialplan (inbound, outbound). */
  dialplanCall(
    channel: AriChannel,
    flow: FlowName,
    direction: Direction,
    from: string,
    to: string,
  ): CallContext {
    const now = this.now();
    const call: Call = {
      id: randomUUID(),
      direction,
      from,
      to,
      callerName:
        channel.caller.name && channel.caller.name !== channel.caller.number
          ? channel.caller.name
          : undefined,
      phase: 'routing',
      legs: new Map(),
      callerChannelId: channel.id,
      startedAt: now,
      nextSequence: 1,
    };
    call.legs.set(channel.id, {
      channelId: channel.id,
      role: 'caller',
      endpoint: channel.name,
      createdByEngine: false,
      created: true,
      inStasis: true,
      dialed: false,
      ringing: false,
      answered: channel.state === 'Up',
      ended: false,
      hangupRequested: false,
      createdAt: now,
    });
    const ctx = this.register(call, flow, channel.id);
    ctx.callerAnswered = channel.state === 'Up';
    this.byChannel.set(channel.id, ctx);
    return ctx;
  }

  /**
   * The context of a call in progress. Throws CallStateError('call_ended') for an ended call the
   * service still holds, CallNotFoundError otherwise (unknown, or ended and only in the store:
   * the API tells those two apart from the store, src/calls/routes.ts).
   */
  liveContext(callId: string): CallContext {
    const ctx = this.active.get(callId);
    if (ctx && ctx.call.phase !== 'ended') return ctx;
    if (ctx) throw new CallStateError('call_ended', `call ${callId} has ended`);
    throw new CallNotFoundError(callId);
  }

  /** The customer's channel of a call: the inbound caller, or the customer leg. */
  customerLeg(ctx: CallContext): Leg | undefined {
    const legs = [...ctx.call.legs.values()].filter((leg) => !leg.ended);
    if (this.flowOf(ctx).callerChannel === 'customer')
      return legs.find((leg) => leg.role === 'caller');
    return legs.find((leg) => leg.role === 'customer');
  }

  /** The operator's channel on a bridged call. */
  operatorLeg(ctx: CallContext): Leg | undefined {
    const legs = [...ctx.call.legs.values()].filter((leg) => !leg.ended && !leg.hangupRequested);
    return (
      legs.find((leg) => leg.role === 'operator' && leg.outcome === 'answered') ??
      (this.flowOf(ctx).callerChannel === 'operator-phone'
        ? legs.find((leg) => leg.role === 'caller')
        : undefined)
    );
  }

  /** The customer's number: the inbound caller's, else the number dialled. */
  customerNumber(ctx: CallContext): string {
    return this.flowOf(ctx).callerChannel === 'customer' ? ctx.call.from : ctx.call.to;
  }

  /** Map a playback of the call so that its `PlaybackFinished` reaches the call's flow. */
  trackPlayback(ctx: CallContext, playbackId: string): void {
    ctx.playbacks.add(playbackId);
    this.byPlayback.set(playbackId, ctx);
  }

  /** The playback could not be started: forget it. */
  untrackPlayback(ctx: CallContext, playbackId: string): void {
    ctx.playbacks.delete(playbackId);
    this.byPlayback.delete(playbackId);
  }

  // -------------------------------------------------------------------------------------------
  // Legs
  // -------------------------------------------------------------------------------------------

  /** A new engine leg (`op-<uuid>`, `cu-<uuid>`), registered before it is created. */
  addEngineLeg(
    ctx: CallContext,
    role: 'operator' | 'customer',
    endpoint: string,
    extension: string | undefined,
  ): Leg {
    const prefix = role === 'operator' ? 'op' : 'cu';
    const leg: Leg = {
      channelId: `${prefix}-${randomUUID()}`,
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
      createdAt: this.now(),
    };
    // Registered before the create so that a StasisStart arriving before the create's answer
    // (fixtures fact 1) already finds its call.
    ctx.call.legs.set(leg.channelId, leg);
    this.byChannel.set(leg.channelId, ctx);
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
    const name = call.customer?.name ?? call.callerName ?? this.customerNumber(ctx);
    const endpoint = operatorEndpoint(extension, this.deps.options.operatorEndpoint);
    const leg = this.addEngineLeg(ctx, 'operator', endpoint, extension);
    beforeCreate?.(leg);
    await this.createLeg(ctx, leg, ['operator', call.id], {
      'CALLERID(name)': `${this.deps.options.callerIdPrefix}${name}`,
      'CALLERID(num)': this.customerNumber(ctx),
    });
    return leg;
  }

  /** Create the customer leg through the trunk chosen by prefix, with the company caller ID. */
  async placeCustomerLeg(ctx: CallContext): Promise<void> {
    let endpoint: string;
    try {
      endpoint = customerEndpoint(ctx.call.to, this.deps.options.trunks);
    } catch {
      await this.endCall(ctx, { disposition: 'failed', hangupBy: 'system', reason: 'no_trunk' });
      return;
    }
    ctx.ringTimeoutSec = this.deps.options.outboundRingTimeoutSec;
    const leg = this.addEngineLeg(ctx, 'customer', endpoint, undefined);
    await this.createLeg(
      ctx,
      leg,
      ['customer', ctx.call.id],
      { 'CALLERID(num)': this.deps.options.companyCallerId },
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
      await this.deps.gateway.channels.create({
        endpoint: leg.endpoint!,
        channelId: leg.channelId,
        appArgs,
        variables,
        ...(originator ? { originator } : {}),
      });
      leg.created = true;
    } catch (err) {
      this.legNotCreated(ctx, leg, err);
      await this.afterUnansweredLeg(ctx, leg);
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
   * ({@link hangUpUnconfirmed}).
   */
  legNotCreated(ctx: CallContext, leg: Leg, err: unknown): void {
    leg.ended = true;
    leg.endedAt = this.now();
    leg.outcome = err instanceof AriServerError ? 'unavailable' : 'failed';
    this.byChannel.delete(leg.channelId);
    ctx.log.warn('could not create leg', {
      legChannelId: leg.channelId,
      endpoint: leg.endpoint,
      err,
    });
    if (err instanceof AriConnectionError) this.hangUpUnconfirmed(ctx.log, leg.channelId);
  }

  /**
   * Make sure no channel `channelId` stays in Asterisk (a leg given up on whose create or
   * originate got no answer, {@link legNotCreated}): `DELETE /channels/{id}` now if ARI is
   * connected, and again at every connect ({@link hangUpUnconfirmedChannels}) until Asterisk
   * answers: hung up (logged at info), or 404 (the request never took effect). Never throws.
   */
  hangUpUnconfirmed(log: Logger, channelId: string): void {
    this.unconfirmedChannels.set(channelId, log);
    if (this.deps.gateway.isConnected()) void this.tryUnconfirmedHangup(channelId);
  }

  /**
   * ARI connected (again): hang up the channels of {@link unconfirmedChannels} (see
   * {@link hangUpUnconfirmed}). Resolves once each was tried; never rejects.
   */
  async hangUpUnconfirmedChannels(): Promise<void> {
    await Promise.all(
      [...this.unconfirmedChannels.keys()].map((id) => this.tryUnconfirmedHangup(id)),
    );
  }

  private async tryUnconfirmedHangup(channelId: string): Promise<void> {
    const log = this.unconfirmedChannels.get(channelId);
    if (!log) return;
    try {
      await this.deps.gateway.channels.hangup(channelId);
      this.unconfirmedChannels.delete(channelId);
      log.info('hung up the channel of a leg whose creation got no answer from Asterisk', {
        legChannelId: channelId,
      });
    } catch (err) {
      if (err instanceof AriConnectionError) return; // tried again at the next connect
      this.unconfirmedChannels.delete(channelId);
      if (!isGone(err))
        log.warn('could not hang up the channel of a leg whose creation got no answer', {
          legChannelId: channelId,
          err,
        });
    }
  }

  /**
   * StasisStart of an engine leg (`args`: its Stasis arguments, e.g. `operator,<callId>`; none
   * when a reconciliation found it in Stasis): dial it, or hang it up if the call moved on.
   */
  async onLegStasisStart(ctx: CallContext, channelId: string, args: string[] = []): Promise<void> {
    const leg = ctx.call.legs.get(channelId);
    if (!leg) return;
    const flow = this.flowOf(ctx);
    // Back from the dialplan, and already handled (a reconciliation found it in Stasis before
    // its StasisStart came): nothing more to do.
    if (flow.legBackInStasis && leg.answered && leg.inStasis && !leg.inDialplan) return;
    leg.inStasis = true;
    if (this.isTransferLeg(ctx, leg)) {
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
    const transfer = this.isTransferLeg(ctx, leg);
    if (ctx.call.phase !== 'dialing' && !transfer) {
      await this.hangupLeg(ctx, leg);
      return;
    }
    leg.dialed = true;
    try {
      // A transfer target rings on behalf of the customer, for the default operator ring time.
      await this.deps.gateway.channels.dial(leg.channelId, {
        caller: transfer
          ? (this.customerLeg(ctx)?.channelId ?? ctx.anchorChannelId)
          : ctx.anchorChannelId,
        timeoutSec: transfer ? this.deps.options.defaultRingTimeoutSec : ctx.ringTimeoutSec,
      });
      ctx.log.debug('leg dialled', { legChannelId: leg.channelId, endpoint: leg.endpoint });
    } catch (err) {
      if (isGone(err)) return; // its ChannelDestroyed follows
      ctx.log.warn('dial failed; hanging the leg up', { legChannelId: leg.channelId, err });
      leg.outcome = 'failed';
      await this.hangupLeg(ctx, leg);
    }
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
        leg.endedAt = this.now();
        this.byChannel.delete(channelId);
        await this.onCallerGone(ctx, leg);
      } else if (event.type === 'ChannelStateChange' && event.channel.state === 'Up') {
        ctx.callerAnswered = true;
      } else {
        await this.toFlow(ctx, leg, event);
      }
      this.maybeForget(ctx);
      return;
    }
    switch (event.type) {
      case 'Dial':
        if (event.peer.id !== channelId) return;
        if (event.dialstatus === 'RINGING') await this.onLegRinging(ctx, leg);
        else if (event.dialstatus === 'ANSWER') await this.onLegAnswered(ctx, leg);
        return;
      case 'ChannelStateChange':
        if (event.channel.state === 'Ringing') await this.onLegRinging(ctx, leg);
        else if (event.channel.state === 'Up') await this.onLegAnswered(ctx, leg);
        return;
      case 'ChannelDestroyed':
        leg.cause = event.cause;
        leg.causeText = event.cause_txt;
        await this.onLegGone(ctx, leg);
        return;
      case 'StasisEnd':
        if (ctx.released.has(channelId)) {
          // Handed to the dialplan by a transfer: no longer ours.
          leg.ended = true;
          this.byChannel.delete(channelId);
          this.maybeForget(ctx);
        }
        return;
      default:
        await this.toFlow(ctx, leg, event);
        return;
    }
  }

  /** An event the runtime does not act on: to the flow's {@link Flow.channelEvent}, if any. */
  private async toFlow(ctx: CallContext, leg: Leg, event: AriEvent): Promise<void> {
    const flow = this.flowOf(ctx);
    if (flow.channelEvent) await flow.channelEvent(ctx, leg, event);
  }

  /** `Dial RINGING` of a leg: `call.ringing` for an operator (the screen pop). */
  async onLegRinging(ctx: CallContext, leg: Leg): Promise<void> {
    this.markRinging(ctx, leg);
  }

  /** Mark the leg ringing and announce an operator's; false when that was no news. */
  private markRinging(ctx: CallContext, leg: Leg): boolean {
    if (leg.ringing || leg.answered || leg.ended) return false;
    leg.ringing = true;
    ctx.log.info('leg ringing', {
      legChannelId: leg.channelId,
      extension: leg.extension,
      endpoint: leg.endpoint,
    });
    if (leg.role === 'operator' && (ctx.call.phase === 'dialing' || this.isTransferLeg(ctx, leg)))
      this.deps.notifier.ringing(ctx.call, leg);
    return true;
  }

  /** `Dial ANSWER` of a leg: the transfer target, the flow's answer, or too late. */
  async onLegAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.answered || leg.ended) return;
    leg.answered = true;
    leg.answeredAt = this.now();
    if (this.isTransferLeg(ctx, leg) && !leg.hangupRequested) {
      await this.transfer?.targetAnswered(ctx, leg);
      return;
    }
    if (ctx.call.phase !== 'dialing' || leg.hangupRequested) {
      ctx.log.info('leg answered after the call moved on; hanging it up', {
        legChannelId: leg.channelId,
      });
      await this.hangupLeg(ctx, leg);
      return;
    }
    const flow = this.flowOf(ctx);
    if (flow.legAnswered) await flow.legAnswered(ctx, leg);
    else await this.connect(ctx, leg);
  }

  /** First answer wins: bridge it with the anchor, cancel the other dialled legs. */
  async connect(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    call.phase = 'bridged';
    call.answeredAt ??= leg.answeredAt;
    leg.outcome = 'answered';
    const extension = leg.role === 'operator' ? leg.extension : call.operatorExtension;
    call.answeredBy ??= extension;
    ctx.pending = [];
    ctx.transferring = false;
    if (extension) this.deps.notifier.answered(call, extension);
    const others = [...call.legs.values()].filter(
      (l) => l !== leg && l.channelId !== ctx.anchorChannelId && l.role !== 'caller' && !l.ended,
    );
    await Promise.all(others.map((other) => this.hangupLeg(ctx, other)));
    const bridgeId = call.bridgeId ?? `br-${randomUUID()}`;
    try {
      await this.answerCaller(ctx);
      if (call.bridgeId) {
        await this.deps.gateway.bridges.addChannel(bridgeId, [leg.channelId]);
      } else {
        await this.deps.gateway.bridges.create({
          bridgeId,
          type: ['mixing'],
          name: `call-${call.id}`,
        });
        call.bridgeId = bridgeId;
        await this.deps.gateway.bridges.addChannel(bridgeId, [ctx.anchorChannelId, leg.channelId]);
        await this.recorder?.bridgeCreated(call, bridgeId, this.recordOverride(ctx));
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
    leg.endedAt = this.now();
    this.byChannel.delete(leg.channelId);
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
    this.maybeForget(ctx);
  }

  /** `StasisEnd` of the caller channel (the dialplan leg). */
  async onCallerGone(ctx: CallContext, leg: Leg): Promise<void> {
    if (ctx.call.phase === 'ended') return;
    if (leg.hangupRequested) return; // dropped by a blind transfer
    await this.onPartyGone(
      ctx,
      this.flowOf(ctx).callerChannel === 'customer' ? 'caller' : 'operator',
    );
  }

  /** A party that had answered (or the caller) left: end the call. */
  private async onPartyGone(ctx: CallContext, by: HangupBy): Promise<void> {
    if (ctx.endAfterBeep) {
      await this.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
    } else if (ctx.call.answeredAt !== undefined) {
      await this.endCall(ctx, { disposition: 'answered', hangupBy: by });
    } else {
      // Abandoned while ringing: every dialled leg is hung up at once (fixtures fact 6).
      await this.endCall(ctx, { disposition: 'canceled', hangupBy: by, reason: 'abandoned' });
    }
  }

  /**
   * A dialled leg ended unanswered (or was never created): the transfer is called off, an
   * adopted call's transfer with nobody left ringing ends, else the flow goes on
   * ({@link Flow.legUnanswered}: retry, next extension, or end the call).
   */
  async afterUnansweredLeg(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    if (this.isTransferLeg(ctx, leg)) {
      await this.transfer?.targetFailed(ctx, leg);
      return;
    }
    if (call.phase !== 'dialing') return;
    if (ctx.transferring) {
      if (
        [...call.legs.values()].some((l) => l.role === 'operator' && !l.ended && !l.hangupRequested)
      )
        return;
      await this.endCall(ctx, {
        disposition: 'answered',
        hangupBy: 'system',
        reason: 'transfer_failed',
      });
      return;
    }
    await this.flowOf(ctx).legUnanswered(ctx, leg);
  }

  /** The leg is the target of the blind transfer in progress. */
  isTransferLeg(ctx: CallContext, leg: Leg): boolean {
    return ctx.call.phase !== 'ended' && ctx.call.transfer?.channelId === leg.channelId;
  }

  // -------------------------------------------------------------------------------------------
  // Channels of the caller
  // -------------------------------------------------------------------------------------------

  /**
   * Ring the caller's channel (180) unless it is answered. False when the caller already hung up
   * (404): its StasisEnd, queued behind this step, ends the call as abandoned.
   */
  async ringCaller(ctx: CallContext): Promise<boolean> {
    if (ctx.callerAnswered) return true;
    try {
      await this.deps.gateway.channels.ring(ctx.call.callerChannelId);
      return true;
    } catch (err) {
      if (!isGone(err)) throw err;
      ctx.log.info('the caller hung up before the call was rung');
      return false;
    }
  }

  /** Answer the caller's channel (not an engine-originated operator leg: it answered itself). */
  async answerCaller(ctx: CallContext): Promise<void> {
    if (ctx.callerAnswered || this.flowOf(ctx).callerChannel === 'operator-leg') return;
    await this.deps.gateway.channels.answer(ctx.call.callerChannelId);
    ctx.callerAnswered = true;
  }

  /** Ask Asterisk to hang a leg up; a leg already gone (404) counts as done. */
  async hangupLeg(ctx: CallContext, leg: Leg, reason?: HangupParams['reason']): Promise<void> {
    if (leg.ended || leg.hangupRequested) return;
    leg.hangupRequested = true;
    try {
      await this.deps.gateway.channels.hangup(leg.channelId, reason ? { reason } : undefined);
    } catch (err) {
      if (isGone(err)) {
        if (leg.role === 'caller') {
          leg.ended = true;
          this.byChannel.delete(leg.channelId);
        }
        return;
      }
      ctx.log.warn('hangup failed', { legChannelId: leg.channelId, err });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ending
  // -------------------------------------------------------------------------------------------

  /**
   * End the call: hang up every leg still ours (the caller with the cause of the disposition),
   * destroy the bridge, `call.ended` (with the recording link), then forget the call once its
   * channels are gone. No-op for an ended call.
   */
  async endCall(
    ctx: CallContext,
    outcome: { disposition: Disposition; hangupBy: HangupBy; reason?: string },
  ): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    call.phase = 'ended';
    call.endedAt = this.now();
    call.disposition = outcome.disposition;
    call.hangupBy = outcome.hangupBy;
    call.endReason = outcome.reason ?? (ctx.reconciling ? 'reconciled' : undefined);
    // A finished call's legs all have an end time: a leg still up gets the call's, replaced by
    // the time Asterisk reports its channel gone if that report comes (it may not: the engine
    // stopping closes ARI first, docs/operations.md "What a stop guarantees"). A dialled leg
    // with no outcome yet is cancelled by this end: `canceled`, what its ChannelDestroyed after
    // the hang-up gives (onLegGone), which replaces it if it comes.
    for (const leg of call.legs.values()) {
      if (leg.ended) continue;
      leg.endedAt ??= call.endedAt;
      if (leg.role !== 'caller' && !ctx.released.has(leg.channelId)) leg.outcome ??= 'canceled';
    }
    ctx.pending = [];
    ctx.transferring = false;
    call.transfer = undefined;
    if (ctx.retryTimer) clearTimeout(ctx.retryTimer);
    for (const id of ctx.playbacks) this.byPlayback.delete(id);
    const reason = HANGUP_REASON[outcome.disposition];
    const cleanup: Array<Promise<void>> = [];
    for (const leg of call.legs.values()) {
      if (leg.ended || leg.hangupRequested || ctx.released.has(leg.channelId)) continue;
      if (leg.role !== 'caller' && !leg.created) continue; // its StasisStart finds no dialling call
      cleanup.push(this.hangupLeg(ctx, leg, leg.role === 'caller' ? reason : undefined));
    }
    await Promise.all(cleanup);
    if (call.bridgeId) {
      try {
        await this.deps.gateway.bridges.destroy(call.bridgeId);
      } catch (err) {
        if (!isGone(err))
          ctx.log.warn('could not destroy the bridge', { bridgeId: call.bridgeId, err });
      }
    }
    this.activeGauge.dec({ direction: call.direction });
    this.endedCounter.inc({ direction: call.direction, disposition: outcome.disposition });
    const snapshot = snapshotCall(call, this.now());
    ctx.log.info('call ended', {
      disposition: snapshot.disposition,
      hangupBy: snapshot.hangupBy,
      endReason: snapshot.endReason,
      answeredBy: snapshot.answeredBy,
      waitSec: snapshot.waitSec,
      talkSec: snapshot.talkSec,
    });
    this.deps.notifier.ended(call, this.recorder?.recordingUrl(call.id));
    this.recorder?.callEnded(call);
    this.events.ended(snapshot);
    // Safety net: stop tracking channels whose end events never come.
    ctx.forgetTimer = setTimeout(() => this.forget(ctx), 60_000);
    ctx.forgetTimer.unref();
    this.maybeForget(ctx);
  }

  /** Stop tracking a call once it has ended and all its channels are gone. */
  maybeForget(ctx: CallContext): void {
    if (ctx.call.phase !== 'ended') return;
    const open = [...ctx.call.legs.values()].some(
      (leg) =>
        !leg.ended && !ctx.released.has(leg.channelId) && (leg.created || leg.role === 'caller'),
    );
    if (!open) this.forget(ctx);
  }

  /**
   * Stop tracking a call: at once its channels and playbacks (its watchers went with its end,
   * {@link notifyWatchers}); the call itself once the journal has committed its last change
   * (until then `CallService.getCall` and the API answer it from memory, so it is never missing
   * while the store lags a turn behind, or fails). Nothing of the call stays in the runtime
   * afterwards.
   */
  forget(ctx: CallContext): void {
    if (ctx.forgetTimer) clearTimeout(ctx.forgetTimer);
    ctx.forgetTimer = undefined;
    for (const leg of ctx.call.legs.values()) {
      if (this.byChannel.get(leg.channelId) === ctx) this.byChannel.delete(leg.channelId);
    }
    for (const id of ctx.playbacks) if (this.byPlayback.get(id) === ctx) this.byPlayback.delete(id);
    if (ctx.forgotten) return;
    ctx.forgotten = true;
    const drop = (): void => {
      if (this.active.get(ctx.call.id) !== ctx) return;
      this.active.delete(ctx.call.id);
      this.deps.journal?.release?.(ctx.call.id);
      this.events.released(ctx.call.id);
    };
    const journal = this.deps.journal;
    if (!journal?.whenCommitted) {
      drop();
      return;
    }
    journal.record(ctx.call); // the last legs' ends, with whatever of the call is pending
    journal.whenCommitted(ctx.call.id, drop);
  }

  // -------------------------------------------------------------------------------------------
  // Per-call ordering
  // -------------------------------------------------------------------------------------------

  /**
   * Run `step` after the call's earlier steps; a failure ends the call and is never thrown.
   * After each step the call goes to the journal (the store) and its watchers. `kind`: `change`
   * (default) for a step that may change the call; `leg-setup` for a step that dials a leg or
   * hangs it up (a leg's StasisStart, a click-to-call originate) and `quiet` for an event that
   * can at most mark a leg ringing: those two let a ringing signal be announced ahead of them
   * (see the header).
   */
  run(
    ctx: CallContext,
    step: () => Promise<void> | void,
    kind: 'change' | 'leg-setup' | 'quiet' = 'change',
  ): Promise<void> {
    const changing = kind === 'change';
    if (changing) ctx.changingSteps++;
    const next = ctx.tail
      .then(step)
      .catch((err: unknown) => this.fail(ctx, err))
      .then(() => {
        if (changing) ctx.changingSteps--;
        this.deps.journal?.record(ctx.call);
        this.notifyWatchers(ctx);
      });
    ctx.tail = next;
    return next;
  }

  /**
   * Call `listener` with the call's snapshot after each of its steps, until it ended
   * (`CallControl.watchCall`). Returns the unsubscribe function; a no-op for an unknown or
   * ended call.
   */
  watch(callId: string, listener: (call: CallSnapshot) => void): () => void {
    const ctx = this.active.get(callId);
    // Nothing to follow for an unknown call, nor for an ended one (its watchers are let go).
    if (!ctx || ctx.call.phase === 'ended') return () => undefined;
    let set = this.watchers.get(callId);
    if (!set) this.watchers.set(callId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.watchers.get(callId) === set) this.watchers.delete(callId);
    };
  }

  /** Hand the call's snapshot to its watchers (only computed when someone watches). */
  private notifyWatchers(ctx: CallContext): void {
    const set = this.watchers.get(ctx.call.id);
    if (!set) return;
    const snapshot = snapshotCall(ctx.call, this.now());
    for (const listener of [...set]) {
      try {
        listener(snapshot);
      } catch (err) {
        ctx.log.error('call watcher threw', { err });
      }
    }
    if (ctx.call.phase === 'ended') this.watchers.delete(ctx.call.id);
  }

  private async fail(ctx: CallContext, err: unknown): Promise<void> {
    if (err instanceof AriConnectionError && ctx.call.phase !== 'ended') {
      // Asterisk may or may not have carried the command out: rather than tearing the call down
      // blind (the hang-ups would fail too), put it right from what Asterisk shows once it is
      // reachable (src/calls/reconcile.ts).
      ctx.log.warn('ARI unreachable during a call step; the call will be reconciled', { err });
      ctx.needsRepair = true;
      this.repairNeeded();
      return;
    }
    this.failures.inc();
    ctx.log.error('call flow step failed; cleaning the call up', { err });
    try {
      await this.endCall(ctx, {
        disposition: ctx.call.answeredAt !== undefined ? 'answered' : 'failed',
        hangupBy: 'system',
        reason: 'handler_error',
      });
    } catch (cleanupErr) {
      ctx.log.error('cleanup after a failure failed', { err: cleanupErr });
      this.forget(ctx);
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

/**
 * An event of an engine leg (not the caller) that can at most mark the leg ringing: a `Dial`
 * other than ANSWER, a `ChannelStateChange` other than Up (see `onChannelEvent`).
 */
function isQuietLegEvent(event: AriEvent, channelId: string): boolean {
  if (event.type === 'Dial') return event.peer.id === channelId && event.dialstatus !== 'ANSWER';
  if (event.type === 'ChannelStateChange') return event.channel.state !== 'Up';
  return false;
}

/** `Dial` RINGING or `ChannelStateChange` Ringing of the leg: its phone rings. */
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
