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
 *
 * This file is the entry: {@link CallRuntime}, the object the flows, the call service and the
 * reconciliation use, with the state of the live calls, the flows registered, the per-call
 * ordering and the watchers. It delegates the rest to its parts, each read top to bottom:
 *
 * - `routing.ts` ({@link CallEventRouter}): ARI events to calls (StasisStart, playbacks, the
 *   channel events of a call's legs), and the early announcement of a leg's ringing;
 * - `legs.ts` ({@link CallLegs}): creating, dialling and hanging up legs, ringing and answering
 *   the caller;
 * - `unconfirmed.ts` ({@link UnconfirmedChannels}): hanging up the channels of legs whose create
 *   or originate got no answer from ARI, and chasing those that show up later;
 * - `leg-states.ts` ({@link LegStates}): what a leg's ringing, answer (the bridge of
 *   {@link CallRuntime.connect}) and end do to the call;
 * - `lifecycle.ts` ({@link CallLifecycle}): holding a new call, ending it, forgetting it, and
 *   the call metrics.
 */
import type { Counter } from 'prom-client';
import { counter } from '../metrics/registry.ts';
import type { AriChannel, AriEvent, HangupParams } from '../ari/types.ts';
import { AriConnectionError } from '../ari/errors.ts';
import {
  type Call,
  type CallSnapshot,
  type Direction,
  type Disposition,
  type HangupBy,
  type Leg,
  snapshotCall,
} from './model.ts';
import { CallNotFoundError, CallStateError } from './control.ts';
import type {
  CallContext,
  CallRecorder,
  CallServiceDeps,
  Flow,
  FlowName,
  TransferTargetHandlers,
} from './context.ts';
import { LegStates } from './leg-states.ts';
import { CallLegs } from './legs.ts';
import { CallLifecycle } from './lifecycle.ts';
import { CallEventRouter } from './routing.ts';
import { UnconfirmedChannels } from './unconfirmed.ts';

export { isGone } from './legs.ts';

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
   * answer from ARI, given up on, hung up by id until Asterisk confirms (src/calls/unconfirmed.ts).
   */
  readonly unconfirmed: UnconfirmedChannels;
  private readonly flows = new Map<FlowName, Flow>();
  private readonly flowByRole = new Map<string, Flow>();
  private readonly failures: Counter;
  private readonly lifecycle: CallLifecycle;
  private readonly legs: CallLegs;
  private readonly legStates: LegStates;
  private readonly router: CallEventRouter;

  constructor(
    readonly deps: CallServiceDeps,
    events: RuntimeEvents,
  ) {
    this.now = deps.now ?? Date.now;
    this.unconfirmed = new UnconfirmedChannels(deps.gateway, this.now);
    this.lifecycle = new CallLifecycle(this, events);
    this.failures = counter(deps.registry, {
      name: 'aricrm_call_handler_errors_total',
      help: 'Call flow steps that failed unexpectedly (the call was cleaned up).',
    });
    this.legs = new CallLegs(this);
    this.legStates = new LegStates(this);
    this.router = new CallEventRouter(this, this.legStates);
  }

  // -------------------------------------------------------------------------------------------
  // Flows
  // -------------------------------------------------------------------------------------------

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
    this.legStates.transfer = handlers;
  }

  /** The flow driving the call. Throws for a flow nobody registered (a wiring bug). */
  flowOf(ctx: CallContext): Flow {
    const flow = this.flows.get(ctx.flow);
    if (!flow) throw new Error(`no flow ${ctx.flow} registered`);
    return flow;
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

  // -------------------------------------------------------------------------------------------
  // ARI events (routing.ts)
  // -------------------------------------------------------------------------------------------

  /**
   * Entry point for ARI events (subscribe it to the gateway). Never throws: failures of a call's
   * handler are logged, counted and the call is cleaned up. See {@link CallEventRouter}.
   */
  handleEvent(event: AriEvent): void {
    this.router.handleEvent(event);
  }

  /**
   * Route a channel found in the app whose StasisStart never reached the engine as that
   * StasisStart would have; false, doing nothing, when it starts no call
   * ({@link CallEventRouter.startMissedCall}).
   */
  startMissedCall(channel: AriChannel, args: string[]): boolean {
    return this.router.startMissedCall(channel, args);
  }

  /** The playback finished (or was found gone by a reconciliation): the flow goes on. */
  onPlaybackDone(ctx: CallContext, playbackId: string): Promise<void> {
    return this.router.onPlaybackDone(ctx, playbackId);
  }

  // -------------------------------------------------------------------------------------------
  // Calls
  // -------------------------------------------------------------------------------------------

  /** Hold a new call driven by `flow` (counted in `aricrm_calls_active`). */
  register(call: Call, flow: FlowName, anchorChannelId: string): CallContext {
    return this.lifecycle.register(call, flow, anchorChannelId);
  }

  /** A call whose first channel came from the dialplan (inbound, outbound). */
  dialplanCall(
    channel: AriChannel,
    flow: FlowName,
    direction: Direction,
    from: string,
    to: string,
  ): CallContext {
    return this.lifecycle.dialplanCall(channel, flow, direction, from, to);
  }

  /**
   * The context of a call in progress. Throws CallStateError('call_ended') for an ended call the
   * service still holds, CallNotFoundError otherwise (unknown, or ended and only in the store:
   * the API tells those two apart from the store, src/calls/call-command-routes.ts).
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
  // Legs (legs.ts)
  // -------------------------------------------------------------------------------------------

  /** A new engine leg (`op-<uuid>`, `cu-<uuid>`), registered before it is created. */
  addEngineLeg(
    ctx: CallContext,
    role: 'operator' | 'customer',
    endpoint: string,
    extension: string | undefined,
  ): Leg {
    return this.legs.addEngineLeg(ctx, role, endpoint, extension);
  }

  /**
   * Create an operator leg with CALLERID set at create time, then dial it; `beforeCreate` runs
   * once the leg is in the call, before the create is sent ({@link CallLegs.placeOperatorLeg}).
   */
  placeOperatorLeg(
    ctx: CallContext,
    extension: string,
    beforeCreate?: (leg: Leg) => void,
  ): Promise<Leg> {
    return this.legs.placeOperatorLeg(ctx, extension, beforeCreate);
  }

  /** Create the customer leg through the trunk chosen by prefix, with the company caller ID. */
  placeCustomerLeg(ctx: CallContext): Promise<void> {
    return this.legs.placeCustomerLeg(ctx);
  }

  /**
   * The create or originate of an engine leg failed: the leg ended unanswered without a channel;
   * without an answer from ARI its channel is hung up by id ({@link CallLegs.legNotCreated}).
   */
  legNotCreated(ctx: CallContext, leg: Leg, err: unknown): void {
    this.legs.legNotCreated(ctx, leg, err);
  }

  /**
   * StasisStart of an engine leg (`args`: its Stasis arguments; none when a reconciliation found
   * it in Stasis): dial it, or hang it up if the call moved on ({@link CallLegs.onLegStasisStart}).
   */
  onLegStasisStart(ctx: CallContext, channelId: string, args?: string[]): Promise<void> {
    return this.legs.onLegStasisStart(ctx, channelId, args);
  }

  /** Dial once both the create was answered and the channel is in Stasis. */
  maybeDial(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legs.maybeDial(ctx, leg);
  }

  /** Ring the caller's channel (180) unless answered; false when the caller already hung up. */
  ringCaller(ctx: CallContext): Promise<boolean> {
    return this.legs.ringCaller(ctx);
  }

  /** Answer the caller's channel (not an engine-originated operator leg: it answered itself). */
  answerCaller(ctx: CallContext): Promise<void> {
    return this.legs.answerCaller(ctx);
  }

  /** Ask Asterisk to hang a leg up; a leg already gone (404) counts as done. */
  hangupLeg(ctx: CallContext, leg: Leg, reason?: HangupParams['reason']): Promise<void> {
    return this.legs.hangupLeg(ctx, leg, reason);
  }

  // -------------------------------------------------------------------------------------------
  // Leg states (leg-states.ts)
  // -------------------------------------------------------------------------------------------

  /** `Dial RINGING` of a leg: `call.ringing` for an operator (the screen pop). */
  onLegRinging(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.onLegRinging(ctx, leg);
  }

  /** `Dial ANSWER` of a leg: the transfer target, the flow's answer, or too late. */
  onLegAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.onLegAnswered(ctx, leg);
  }

  /** First answer wins: bridge it with the anchor, cancel the other dialled legs. */
  connect(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.connect(ctx, leg);
  }

  /** The per-call recording override: the CRM route's or the click-to-call request's. */
  recordOverride(ctx: CallContext): boolean | undefined {
    return this.legStates.recordOverride(ctx);
  }

  /** `ChannelDestroyed` of an engine leg. */
  onLegGone(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.onLegGone(ctx, leg);
  }

  /** `StasisEnd` of the caller channel (the dialplan leg). */
  onCallerGone(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.onCallerGone(ctx, leg);
  }

  /**
   * A dialled leg ended unanswered (or was never created): the transfer is called off, an
   * adopted call's transfer with nobody left ringing ends, else the flow goes on
   * ({@link Flow.legUnanswered}: retry, next extension, or end the call).
   */
  afterUnansweredLeg(ctx: CallContext, leg: Leg): Promise<void> {
    return this.legStates.afterUnansweredLeg(ctx, leg);
  }

  /** The leg is the target of the blind transfer in progress. */
  isTransferLeg(ctx: CallContext, leg: Leg): boolean {
    return this.legStates.isTransferLeg(ctx, leg);
  }

  // -------------------------------------------------------------------------------------------
  // Ending (lifecycle.ts)
  // -------------------------------------------------------------------------------------------

  /**
   * End the call: hang up every leg still ours (the caller with the cause of the disposition),
   * destroy the bridge, `call.ended` (with the recording link), then forget the call once its
   * channels are gone. No-op for an ended call.
   */
  endCall(
    ctx: CallContext,
    outcome: { disposition: Disposition; hangupBy: HangupBy; reason?: string },
  ): Promise<void> {
    return this.lifecycle.endCall(ctx, outcome);
  }

  /** Stop tracking a call once it has ended and all its channels are gone. */
  maybeForget(ctx: CallContext): void {
    this.lifecycle.maybeForget(ctx);
  }

  /**
   * Stop tracking a call: at once its channels and playbacks, the call itself once the journal
   * has committed its last change ({@link CallLifecycle.forget}).
   */
  forget(ctx: CallContext): void {
    this.lifecycle.forget(ctx);
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
        this.handOff(ctx);
      });
    ctx.tail = next;
    return next;
  }

  /**
   * Hand the call as it is now to the journal (the store) and its watchers: after each step of
   * {@link run}, and after a ringing announced ahead of its turn (src/calls/routing.ts).
   */
  handOff(ctx: CallContext): void {
    this.deps.journal?.record(ctx.call);
    this.notifyWatchers(ctx);
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
