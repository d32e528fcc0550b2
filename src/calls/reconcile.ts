/**
 * Reconciliation (calls survive an ARI outage and an engine restart):
 * making the engine's calls match what Asterisk shows again after the engine lost sight of them.
 *
 * - **ARI reconnect.** When the event WebSocket drops, Asterisk keeps the app's channels in
 *   Stasis and bridged, drops the events meanwhile and replays nothing on reconnect (fixtures
 *   facts 13, 14). When the gateway reports `connected` again, the engine lists channels and
 *   bridges (`GET /channels`, `GET /bridges`) and corrects every live call.
 * - **Engine restart.** At start-up the calls the store says are unfinished are adopted
 *   ({@link adoptedCallFromRecord}: legs, roles, extensions, times, event sequence), before the
 *   gateway connects; the first `connected` reconciles them the same way, and the bridge of a
 *   bridged call is found again in the bridge list.
 *
 * Per call, in its per-call promise chain (so never interleaved with its event handling; events
 * arriving meanwhile queue behind and are applied after, which the handlers tolerate since they
 * ignore what already happened), with the normal flow's own handlers:
 *
 * 1. every channel of an answered call is gone: it ended while the engine was away and who hung
 *    up is unknown: `answered`, `hangupBy: system`, `endReason: reconciled`;
 * 2. the anchor channel is gone (the inbound caller, the operator's phone of an outbound call,
 *    the click-to-call operator leg): handled like its hang-up (a caller gone while operators
 *    ring = abandoned, `canceled`; a party of a bridged call = answered, hung up by that party);
 * 3. otherwise: a caller now `Up` is noted; a dialled leg that entered Stasis unseen is dialled;
 *    a leg now `Up` is answered (bridged as usual, other legs cancelled), one now `Ringing` gets
 *    its `call.ringing`; a dialled leg that vanished ended unanswered (`no_answer` when it was
 *    ringing, else `failed`) and the flow goes on (next extension, nobody answered…); a party of
 *    a bridged call that vanished hung up;
 * 4. a greeting or failure tone whose PlaybackFinished was missed is treated as finished;
 * 5. adopted calls whose routing was lost (`routing`/`greeting`) are routed again (the greeting
 *    is not played twice); adopted calls left with nobody being dialled go on as if the last leg
 *    had just failed;
 * 6. a call still alive gets `call.recovered`.
 *
 * Calls ended by a reconciliation get `endReason: reconciled` unless the flow gives its own
 * reason (`abandoned`, `nobody_answered`…); their end time (and so talk time) is when the engine
 * found out, the moment the hang-up happened being unknown.
 *
 * This file holds the per-call decisions ({@link reconcileCall}). The reading of Asterisk's
 * listing is ./ari-view.ts, the adoption of stored calls ./adoption.ts (both re-exported here),
 * the pass over every call after each `connected` ./reconcile-pass.ts.
 */
import type { EventCallState } from '../events/types.ts';
import { inStasisOf, type AriView } from './ari-view.ts';
import {
  type Call,
  type CallState,
  type Disposition,
  type HangupBy,
  type Leg,
  callState,
} from './model.ts';

export {
  ariView,
  inStasisOf,
  isCallerUp,
  stasisArgsOf,
  strayChannels,
  type AriView,
} from './ari-view.ts';
export { adoptedCallFromRecord, type AdoptedCall, type CallFlow } from './adoption.ts';

/** Why the engine lost sight of a call (`call.recovered` `reason`). */
export type RecoveryReason = 'ari_reconnect' | 'engine_restart';

/**
 * One call as the call service lets reconciliation see and drive it: its model, and the normal
 * flow's own handlers (implemented in `service.ts` over its private per-call context).
 */
export interface ReconcileTarget {
  readonly call: Call;
  /**
   * The name of the flow driving the call (src/calls/context.ts `FlowName`): `inbound`,
   * `outbound`, `click2call` have their own rules here; another flow gets the common ones.
   */
  readonly flow: string;
  /** The channel that stays while others are dialled (inbound caller, operator phone, …). */
  readonly anchorChannelId: string;
  /**
   * Channels of the call that existed in Asterisk before the listing was asked for (legs whose
   * create was not yet answered are left out: the listing may predate them).
   */
  readonly eligible: ReadonlySet<string>;
  /** For a call adopted from the store at start-up: the API state it was stored in. */
  readonly adoptedState?: CallState;
  /** The greeting or failure-tone playback the call waits on, if any. */
  readonly awaitedPlaybackId?: string;
  /** The channel was handed back to the dialplan (a transfer): not the call's any more. */
  isReleased(channelId: string): boolean;
  /** Whether the playback still exists (`GET /playbacks/{id}`; true when unsure). */
  playbackExists(playbackId: string): Promise<boolean>;
  /** The caller's channel is answered (`Up`). */
  callerAnswered(): void;
  /** As a StasisStart of this engine leg: dial it, or hang it up if the call moved on. */
  legEnteredStasis(leg: Leg): Promise<void>;
  /** As `Dial RINGING` of this leg (`call.ringing`). */
  legRinging(leg: Leg): Promise<void>;
  /** As `Dial ANSWER` of this leg (first answer bridged, the others cancelled). */
  legAnswered(leg: Leg): Promise<void>;
  /** As `ChannelDestroyed` of this engine leg. */
  legGone(leg: Leg): Promise<void>;
  /** As `StasisEnd` of this dialplan (caller) leg. */
  callerGone(leg: Leg): Promise<void>;
  /** Mark the leg ended and stop tracking its channel, without running any flow. */
  legVanished(leg: Leg): void;
  /** As `PlaybackFinished` of this playback. */
  playbackDone(playbackId: string): Promise<void>;
  /** Adopted call with nobody being dialled: go on as if `lastEnded` had just ended unanswered. */
  nothingLive(lastEnded: Leg | undefined): Promise<void>;
  /** Adopted call whose route was lost (`routing`/`greeting`): route it again (in the background). */
  resumeRouting(): void;
  /** Put the channels in the call's mixing bridge, creating it (again) when it does not exist. */
  bridge(channelIds: string[], bridgeExists: boolean): Promise<void>;
  /** Ended call: ask Asterisk again to hang up this leg (the first request may have been lost). */
  hangup(leg: Leg): Promise<void>;
  /** Ended call: destroy its bridge (again). */
  destroyBridge(): Promise<void>;
  /** Ended call: stop tracking it if none of its channels is left. */
  forgetIfDone(): void;
  /** End the call (hang up what is left, destroy the bridge, `call.ended`). */
  end(outcome: { disposition: Disposition; hangupBy: HangupBy; reason: string }): Promise<void>;
  /** Send `call.recovered` with the call's state. */
  recovered(state: EventCallState): void;
}

/** What became of a call: kept (alive, `call.recovered` sent) or ended. */
export type ReconcileResult = 'kept' | 'ended';

const RINGING = new Set(['Ringing', 'Ring']);

/**
 * Reconcile one call with Asterisk's view (the steps of the module comment). Must run inside the
 * call's per-call chain. Throws what the flow's handlers throw (the chain then ends the call).
 */
export async function reconcileCall(t: ReconcileTarget, view: AriView): Promise<ReconcileResult> {
  const { call } = t;
  if (call.phase === 'ended') {
    await cleanUpEnded(t, view);
    return 'ended';
  }
  if (t.adoptedState !== undefined) refreshAdopted(t, view);
  // The listing shows the bridge as it was before this step: only a call already bridged then
  // can be checked against it.
  const bridgedBefore = call.phase === 'bridged';

  const live = [...call.legs.values()].filter(
    (leg) => !leg.ended && !t.isReleased(leg.channelId) && t.eligible.has(leg.channelId),
  );
  const vanished = live.filter((leg) => !view.channels.has(leg.channelId));
  for (const leg of vanished) {
    // Its ChannelDestroyed (and cause) was lost: a ringing leg most likely rang out.
    if (leg.role !== 'caller' && !leg.hangupRequested)
      leg.outcome ??= leg.ringing ? 'no_answer' : 'failed';
  }

  const anchor = call.legs.get(t.anchorChannelId);
  if (call.answeredAt !== undefined && live.length > 0 && vanished.length === live.length) {
    // 1. Nothing of an answered call is left: who hung up is unknown.
    for (const leg of vanished) t.legVanished(leg);
    await t.end({ disposition: 'answered', hangupBy: 'system', reason: 'reconciled' });
    return 'ended';
  }
  if (anchor && vanished.includes(anchor)) {
    // 2. The anchor hung up: its hang-up decides, as if its event had come now.
    for (const leg of vanished) if (leg !== anchor) t.legVanished(leg);
    if (anchor.role === 'caller') await t.callerGone(anchor);
    else await t.legGone(anchor);
  } else {
    // 3. The anchor is still there: replay what changed, answers before ring and hang-ups.
    const present = live.filter((leg) => view.channels.has(leg.channelId));
    const stateOf = (leg: Leg): string => view.channels.get(leg.channelId)?.state ?? '';
    for (const leg of present)
      if (leg.role === 'caller' && stateOf(leg) === 'Up') t.callerAnswered();
    const engineLegs = (): Leg[] =>
      present.filter((leg) => leg.role !== 'caller' && !leg.ended && !leg.hangupRequested);
    for (const leg of engineLegs()) {
      const channel = view.channels.get(leg.channelId)!;
      if (!inStasisOf(channel, view.app)) continue;
      const c2cAnchor = t.flow === 'click2call' && leg.channelId === t.anchorChannelId;
      const dialling = call.phase === 'dialing' || call.transfer?.channelId === leg.channelId;
      const undialled = dialling && (!leg.dialed || c2cAnchor);
      if (!leg.inStasis || undialled) await t.legEnteredStasis(leg);
    }
    for (const leg of engineLegs())
      if (!leg.answered && stateOf(leg) === 'Up') await t.legAnswered(leg);
    for (const leg of engineLegs())
      if (!leg.answered && !leg.ringing && RINGING.has(stateOf(leg))) await t.legRinging(leg);
    for (const leg of vanished) {
      if (leg.ended) continue;
      if (leg.role === 'caller') await t.callerGone(leg);
      else await t.legGone(leg);
    }
  }

  // A bridged call whose bridging was cut short (ARI unreachable mid-step): finish it.
  if (bridgedBefore && call.phase === 'bridged') await repairBridge(t, view);

  // 4. A greeting or failure tone that finished while the engine was away.
  const playbackId = t.awaitedPlaybackId;
  if (playbackId && !isEnded(call) && !(await t.playbackExists(playbackId)))
    await t.playbackDone(playbackId);

  // 5. Adopted calls whose in-memory progress was lost with the old process.
  if (t.adoptedState !== undefined && !isEnded(call)) {
    if (call.phase === 'routing' || call.phase === 'greeting') {
      t.resumeRouting();
    } else if (call.phase === 'dialing' && !someoneDialled(t)) {
      const lastEnded = [...call.legs.values()]
        .filter((leg) => leg.role !== 'caller' && leg.ended)
        .at(-1);
      await t.nothingLive(lastEnded);
    }
  }

  if (isEnded(call)) return 'ended';
  // 6. Still alive.
  t.recovered(callState(call) as EventCallState);
  return 'kept';
}

/**
 * A bridged call: the anchor and the answered party must both be in the call's bridge. A bridge
 * that vanished is created again; a missing party is added.
 */
async function repairBridge(t: ReconcileTarget, view: AriView): Promise<void> {
  const { call } = t;
  const parties = [...call.legs.values()].filter(
    (leg) =>
      !leg.ended &&
      !leg.hangupRequested &&
      view.channels.has(leg.channelId) &&
      (leg.channelId === t.anchorChannelId ||
        (leg.role !== 'caller' && leg.outcome === 'answered')),
  );
  if (parties.length < 2) return;
  const bridge = view.bridges.find((b) => b.id === call.bridgeId);
  const missing = parties.filter((leg) => !bridge?.channels.includes(leg.channelId));
  if (missing.length > 0)
    await t.bridge(
      missing.map((leg) => leg.channelId),
      bridge !== undefined,
    );
}

/**
 * An ended call still tracked because some of its channels never reported their end (their
 * hang-up may have been lost with the connection): hang up those still there, forget the others,
 * destroy the bridge if it is still there.
 */
async function cleanUpEnded(t: ReconcileTarget, view: AriView): Promise<void> {
  const { call } = t;
  for (const leg of call.legs.values()) {
    if (leg.ended || t.isReleased(leg.channelId) || !t.eligible.has(leg.channelId)) continue;
    if (view.channels.has(leg.channelId)) await t.hangup(leg);
    else t.legVanished(leg);
  }
  if (call.bridgeId !== undefined && view.bridges.some((b) => b.id === call.bridgeId))
    await t.destroyBridge();
  t.forgetIfDone();
}

/** Read through a call so TypeScript does not narrow a phase the flow handlers change. */
function isEnded(call: Call): boolean {
  return call.phase === 'ended';
}

/** A dialled leg that can still answer (a click-to-call operator who answered is not one). */
function someoneDialled(t: ReconcileTarget): boolean {
  return [...t.call.legs.values()].some(
    (leg) =>
      leg.role !== 'caller' &&
      !leg.ended &&
      !leg.hangupRequested &&
      !(t.flow === 'click2call' && leg.channelId === t.anchorChannelId && leg.answered),
  );
}

/**
 * Adopted call: set what the store does not keep from what Asterisk shows: a leg is in Stasis,
 * dialled (not `Down`), ringing (only if the stored state says a `call.ringing` went out), the
 * bridge (named `call-<id>`, or holding one of the call's channels).
 */
function refreshAdopted(t: ReconcileTarget, view: AriView): void {
  const { call } = t;
  const ringingSent =
    t.adoptedState === 'operator_ringing' || t.adoptedState === 'customer_ringing';
  for (const leg of call.legs.values()) {
    const channel = view.channels.get(leg.channelId);
    if (leg.ended || !channel) continue;
    leg.created = true;
    leg.inStasis = inStasisOf(channel, view.app);
    if (leg.role === 'caller') continue;
    // An originated click-to-call operator leg dials by itself; a created leg still Down may not
    // have been dialled before the restart (it is dialled now).
    leg.dialed = (t.flow === 'click2call' && leg.role === 'operator') || channel.state !== 'Down';
    if (ringingSent && RINGING.has(channel.state)) leg.ringing = true;
  }
  if (call.bridgeId === undefined) {
    const bridge =
      view.bridges.find((b) => b.name === `call-${call.id}`) ??
      view.bridges.find((b) => b.channels.some((id) => call.legs.get(id)?.ended === false));
    if (bridge) call.bridgeId = bridge.id;
  }
}
