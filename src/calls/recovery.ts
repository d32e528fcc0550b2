/**
 * Recovery of the live calls, whatever their flow: the reconciliation after an ARI reconnect (or
 * a command cut by an outage) and the adoption of unfinished calls at an engine restart. The
 * pure part (what to do with each call given what Asterisk shows) is src/calls/reconcile.ts
 * (with ari-view.ts and adoption.ts); this module runs it over the runtime's calls
 * (src/calls/runtime.ts) with the flows' own handlers (docs/architecture.md, "Reconciliation:
 * ARI outages and restarts").
 */
import { randomUUID } from 'node:crypto';
import { AriNotFoundError } from '../ari/errors.ts';
import type { AriChannel } from '../ari/types.ts';
import type { Leg } from './model.ts';
import type { UnfinishedCallRecord } from '../store/calls.ts';
import { adoptedCallFromRecord } from './adoption.ts';
import { inStasisOf, isCallerUp, stasisArgsOf, strayChannels } from './ari-view.ts';
import type { ReconcileTarget } from './reconcile.ts';
import { reconcileAll, type ReconcileReport } from './reconcile-pass.ts';
import type { CallContext } from './context.ts';
import { type CallRuntime, isGone } from './runtime.ts';
import { isEngineLegId } from './legs.ts';

/**
 * How long a channel found in the app with no call must stay so before it is hung up, in ms:
 * a channel listed just as it enters Stasis gets its call from its StasisStart meanwhile.
 */
export const STRAY_CHANNEL_GRACE_MS = 2000;

/**
 * The channels outside the Stasis app `app` that are engine legs (`op-<uuid>`, `cu-<uuid>`,
 * {@link isEngineLegId}) no call tracks (`isTracked`) and that were never answered (not `Up`):
 * an originate still ringing whose leg was given up on (its originate got no answer, and the
 * hang-up by id never reached Asterisk before the engine stopped) or whose call ended. An
 * answered engine leg outside the app is one a transfer handed to the dialplan: left alone.
 */
export function legsOutsideApp(
  channels: readonly AriChannel[],
  app: string,
  isTracked: (channelId: string) => boolean,
): AriChannel[] {
  return channels.filter(
    (ch) => !inStasisOf(ch, app) && isEngineLegId(ch.id) && ch.state !== 'Up' && !isTracked(ch.id),
  );
}

/** Reconciliation and adoption over the call runtime. */
export class CallRecovery {
  private repairTimer: NodeJS.Timeout | undefined;

  constructor(private readonly rt: CallRuntime) {
    rt.repairNeeded = () => this.repairSoon();
  }

  /**
   * Reconcile every live call with what Asterisk shows now (after an ARI reconnect; at the first
   * connect for calls adopted by {@link adoptCalls}): list channels and bridges, then correct
   * each call in its per-call chain; `call.recovered` for each call kept. `lostSinceMs`: when
   * the WebSocket dropped (epoch ms), for `outageSec`. Then, in the background, hang up the
   * channels left in the app that belong to no call ({@link hangUpStrayChannels}). The channels
   * of legs whose create or originate got no answer are hung up first
   * (`CallRuntime.unconfirmed`). Never rejects.
   */
  async reconcile(lostSinceMs?: number): Promise<ReconcileReport> {
    void this.rt.unconfirmed.retryAll();
    const report = await this.reconcileContexts([...this.rt.active.values()], lostSinceMs, false);
    void this.hangUpStrayChannels();
    return report;
  }

  /**
   * The channels in the Stasis app that belong to no call this engine tracks: `GET /channels`
   * twice, {@link STRAY_CHANNEL_GRACE_MS} apart (a channel listed just as it enters Stasis gets
   * its call from its StasisStart meanwhile); each channel with no call both times is
   * - routed as a new call ({@link CallRuntime.startMissedCall}, logged at `warn`, `routing a
   *   caller whose StasisStart was missed`) when it is a caller never seen (see
   *   {@link missedCallers}): its StasisStart was lost, e.g. written by Asterisk into a
   *   connection that had silently died, or received by a previous run killed before it stored
   *   the call;
   * - hung up otherwise (`DELETE /channels/{id}`, logged at `warn`, `hanging up a channel of no
   *   live call`, with its id and Stasis arguments): e.g. the caller of a call the store has as
   *   ended whose hang-up was lost as the previous run closed ARI (docs/operations.md, "What a
   *   stop guarantees"), or an engine leg of a call no longer held.
   * Also hung up: the engine's own legs ringing outside the app with no call
   * ({@link legsOutsideApp}, known to this engine: {@link ownLegsAmong}), e.g. the operator's
   * phone rung by an originate whose answer was lost and whose hang-up by id never reached
   * Asterisk before the previous run stopped (src/calls/unconfirmed.ts keeps that list in memory
   * only).
   * Channels of live calls (adopted ones included), of originates and notification calls in
   * progress are tracked and left alone. Never rejects: a failed listing, store look-up or
   * hang-up is logged and left to the next connect.
   */
  private async hangUpStrayChannels(): Promise<void> {
    const { gateway, logger } = this.rt.deps;
    const tracked = (channelId: string): boolean => this.rt.byChannel.has(channelId);
    const stillConnected = (): boolean => !this.rt.stopping && gateway.isConnected();
    const leftovers = (channels: readonly AriChannel[]): AriChannel[] => [
      ...strayChannels(channels, gateway.app, tracked),
      ...legsOutsideApp(channels, gateway.app, tracked),
    ];
    try {
      const first = leftovers(await gateway.channels.list());
      if (first.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, STRAY_CHANNEL_GRACE_MS).unref());
      if (!stillConnected()) return;
      const firstIds = new Set(first.map((ch) => ch.id));
      const listed = leftovers(await gateway.channels.list()).filter((ch) => firstIds.has(ch.id));
      if (listed.length === 0) return;
      let callers: Map<string, string[]>;
      let stray: AriChannel[];
      try {
        callers = await this.missedCallers(listed.filter((ch) => inStasisOf(ch, gateway.app)));
        stray = await this.ownLegsAmong(listed);
      } catch (err) {
        logger.warn('could not look channels of no live call up in the store; left for now', {
          channels: listed.length,
          err,
        });
        return;
      }
      for (const channel of stray) {
        if (!stillConnected()) return;
        const args = callers.get(channel.id);
        if (args) {
          this.rt.startMissedCall(channel, args);
          continue;
        }
        if (tracked(channel.id)) continue; // its StasisStart came meanwhile
        const inApp = inStasisOf(channel, gateway.app);
        logger.warn('hanging up a channel of no live call', {
          channelId: channel.id,
          channel: channel.name,
          stasisArgs: stasisArgsOf(channel).join(','),
          reason: inApp
            ? 'the channel is in the app but belongs to no call in progress'
            : 'a leg of the engine given up on or of an ended call, still ringing outside the app',
        });
        try {
          await gateway.channels.hangup(channel.id);
        } catch (err) {
          if (!isGone(err))
            logger.warn('could not hang up a channel of no live call', {
              channelId: channel.id,
              err,
            });
        }
      }
    } catch (err) {
      logger.warn('could not look for channels of no live call', { err });
    }
  }

  /**
   * Of channels in the app with no call, the callers whose StasisStart was missed, with their
   * Stasis arguments (by channel id): Stasis arguments that start a call (`inbound,<DID>`,
   * `outbound,<number>`: never an engine leg's), a channel still up or ringing ({@link
   * isCallerUp}), and a channel id neither a call held in memory nor the store
   * (`deps.knownChannels`) has as a leg. Rejects when the store cannot be read.
   */
  private async missedCallers(channels: readonly AriChannel[]): Promise<Map<string, string[]>> {
    const candidates = new Map<string, string[]>();
    for (const channel of channels) {
      const args = stasisArgsOf(channel);
      if (this.rt.startingFlow(args) && isCallerUp(channel) && !this.heldLeg(channel.id))
        candidates.set(channel.id, args);
    }
    if (candidates.size === 0 || !this.rt.deps.knownChannels) return candidates;
    const known = await this.rt.deps.knownChannels([...candidates.keys()]);
    for (const id of known) candidates.delete(id);
    return candidates;
  }

  /**
   * Of the channels listed, those to hang up: every channel in the app (the callers to route
   * are set apart by the caller), and the engine legs outside it ({@link legsOutsideApp}) that
   * this engine created: a call held in memory or the store (`deps.knownChannels`) has them as a
   * leg. An engine leg nobody here knows (another engine's, on the same Asterisk) is left alone.
   * Rejects when the store cannot be read.
   */
  private async ownLegsAmong(channels: readonly AriChannel[]): Promise<AriChannel[]> {
    const app = this.rt.deps.gateway.app;
    const outside = channels.filter((ch) => !inStasisOf(ch, app) && !this.heldLeg(ch.id));
    const known =
      outside.length > 0 && this.rt.deps.knownChannels
        ? await this.rt.deps.knownChannels(outside.map((ch) => ch.id))
        : new Set<string>();
    return channels.filter((ch) => inStasisOf(ch, app) || this.heldLeg(ch.id) || known.has(ch.id));
  }

  /** A call held in memory (ended ones not yet stored included) has a leg on this channel. */
  private heldLeg(channelId: string): boolean {
    for (const ctx of this.rt.active.values()) if (ctx.call.legs.has(channelId)) return true;
    return false;
  }

  /**
   * Reconcile `contexts` (live calls, and ended ones whose channels never reported their end).
   * `silent`: a repair after a failed command, not an outage: no `call.recovered`.
   */
  private reconcileContexts(
    contexts: CallContext[],
    lostSinceMs: number | undefined,
    silent: boolean,
  ): Promise<ReconcileReport> {
    const entries = contexts
      .filter(
        (ctx) =>
          ctx.call.phase !== 'ended' ||
          [...ctx.call.legs.values()].some((leg) => !leg.ended && leg.hangupRequested),
      )
      .map((ctx) => {
        // Legs that exist in Asterisk before the listing is asked for (not those being created).
        const eligible = new Set(
          [...ctx.call.legs.values()]
            .filter((leg) => !leg.ended && (leg.created || leg.role === 'caller'))
            .map((leg) => leg.channelId),
        );
        return {
          run: (step: () => Promise<void>) =>
            this.rt.run(ctx, async () => {
              ctx.reconciling = true;
              try {
                await step();
              } finally {
                ctx.reconciling = false;
              }
            }),
          target: () => this.reconcileTarget(ctx, eligible, lostSinceMs, silent),
        };
      });
    return reconcileAll(this.rt.deps.gateway, entries, {
      logger: this.rt.deps.logger,
      registry: this.rt.deps.registry,
    }).then((report) => {
      // A repair that could not list Asterisk is tried again (a reconnect covers the others).
      if (silent && report.skipped > 0) this.repairSoon();
      return report;
    });
  }

  /**
   * Engine restart: take over the calls the store says are unfinished (`store.calls
   * .unfinishedCalls()`), rebuilt by {@link adoptedCallFromRecord}, so their hang-ups, bridges
   * and transfers keep working. Call before the gateway connects: the first {@link reconcile}
   * checks them against Asterisk (ends those whose channels are gone). Returns how many calls
   * were adopted (calls already tracked are skipped).
   */
  adoptCalls(records: readonly UnfinishedCallRecord[]): number {
    let adopted = 0;
    for (const record of records) {
      if (this.rt.active.has(record.id) || record.state === 'ended') continue;
      const found = adoptedCallFromRecord(record);
      const ctx = this.rt.register(found.call, found.flow, found.anchorChannelId);
      ctx.transferring = found.transferring;
      if (found.clickToCall) ctx.clickToCall = found.clickToCall;
      ctx.adoption = { state: record.state, sinceMs: Date.parse(record.updatedAt) };
      for (const leg of found.call.legs.values())
        if (!leg.ended) this.rt.byChannel.set(leg.channelId, ctx);
      ctx.log.info('call adopted from the store', {
        state: record.state,
        legs: found.call.legs.size,
        updatedAt: record.updatedAt,
      });
      adopted++;
    }
    return adopted;
  }

  /**
   * Reconcile the calls a failed command left unsure ({@link CallContext.needsRepair}) in a
   * second, if ARI is connected by then (otherwise the reconnect reconciles every call).
   */
  private repairSoon(): void {
    if (this.repairTimer) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      if (!this.rt.deps.gateway.isConnected()) return;
      const contexts = [...this.rt.active.values()].filter((ctx) => ctx.needsRepair);
      void this.reconcileContexts(contexts, undefined, true);
    }, 1000);
    this.repairTimer.unref();
  }

  /** The call's flow handlers, for one reconciliation step (see {@link ReconcileTarget}). */
  private reconcileTarget(
    ctx: CallContext,
    eligible: ReadonlySet<string>,
    lostSinceMs: number | undefined,
    silent: boolean,
  ): ReconcileTarget {
    const { rt } = this;
    const adoption = ctx.adoption;
    ctx.adoption = undefined;
    ctx.needsRepair = false;
    const sinceMs = adoption?.sinceMs ?? lostSinceMs;
    const markGone = (leg: Leg): void => {
      leg.ended = true;
      leg.endedAt ??= rt.now();
      if (rt.byChannel.get(leg.channelId) === ctx) rt.byChannel.delete(leg.channelId);
    };
    const flow = rt.flowOf(ctx);
    return {
      call: ctx.call,
      flow: ctx.flow,
      anchorChannelId: ctx.anchorChannelId,
      eligible: adoption
        ? new Set([...ctx.call.legs.values()].filter((l) => !l.ended).map((l) => l.channelId))
        : eligible,
      adoptedState: adoption?.state,
      awaitedPlaybackId:
        ctx.call.phase === 'greeting'
          ? ctx.greetingPlaybackId
          : ctx.endAfterBeep
            ? ctx.beepPlaybackId
            : undefined,
      isReleased: (channelId) => ctx.released.has(channelId),
      playbackExists: async (playbackId) => {
        try {
          await rt.deps.gateway.playbacks.get(playbackId);
          return true;
        } catch (err) {
          return !(err instanceof AriNotFoundError);
        }
      },
      callerAnswered: () => {
        ctx.callerAnswered = true;
      },
      legEnteredStasis: (leg) => rt.onLegStasisStart(ctx, leg.channelId),
      legRinging: (leg) => rt.onLegRinging(ctx, leg),
      legAnswered: (leg) => rt.onLegAnswered(ctx, leg),
      legGone: (leg) => rt.onLegGone(ctx, leg),
      callerGone: async (leg) => {
        markGone(leg);
        await rt.onCallerGone(ctx, leg);
        rt.maybeForget(ctx);
      },
      legVanished: markGone,
      playbackDone: (playbackId) => {
        rt.byPlayback.delete(playbackId);
        return rt.onPlaybackDone(ctx, playbackId);
      },
      nothingLive: async (lastEnded) => {
        if (lastEnded) await rt.afterUnansweredLeg(ctx, lastEnded);
        else if (flow.nobodyDialled) await flow.nobodyDialled(ctx);
        else await rt.endCall(ctx, { disposition: 'failed', hangupBy: 'system' });
      },
      resumeRouting: () => void flow.resume?.(ctx),
      bridge: async (channelIds, bridgeExists) => {
        const { call } = ctx;
        await rt.answerCaller(ctx);
        if (!bridgeExists || call.bridgeId === undefined) {
          const bridgeId = call.bridgeId ?? `br-${randomUUID()}`;
          await rt.deps.gateway.bridges.create({
            bridgeId,
            type: ['mixing'],
            name: `call-${call.id}`,
          });
          call.bridgeId = bridgeId;
        }
        await rt.deps.gateway.bridges.addChannel(call.bridgeId, channelIds);
        ctx.log.info('call bridged again after reconciliation', { channelIds });
        // The bridging was cut before the recorder heard of it (an adopted call's recording is
        // the recordings domain's own business after a restart).
        if (!adoption)
          await rt.recorder?.bridgeCreated(call, call.bridgeId, rt.recordOverride(ctx));
      },
      hangup: async (leg) => {
        leg.hangupRequested = false;
        await rt.hangupLeg(ctx, leg);
      },
      destroyBridge: async () => {
        try {
          if (ctx.call.bridgeId) await rt.deps.gateway.bridges.destroy(ctx.call.bridgeId);
        } catch (err) {
          if (!isGone(err)) throw err;
        }
      },
      forgetIfDone: () => rt.maybeForget(ctx),
      end: (outcome) => rt.endCall(ctx, outcome),
      recovered: (state) => {
        if (adoption && flow.adopted) void rt.run(ctx, () => flow.adopted!(ctx));
        if (silent) return;
        rt.deps.notifier.recovered(ctx.call, {
          reason: adoption ? 'engine_restart' : 'ari_reconnect',
          state,
          outageSec:
            sinceMs === undefined || !Number.isFinite(sinceMs)
              ? 0
              : Math.max(0, Math.round((rt.now() - sinceMs) / 1000)),
        });
      },
    };
  }
}
