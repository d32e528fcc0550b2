/**
 * Call flows over the ARI gateway: inbound calls routed by the CRM (BRIEF F1) and operators
 * dialling out. The service owns every channel and bridge of its calls (BRIEF "Shape"): it rings
 * the caller, creates and dials the legs, bridges the first answer, hangs up the other legs and
 * destroys the bridge, because Asterisk never does (fixtures fact 9).
 *
 * Concurrency: events of one call are handled one at a time, in arrival order (a per-call promise
 * chain), so a flow never sees half-applied state. Long waits (the CRM route lookup, a greeting)
 * happen outside that chain, and every step re-checks the call's phase after them.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AriChannel, AriEvent, AriGateway, HangupParams } from '../ari/types.ts';
import { AriBadRequestError, AriNotFoundError, AriServerError } from '../ari/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { Route, RouteDecision } from '../crm/types.ts';
import {
  type Call,
  type CallSnapshot,
  type Direction,
  type Disposition,
  type HangupBy,
  type Leg,
  type LegOutcome,
  legOutcomeFromCause,
  snapshotCall,
  unansweredDisposition,
} from './model.ts';
import {
  customerEndpoint,
  extensionOfChannel,
  operatorEndpoint,
  type TrunkRoute,
} from './dialstrings.ts';
import type { CallNotifier } from './notifier.ts';

/** Where the service asks for inbound routes (the CRM route client). */
export interface RouteSource {
  lookup(request: { callId: string; from: string; did: string }): Promise<RouteDecision>;
}

/** Behaviour settings of the call flows (from the configuration). */
export interface CallServiceOptions {
  /** Dial string template of operator phones, e.g. `PJSIP/{extension}`. */
  operatorEndpoint: string;
  /** Prefix of CALLERID(name) shown to operators, e.g. `CRM: ` → `CRM: Ivan Petrov`. */
  callerIdPrefix: string;
  /** Ring time of an operator leg when the route does not say, in seconds. */
  defaultRingTimeoutSec: number;
  /** Ring time of a customer leg on outbound calls, in seconds. */
  outboundRingTimeoutSec: number;
  /** Dialplan location for inbound callers nobody answered; undefined = hang up. */
  noAnswerDialplan?: { context: string; extension: string; priority: number };
  /** Outbound trunks by number prefix. */
  trunks: readonly TrunkRoute[];
  /** Caller ID number presented to customers on outbound calls. */
  companyCallerId: string;
  /** How long an ended call stays queryable in memory, in milliseconds. */
  recentCallsTtlMs?: number;
}

/** What the service needs. */
export interface CallServiceDeps {
  gateway: AriGateway;
  routes: RouteSource;
  notifier: CallNotifier;
  logger: Logger;
  registry: Registry;
  options: CallServiceOptions;
  now?: () => number;
}

/** Per-call working state (never exposed). */
interface CallContext {
  call: Call;
  log: Logger;
  tail: Promise<void>;
  route?: Route;
  /** Extensions still to try (sequential strategy). */
  pending: string[];
  ringTimeoutSec: number;
  greetingPlaybackId?: string;
  callerAnswered: boolean;
  /** The caller was handed back to the dialplan (`continue`): not ours to hang up any more. */
  callerReleased: boolean;
  forgetTimer?: NodeJS.Timeout;
}

/** Events of the service for in-process listeners (tests, the future WebSocket hub). */
export interface CallServiceEvents {
  ended: [CallSnapshot];
}

const HANGUP_REASON: Record<Disposition, HangupParams['reason']> = {
  answered: 'normal',
  busy: 'busy',
  no_answer: 'no_answer',
  canceled: 'normal',
  failed: 'congestion',
};

/**
 * The call service. Feed it every ARI event with {@link CallService.handleEvent}; it creates calls
 * from StasisStart (`inbound,<DID>` and `outbound,<number>`) and drives them to the end.
 */
export class CallService extends EventEmitter<CallServiceEvents> {
  private readonly byChannel = new Map<string, CallContext>();
  private readonly byPlayback = new Map<string, CallContext>();
  private readonly active = new Map<string, CallContext>();
  private readonly recent = new Map<string, CallSnapshot>();
  private readonly now: () => number;
  private readonly activeGauge: Gauge<'direction'>;
  private readonly endedCounter: Counter<'direction' | 'disposition'>;
  private readonly failures: Counter;

  constructor(private readonly deps: CallServiceDeps) {
    super();
    this.now = deps.now ?? Date.now;
    this.activeGauge = new Gauge({
      name: 'aricrm_calls_active',
      help: 'Calls in progress, by direction.',
      labelNames: ['direction'],
      registers: [deps.registry],
    });
    this.endedCounter = new Counter({
      name: 'aricrm_calls_ended_total',
      help: 'Calls ended, by direction and disposition.',
      labelNames: ['direction', 'disposition'],
      registers: [deps.registry],
    });
    this.failures = new Counter({
      name: 'aricrm_call_handler_errors_total',
      help: 'Call flow steps that failed unexpectedly (the call was cleaned up).',
      registers: [deps.registry],
    });
  }

  /** Live view of a call in progress, or of a recently ended one; undefined if unknown. */
  getCall(callId: string): CallSnapshot | undefined {
    const ctx = this.active.get(callId);
    return ctx ? snapshotCall(ctx.call, this.now()) : this.recent.get(callId);
  }

  /** Every call in progress. */
  activeCalls(): CallSnapshot[] {
    return [...this.active.values()].map((ctx) => snapshotCall(ctx.call, this.now()));
  }

  /** Number of channels the service is tracking (for leak checks). */
  trackedChannels(): number {
    return this.byChannel.size;
  }

  /** Wait until every call's queued work has run (tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.active.values()].map((ctx) => ctx.tail));
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
        void this.run(ctx, () => this.onGreetingDone(ctx, event.playback.id));
      }
      return;
    }
    const channelId = channelIdOf(event);
    if (!channelId) return;
    const ctx = this.byChannel.get(channelId);
    if (!ctx) return;
    void this.run(ctx, () => this.onChannelEvent(ctx, channelId, event));
  }

  // -------------------------------------------------------------------------------------------
  // Entering Stasis
  // -------------------------------------------------------------------------------------------

  private onStasisStart(channel: AriChannel, args: string[]): void {
    const [role, arg] = args;
    if (role === 'inbound') {
      void this.startInbound(channel, arg || channel.dialplan.exten);
      return;
    }
    if (role === 'outbound') {
      void this.startOutbound(channel, arg ?? '');
      return;
    }
    const ctx = this.byChannel.get(channel.id);
    if (ctx) {
      void this.run(ctx, () => this.onLegStasisStart(ctx, channel.id));
      return;
    }
    this.deps.logger.warn('channel entered Stasis for no known call; hanging it up', {
      channelId: channel.id,
      args,
    });
    void this.deps.gateway.channels.hangup(channel.id).catch(() => undefined);
  }

  private newContext(
    channel: AriChannel,
    direction: Direction,
    from: string,
    to: string,
  ): CallContext {
    const id = randomUUID();
    const now = this.now();
    const call: Call = {
      id,
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
    const ctx: CallContext = {
      call,
      log: this.deps.logger.child({ callId: id, channelId: channel.id }),
      tail: Promise.resolve(),
      pending: [],
      ringTimeoutSec: this.deps.options.defaultRingTimeoutSec,
      callerAnswered: channel.state === 'Up',
      callerReleased: false,
    };
    this.active.set(id, ctx);
    this.byChannel.set(channel.id, ctx);
    this.activeGauge.inc({ direction });
    return ctx;
  }

  /** Inbound (F1): ring the caller, ask the CRM, optionally greet, then ring operators. */
  private async startInbound(channel: AriChannel, did: string): Promise<void> {
    const ctx = this.newContext(channel, 'in', channel.caller.number, did);
    const { call } = ctx;
    call.did = did;
    ctx.log.info('inbound call', { from: call.from, did });
    this.deps.notifier.started(call);
    await this.run(ctx, async () => {
      if (!ctx.callerAnswered) await this.deps.gateway.channels.ring(channel.id);
    });
    const decision = await this.deps.routes.lookup({ callId: call.id, from: call.from, did });
    // The route client already logged a failed lookup (warn, with its reason).
    ctx.log.info('route decided', {
      source: decision.source,
      fallbackReason: decision.failure?.reason,
      action: decision.route.action.type,
      durationMs: decision.durationMs,
    });
    await this.run(ctx, () => this.applyRoute(ctx, decision.route));
  }

  private async applyRoute(ctx: CallContext, route: Route): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    ctx.route = route;
    if (route.customer) call.customer = route.customer;
    if (route.action.type === 'hangup') {
      await this.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'route_hangup',
      });
      return;
    }
    ctx.ringTimeoutSec = route.action.ringTimeoutSec;
    if (route.greeting && route.greeting.media.length > 0) {
      call.phase = 'greeting';
      await this.answerCaller(ctx);
      const playbackId = `pb-${randomUUID()}`;
      ctx.greetingPlaybackId = playbackId;
      this.byPlayback.set(playbackId, ctx);
      try {
        await this.deps.gateway.channels.play(call.callerChannelId, {
          media: route.greeting.media,
          playbackId,
        });
        return; // dialling starts on PlaybackFinished
      } catch (err) {
        this.byPlayback.delete(playbackId);
        ctx.log.warn('greeting could not be played; dialling operators now', { err });
      }
    }
    await this.startDialing(ctx);
  }

  private async onGreetingDone(ctx: CallContext, playbackId: string): Promise<void> {
    if (ctx.call.phase !== 'greeting' || ctx.greetingPlaybackId !== playbackId) return;
    await this.startDialing(ctx);
  }

  private async startDialing(ctx: CallContext): Promise<void> {
    const action = ctx.route?.action;
    if (!action || action.type !== 'dial') return;
    ctx.call.phase = 'dialing';
    const extensions = [...new Set(action.extensions)];
    if (extensions.length === 0) {
      await this.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'no_extensions',
      });
      return;
    }
    if (action.strategy === 'sequential') {
      ctx.pending = extensions.slice(1);
      await this.placeOperatorLeg(ctx, extensions[0]!);
    } else {
      await Promise.all(extensions.map((ext) => this.placeOperatorLeg(ctx, ext)));
    }
  }

  /** Create an operator leg with CALLERID set at create time (fixtures fact 3), then dial it. */
  private async placeOperatorLeg(ctx: CallContext, extension: string): Promise<void> {
    const { call } = ctx;
    const name = call.customer?.name ?? call.callerName ?? call.from;
    const endpoint = operatorEndpoint(extension, this.deps.options.operatorEndpoint);
    const leg = this.addEngineLeg(ctx, 'operator', endpoint, extension);
    await this.createLeg(ctx, leg, ['operator', call.id], {
      'CALLERID(name)': `${this.deps.options.callerIdPrefix}${name}`,
      'CALLERID(num)': call.from,
    });
  }

  /** Outbound: an operator dialled a customer number; dial it through the trunk and bridge. */
  private async startOutbound(channel: AriChannel, number: string): Promise<void> {
    const extension = extensionOfChannel(channel);
    const ctx = this.newContext(channel, 'out', extension ?? channel.caller.number, number);
    const { call } = ctx;
    call.operatorExtension = extension;
    call.legs.get(channel.id)!.extension = extension;
    ctx.ringTimeoutSec = this.deps.options.outboundRingTimeoutSec;
    ctx.log.info('outbound call', { extension, to: number });
    this.deps.notifier.started(call);
    await this.run(ctx, async () => {
      if (!/^\+?\d{2,20}$/.test(number)) {
        await this.endCall(ctx, {
          disposition: 'failed',
          hangupBy: 'system',
          reason: 'invalid_number',
        });
        return;
      }
      let endpoint: string;
      try {
        endpoint = customerEndpoint(number, this.deps.options.trunks);
      } catch {
        await this.endCall(ctx, { disposition: 'failed', hangupBy: 'system', reason: 'no_trunk' });
        return;
      }
      if (!ctx.callerAnswered) await this.deps.gateway.channels.ring(channel.id);
      call.phase = 'dialing';
      const leg = this.addEngineLeg(ctx, 'customer', endpoint, undefined);
      await this.createLeg(ctx, leg, ['customer', call.id], {
        'CALLERID(num)': this.deps.options.companyCallerId,
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Legs
  // -------------------------------------------------------------------------------------------

  private addEngineLeg(
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

  private async createLeg(
    ctx: CallContext,
    leg: Leg,
    appArgs: string[],
    variables: Record<string, string>,
  ): Promise<void> {
    try {
      await this.deps.gateway.channels.create({
        endpoint: leg.endpoint!,
        channelId: leg.channelId,
        appArgs,
        variables,
      });
      leg.created = true;
    } catch (err) {
      leg.ended = true;
      leg.endedAt = this.now();
      leg.outcome = err instanceof AriServerError ? 'unavailable' : 'failed';
      this.byChannel.delete(leg.channelId);
      ctx.log.warn('could not create leg', {
        legChannelId: leg.channelId,
        endpoint: leg.endpoint,
        err,
      });
      await this.afterUnansweredLeg(ctx);
      return;
    }
    await this.maybeDial(ctx, leg);
  }

  private async onLegStasisStart(ctx: CallContext, channelId: string): Promise<void> {
    const leg = ctx.call.legs.get(channelId);
    if (!leg) return;
    leg.inStasis = true;
    if (ctx.call.phase !== 'dialing' && !leg.hangupRequested) {
      // The call moved on (answered elsewhere, abandoned) while this leg was being created.
      await this.hangupLeg(ctx, leg);
      return;
    }
    await this.maybeDial(ctx, leg);
  }

  /** Dial once both the create was answered and the channel is in Stasis (facts 1, 2). */
  private async maybeDial(ctx: CallContext, leg: Leg): Promise<void> {
    if (!leg.created || !leg.inStasis || leg.dialed || leg.ended || leg.hangupRequested) return;
    if (ctx.call.phase !== 'dialing') {
      await this.hangupLeg(ctx, leg);
      return;
    }
    leg.dialed = true;
    try {
      await this.deps.gateway.channels.dial(leg.channelId, {
        caller: ctx.call.callerChannelId,
        timeoutSec: ctx.ringTimeoutSec,
      });
      ctx.log.debug('leg dialled', { legChannelId: leg.channelId, endpoint: leg.endpoint });
    } catch (err) {
      if (err instanceof AriNotFoundError) return; // gone already; its ChannelDestroyed follows
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
        await this.onCallerGone(ctx);
      } else if (event.type === 'ChannelStateChange' && event.channel.state === 'Up') {
        ctx.callerAnswered = true;
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
      default:
        return;
    }
  }

  private async onLegRinging(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.ringing || leg.answered || leg.ended) return;
    leg.ringing = true;
    ctx.log.info('leg ringing', {
      legChannelId: leg.channelId,
      extension: leg.extension,
      endpoint: leg.endpoint,
    });
    if (leg.role === 'operator' && ctx.call.phase === 'dialing')
      this.deps.notifier.ringing(ctx.call, leg);
  }

  /** First answer wins: bridge it with the caller, cancel the other legs. */
  private async onLegAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.answered || leg.ended) return;
    leg.answered = true;
    leg.answeredAt = this.now();
    const { call } = ctx;
    if (call.phase !== 'dialing') {
      ctx.log.info('leg answered after the call moved on; hanging it up', {
        legChannelId: leg.channelId,
      });
      await this.hangupLeg(ctx, leg);
      return;
    }
    call.phase = 'bridged';
    call.answeredAt = leg.answeredAt;
    leg.outcome = 'answered';
    const extension = call.direction === 'in' ? leg.extension : call.operatorExtension;
    call.answeredBy = extension;
    ctx.pending = [];
    if (extension) this.deps.notifier.answered(call, extension);
    const others = [...call.legs.values()].filter(
      (l) => l !== leg && l.role !== 'caller' && !l.ended,
    );
    await Promise.all(others.map((other) => this.hangupLeg(ctx, other)));
    const bridgeId = `br-${randomUUID()}`;
    try {
      await this.answerCaller(ctx);
      await this.deps.gateway.bridges.create({
        bridgeId,
        type: ['mixing'],
        name: `call-${call.id}`,
      });
      call.bridgeId = bridgeId;
      await this.deps.gateway.bridges.addChannel(bridgeId, [call.callerChannelId, leg.channelId]);
    } catch (err) {
      // A party hung up while we were bridging: its StasisEnd/ChannelDestroyed is queued behind
      // this step and ends the call with the right side as the one who hung up.
      if (isGone(err)) {
        ctx.log.info('a party hung up while the call was being bridged', {
          legChannelId: leg.channelId,
        });
        return;
      }
      throw err;
    }
    ctx.log.info('call answered and bridged', { extension, legChannelId: leg.channelId, bridgeId });
  }

  private async onLegGone(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.ended) return;
    leg.ended = true;
    leg.endedAt = this.now();
    this.byChannel.delete(leg.channelId);
    const { call } = ctx;
    if (leg.answered && leg.outcome === 'answered') {
      if (call.phase === 'bridged') {
        const by: HangupBy = leg.role === 'operator' ? 'operator' : 'customer';
        await this.endCall(ctx, { disposition: 'answered', hangupBy: by });
      }
    } else {
      leg.outcome ??= legOutcomeFromCause(leg.cause, leg.hangupRequested);
      ctx.log.info('leg ended without answer', {
        legChannelId: leg.channelId,
        extension: leg.extension,
        outcome: leg.outcome,
        cause: leg.cause,
      });
      if (call.phase === 'dialing') await this.afterUnansweredLeg(ctx);
    }
    this.maybeForget(ctx);
  }

  /** A dialled leg ended unanswered: try the next extension, or end the call. */
  private async afterUnansweredLeg(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    if (call.phase !== 'dialing') return;
    const dialled = [...call.legs.values()].filter((l) => l.role !== 'caller');
    if (dialled.some((l) => !l.ended)) return;
    const next = ctx.pending.shift();
    if (next !== undefined) {
      await this.placeOperatorLeg(ctx, next);
      return;
    }
    const outcomes = dialled.map((l) => l.outcome).filter((o): o is LegOutcome => o !== undefined);
    const disposition = unansweredDisposition(outcomes);
    const dialplan = this.deps.options.noAnswerDialplan;
    if (call.direction === 'in' && dialplan) {
      ctx.callerReleased = true;
      try {
        await this.deps.gateway.channels.continueInDialplan(call.callerChannelId, dialplan);
        ctx.log.info('nobody answered; caller sent to the dialplan', { ...dialplan, disposition });
      } catch (err) {
        ctx.callerReleased = false;
        ctx.log.warn('could not send the caller to the no-answer dialplan; hanging up', { err });
      }
    }
    await this.endCall(ctx, { disposition, hangupBy: 'system', reason: 'nobody_answered' });
  }

  private async onCallerGone(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    const by: HangupBy = call.direction === 'in' ? 'caller' : 'operator';
    if (call.phase === 'bridged') {
      await this.endCall(ctx, { disposition: 'answered', hangupBy: by });
    } else {
      // Abandoned while ringing: every operator leg is hung up at once (fixtures fact 6).
      await this.endCall(ctx, { disposition: 'canceled', hangupBy: by, reason: 'abandoned' });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ending
  // -------------------------------------------------------------------------------------------

  private async endCall(
    ctx: CallContext,
    outcome: { disposition: Disposition; hangupBy: HangupBy; reason?: string },
  ): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    call.phase = 'ended';
    call.endedAt = this.now();
    call.disposition = outcome.disposition;
    call.hangupBy = outcome.hangupBy;
    call.endReason = outcome.reason;
    ctx.pending = [];
    if (ctx.greetingPlaybackId) this.byPlayback.delete(ctx.greetingPlaybackId);
    const reason = HANGUP_REASON[outcome.disposition];
    const cleanup: Array<Promise<void>> = [];
    for (const leg of call.legs.values()) {
      if (leg.ended || leg.hangupRequested) continue;
      if (leg.role === 'caller' && ctx.callerReleased) continue;
      if (leg.role !== 'caller' && !leg.created) continue; // its StasisStart will find no dialling call
      cleanup.push(this.hangupLeg(ctx, leg, leg.role === 'caller' ? reason : undefined));
    }
    await Promise.all(cleanup);
    if (call.bridgeId) {
      try {
        await this.deps.gateway.bridges.destroy(call.bridgeId);
      } catch (err) {
        if (!(err instanceof AriNotFoundError))
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
    this.deps.notifier.ended(call);
    this.remember(snapshot);
    this.emit('ended', snapshot);
    this.maybeForget(ctx);
    // Safety net: stop tracking channels whose end events never come.
    ctx.forgetTimer = setTimeout(() => this.forget(ctx), 60_000);
    ctx.forgetTimer.unref();
  }

  private async answerCaller(ctx: CallContext): Promise<void> {
    if (ctx.callerAnswered) return;
    await this.deps.gateway.channels.answer(ctx.call.callerChannelId);
    ctx.callerAnswered = true;
  }

  /** Ask Asterisk to hang a leg up; a leg already gone (404) counts as done. */
  private async hangupLeg(
    ctx: CallContext,
    leg: Leg,
    reason?: HangupParams['reason'],
  ): Promise<void> {
    if (leg.ended || leg.hangupRequested) return;
    leg.hangupRequested = true;
    try {
      await this.deps.gateway.channels.hangup(leg.channelId, reason ? { reason } : undefined);
    } catch (err) {
      if (err instanceof AriNotFoundError) {
        if (leg.role === 'caller') {
          leg.ended = true;
          this.byChannel.delete(leg.channelId);
        }
        return;
      }
      ctx.log.warn('hangup failed', { legChannelId: leg.channelId, err });
    }
  }

  private remember(snapshot: CallSnapshot): void {
    this.recent.set(snapshot.id, snapshot);
    const ttl = this.deps.options.recentCallsTtlMs ?? 3_600_000;
    const limit = 10_000;
    if (this.recent.size > limit) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
    setTimeout(() => this.recent.delete(snapshot.id), ttl).unref();
  }

  /** Stop tracking a call once it has ended and all its channels are gone. */
  private maybeForget(ctx: CallContext): void {
    if (ctx.call.phase !== 'ended') return;
    const open = [...ctx.call.legs.values()].some(
      (leg) =>
        !leg.ended &&
        !(leg.role === 'caller' && ctx.callerReleased) &&
        (leg.created || leg.role === 'caller'),
    );
    if (!open) this.forget(ctx);
  }

  private forget(ctx: CallContext): void {
    if (ctx.forgetTimer) clearTimeout(ctx.forgetTimer);
    for (const leg of ctx.call.legs.values()) {
      if (this.byChannel.get(leg.channelId) === ctx) this.byChannel.delete(leg.channelId);
    }
    this.active.delete(ctx.call.id);
  }

  /** Run `step` after the call's earlier steps; a failure ends the call and is never thrown. */
  private run(ctx: CallContext, step: () => Promise<void> | void): Promise<void> {
    const next = ctx.tail.then(step).catch((err: unknown) => this.fail(ctx, err));
    ctx.tail = next;
    return next;
  }

  private async fail(ctx: CallContext, err: unknown): Promise<void> {
    this.failures.inc();
    ctx.log.error('call flow step failed; cleaning the call up', { err });
    const answered = ctx.call.phase === 'bridged';
    try {
      await this.endCall(ctx, {
        disposition: answered ? 'answered' : 'failed',
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
function isGone(err: unknown): boolean {
  if (err instanceof AriNotFoundError) return true;
  return err instanceof AriBadRequestError && /^Channel not found$/i.test(err.asteriskMessage);
}

/** The channel an event is about: `channel`, or `peer` for Dial events. */
function channelIdOf(event: AriEvent): string | undefined {
  if ('channel' in event && event.channel) return event.channel.id;
  if (event.type === 'Dial') return event.peer.id;
  return undefined;
}
