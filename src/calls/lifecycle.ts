/**
 * A call's life in the runtime, a part of the call runtime (src/calls/runtime.ts, which
 * delegates these methods here): held when it starts ({@link CallLifecycle.register}, counted
 * in `aricrm_calls_active`), ended ({@link CallLifecycle.endCall}: hang-ups, bridge destruction,
 * `call.ended`, counted in `aricrm_calls_ended_total`), and forgotten once its channels are gone
 * and the journal holds its last change ({@link CallLifecycle.forget}).
 */
import { randomUUID } from 'node:crypto';
import type { Counter, Gauge } from 'prom-client';
import { counter, gauge } from '../metrics/registry.ts';
import type { AriChannel, HangupParams } from '../ari/types.ts';
import {
  type Call,
  type Direction,
  type Disposition,
  type HangupBy,
  snapshotCall,
} from './model.ts';
import type { CallContext, FlowName } from './context.ts';
import { isGone } from './legs.ts';
import type { CallRuntime, RuntimeEvents } from './runtime.ts';

const HANGUP_REASON: Record<Disposition, HangupParams['reason']> = {
  answered: 'normal',
  busy: 'busy',
  no_answer: 'no_answer',
  canceled: 'normal',
  failed: 'congestion',
};

/**
 * How a call the CRM hangs up (`POST /v1/calls/{id}/hangup`) ends: `answered` once answered,
 * else `canceled`; hung up by `system`, `endReason: api_hangup`.
 */
export function apiHangupOutcome(call: Call): {
  disposition: Disposition;
  hangupBy: HangupBy;
  reason: string;
} {
  return {
    disposition: call.answeredAt !== undefined ? 'answered' : 'canceled',
    hangupBy: 'system',
    reason: 'api_hangup',
  };
}

/** Holding, ending and forgetting the runtime's calls, with their metrics. */
export class CallLifecycle {
  private readonly activeGauge: Gauge<'direction'>;
  private readonly endedCounter: Counter<'direction' | 'disposition'>;

  constructor(
    private readonly rt: CallRuntime,
    private readonly events: RuntimeEvents,
  ) {
    this.activeGauge = gauge(rt.deps.registry, {
      name: 'aricrm_calls_active',
      help: 'Calls in progress, by direction.',
      labelNames: ['direction'] as const,
    });
    this.endedCounter = counter(rt.deps.registry, {
      name: 'aricrm_calls_ended_total',
      help: 'Calls ended, by direction and disposition.',
      labelNames: ['direction', 'disposition'] as const,
    });
  }

  /** Hold a new call driven by `flow` (counted in `aricrm_calls_active`). */
  register(call: Call, flow: FlowName, anchorChannelId: string): CallContext {
    const ctx: CallContext = {
      call,
      flow,
      log: this.rt.deps.logger.child(
        anchorChannelId ? { callId: call.id, channelId: anchorChannelId } : { callId: call.id },
      ),
      tail: Promise.resolve(),
      changingSteps: 0,
      pending: [],
      ringTimeoutSec: this.rt.deps.options.defaultRingTimeoutSec,
      anchorChannelId,
      playbacks: new Set(),
      callerAnswered: false,
      released: new Set(),
      transferring: false,
    };
    this.rt.active.set(call.id, ctx);
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
    const now = this.rt.now();
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
    this.rt.byChannel.set(channel.id, ctx);
    return ctx;
  }

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
    call.endedAt = this.rt.now();
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
    for (const id of ctx.playbacks) this.rt.byPlayback.delete(id);
    const reason = HANGUP_REASON[outcome.disposition];
    const cleanup: Array<Promise<void>> = [];
    for (const leg of call.legs.values()) {
      if (leg.ended || leg.hangupRequested || ctx.released.has(leg.channelId)) continue;
      if (leg.role !== 'caller' && !leg.created) continue; // its StasisStart finds no dialling call
      cleanup.push(this.rt.hangupLeg(ctx, leg, leg.role === 'caller' ? reason : undefined));
    }
    await Promise.all(cleanup);
    if (call.bridgeId) {
      try {
        await this.rt.deps.gateway.bridges.destroy(call.bridgeId);
      } catch (err) {
        if (!isGone(err))
          ctx.log.warn('could not destroy the bridge', { bridgeId: call.bridgeId, err });
      }
    }
    this.activeGauge.dec({ direction: call.direction });
    this.endedCounter.inc({ direction: call.direction, disposition: outcome.disposition });
    const snapshot = snapshotCall(call, this.rt.now());
    ctx.log.info('call ended', {
      disposition: snapshot.disposition,
      hangupBy: snapshot.hangupBy,
      endReason: snapshot.endReason,
      answeredBy: snapshot.answeredBy,
      waitSec: snapshot.waitSec,
      talkSec: snapshot.talkSec,
    });
    this.rt.deps.notifier.ended(call, this.rt.recorder?.recordingUrl(call.id));
    this.rt.recorder?.callEnded(call);
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
   * `CallRuntime.notifyWatchers`); the call itself once the journal has committed its last
   * change (until then `CallService.getCall` and the API answer it from memory, so it is never
   * missing while the store lags a turn behind, or fails). Nothing of the call stays in the
   * runtime afterwards.
   */
  forget(ctx: CallContext): void {
    const { active, byChannel, byPlayback } = this.rt;
    if (ctx.forgetTimer) clearTimeout(ctx.forgetTimer);
    ctx.forgetTimer = undefined;
    for (const leg of ctx.call.legs.values()) {
      if (byChannel.get(leg.channelId) === ctx) byChannel.delete(leg.channelId);
    }
    for (const id of ctx.playbacks) if (byPlayback.get(id) === ctx) byPlayback.delete(id);
    if (ctx.forgotten) return;
    ctx.forgotten = true;
    const drop = (): void => {
      if (active.get(ctx.call.id) !== ctx) return;
      active.delete(ctx.call.id);
      this.rt.deps.journal?.release?.(ctx.call.id);
      this.events.released(ctx.call.id);
    };
    const journal = this.rt.deps.journal;
    if (!journal?.whenCommitted) {
      drop();
      return;
    }
    journal.record(ctx.call); // the last legs' ends, with whatever of the call is pending
    journal.whenCommitted(ctx.call.id, drop);
  }
}
