/**
 * The shapes shared by the call runtime (src/calls/runtime.ts) and the flows
 * (src/calls/flows/): what the call service needs (its dependencies and settings), the per-call
 * working state ({@link CallContext}) and the interface a flow implements ({@link Flow}).
 */
import type { AriChannel, AriEvent, AriGateway } from '../ari/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { Registry } from 'prom-client';
import type { Route, RouteDecision } from '../crm/types.ts';
import type { Call, CallSnapshot, Disposition, Leg } from './model.ts';
import type { TrunkRoute } from './dialstrings.ts';
import type { CallNotifier, EventJournal } from './notifier.ts';
import type { HostVerbResult, KeptRecording, VerbCrm } from './verbs/types.ts';

/** Where the service asks for inbound routes (the CRM route client). */
export interface RouteSource {
  lookup(request: { callId: string; from: string; did: string }): Promise<RouteDecision>;
}

/**
 * The recordings domain (src/recordings/), plugged in with
 * `CallService.setRecorder`. The service hands it the call's live `Call` when the bridge is
 * created and tells it when `call.ended` was emitted: from then on the recorder holds that `Call`
 * (for `recording.ready`, which continues the call's event sequence) until its recording is
 * settled, even after the service forgot the call.
 */
export interface CallRecorder {
  /**
   * The call's mixing bridge was just created with both parties in it: record it when
   * configured. `record`: the per-call override (CRM route answer or click-to-call request).
   * Must not throw.
   */
  bridgeCreated(call: Call, bridgeId: string, record: boolean | undefined): Promise<void>;
  /** The signed recording link `call.ended` carries; undefined when the call is not recorded. */
  recordingUrl(callId: string): string | undefined;
  /** `call.ended` of this call was just emitted (the last `call.*` event). Must not throw. */
  callEnded(call: Call): void;
  /**
   * Keep the finished call script recording `name` of call `callId` (the `record` verb): fetch
   * it from Asterisk, verify, store, and sign a link (`src/recordings/verb-recordings.ts`).
   * `durationSec`: Asterisk's RecordingFinished duration. Absent: scripts report only the name.
   *
   * @throws an Error when it could not be kept (the recording stays in Asterisk)
   */
  keepVerbRecording?(callId: string, name: string, durationSec?: number): Promise<KeptRecording>;
}

/** Behaviour settings of the call flows (from the configuration). */
export interface CallServiceOptions {
  /** Dial string template of operator phones, e.g. `PJSIP/{extension}`. */
  operatorEndpoint: string;
  /** Prefix of CALLERID(name) shown to operators, e.g. `CRM: ` → `CRM: Ivan Petrov`. */
  callerIdPrefix: string;
  /** Ring time of an operator leg when the route does not say, in seconds. */
  defaultRingTimeoutSec: number;
  /** Ring time of a customer leg (outbound and click-to-call), in seconds. */
  outboundRingTimeoutSec: number;
  /** Dialplan location for inbound callers nobody answered; undefined = hang up. */
  noAnswerDialplan?: { context: string; extension: string; priority: number };
  /** Outbound trunks by number prefix. */
  trunks: readonly TrunkRoute[];
  /** Caller ID number presented to customers on outbound calls. */
  companyCallerId: string;
  /** CALLERID(name) on the operator's phone for click-to-call (default `CRM`). */
  clickToCallCallerIdName?: string;
  /** Ring time of the click-to-call operator leg, in seconds (default 20). */
  clickToCallRingTimeoutSec?: number;
  /** Dialplan context of service numbers for transfers (default `service`). */
  serviceContext?: string;
  /** Ring time of a notification call's customer channel, in seconds (default 30). */
  notificationRingTimeoutSec?: number;
  /** Dialplan context running AMD() for notification calls that ask for it (default `crm-amd`). */
  amdContext?: string;
}

/**
 * The toll-fraud guard of numbers operators dial from their phones (src/security/guard.ts
 * `OperatorDialGuard`): the destination allow-list and denied number types, checked before the
 * engine dials the trunk. It logs and counts its refusals itself.
 */
export interface OutboundDialGuard {
  /**
   * @param request `number` as dialled (`Stasis(crm-app,outbound,<number>)`), the operator's
   *   `extension` when known, the call's id
   * @returns undefined when the number may be dialled; else the refusal's `reason`, the call's
   *   `endReason` (`destination_not_allowed`, `destination_type_not_allowed`)
   */
  check(request: {
    number: string;
    extension?: string;
    callId: string;
  }): { reason: string } | undefined;
}

/** What the service needs. */
export interface CallServiceDeps {
  gateway: AriGateway;
  routes: RouteSource;
  notifier: CallNotifier;
  /**
   * The CRM client of call scripts (`gather.actionUrl`, `redirect`; src/calls/verbs/crm.ts).
   * Unset (unit tests): those verbs fail `not_configured` and the script goes on.
   */
  verbCrm?: VerbCrm;
  /**
   * Checks numbers operators dial from their phones before the trunk is dialled; a refused call
   * ends `failed` with the refusal as `endReason` and the operator's phone is hung up with cause
   * congestion. Unset (unit tests): every number is dialled.
   */
  outboundGuard?: OutboundDialGuard;
  /**
   * Told after every per-call step that the call may have changed (legs created, answered,
   * ended…), so the store holds each state change (src/calls/journal.ts). Optional in tests.
   * With `whenCommitted`, an ended call stays in memory until the store holds its last change
   * (so `GET /v1/calls/{id}` never misses it); without, it is dropped once its channels are gone.
   */
  journal?: EventJournal & {
    whenCommitted?(callId: string, committed: () => void): void;
    /** `committed` once the store holds what was recorded of the call so far. */
    whenWritten?(callId: string, written: () => void): void;
    /** True while the last store write failed and is being retried. */
    failing?(): boolean;
    /** The call left memory: the journal may forget what it wrote of it. */
    release?(callId: string): void;
  };
  /**
   * Operator presence (src/operators/): inbound routing rings only operators who take calls now
   * (available, not offline, not on a call). Unset: every extension of a route is rung.
   */
  presence?: { takesCalls(extension: string): boolean };
  /**
   * Which of these channel ids the store has as a leg of some call, ended or not
   * (`store.calls.knownChannels`): at each connect, a channel in the app that no live call
   * tracks is hung up when the store knows it (a leftover of an ended call), routed as a new
   * call when it does not (a caller whose StasisStart was missed). Unset (unit tests): no
   * channel is known to the store.
   */
  knownChannels?(channelIds: readonly string[]): Promise<ReadonlySet<string>>;
  logger: Logger;
  registry: Registry;
  options: CallServiceOptions;
  now?: () => number;
}

/**
 * Which flow drives a call: `inbound` (`Stasis(crm-app,inbound,<DID>)`), `outbound`
 * (`Stasis(crm-app,outbound,<number>)` from an operator's phone), `click2call` (`POST /v1/calls`),
 * or the name another flow registered with (`CallRuntime.registerFlow`). Stored in the call's
 * context; the runtime dispatches the call's events to that flow. Calls adopted after a restart
 * are of the flows in `CallFlow` (src/calls/adoption.ts).
 */
export type FlowName = string;

/**
 * What the call's caller channel (`Call.callerChannelId`, the leg with role `caller` or the
 * first engine leg) is, which decides who is the customer and who the operator:
 * - `customer`: a customer calling in from the dialplan (inbound);
 * - `operator-phone`: an operator's phone dialling out from the dialplan (outbound);
 * - `operator-leg`: an operator leg the engine originated (click-to-call): never answered by the
 *   engine (it enters Stasis only once the operator picked up, fixtures fact 8).
 */
export type CallerChannel = 'customer' | 'operator-phone' | 'operator-leg';

/** Per-call working state (never exposed). */
export interface CallContext {
  call: Call;
  flow: FlowName;
  log: Logger;
  tail: Promise<void>;
  /**
   * Steps queued or running in the per-call chain that may change the call (everything but
   * a leg's set-up on its StasisStart and the events that can only mark a leg ringing): while
   * there are none, a leg's ringing is announced at once instead of in its turn
   * (`CallRuntime.handleEvent`).
   */
  changingSteps: number;
  route?: Route;
  /** Extensions still to try (sequential strategy). */
  pending: string[];
  ringTimeoutSec: number;
  /**
   * The channel that stays while others are dialled and bridged to it: the inbound caller, the
   * operator's phone (outbound), the operator leg (click-to-call), the customer during a blind
   * transfer.
   */
  anchorChannelId: string;
  greetingPlaybackId?: string;
  beepPlaybackId?: string;
  /** Playbacks of the call the runtime maps to it (their `PlaybackFinished` goes to the flow). */
  playbacks: Set<string>;
  callerAnswered: boolean;
  /** Channels handed back to the dialplan (`continue`): not ours to hang up any more. */
  released: Set<string>;
  /** A blind transfer to an extension is ringing the new operator. */
  transferring: boolean;
  /** How the call ends once the operator heard the failure beep (click-to-call). */
  endAfterBeep?: { disposition: Disposition; reason: string };
  clickToCall?: {
    operator: string;
    tries: number;
    triesPeriodSec: number;
    attempt: number;
    /** Per-call recording override of the request. */
    record?: boolean;
  };
  retryTimer?: NodeJS.Timeout;
  forgetTimer?: NodeJS.Timeout;
  /**
   * A call script runs on the caller's channel (an inbound call whose CRM route is `verbs`).
   * `dial`: the `dial` verb (or `transfer` to an extension, `blind`) whose operators ring; it
   * is settled once the call is bridged or nobody rings any more.
   */
  script?: { dial?: { done: (result: HostVerbResult) => void; blind: boolean } };
  /** A reconciliation step runs (src/calls/reconcile.ts): calls it ends get `reconciled`. */
  reconciling?: boolean;
  /** Adopted from the store at start-up, not yet reconciled: its stored state and when. */
  adoption?: { state: CallSnapshot['state']; sinceMs: number };
  /** A step failed because ARI was unreachable: the call waits for a reconciliation. */
  needsRepair?: boolean;
  /**
   * The CRM asked to hang the call up (`POST /v1/calls/{id}/hangup`) and that step waits its
   * turn: a leg ending unanswered meanwhile ends the call as the CRM asked (`apiHangupOutcome`,
   * src/calls/lifecycle.ts) instead of letting the flow go on.
   */
  apiHangup?: boolean;
  /** `CallRuntime.forget` ran: no channel maps to the call any more. */
  forgotten?: boolean;
}

/**
 * A call flow: what happens to the calls it drives. The runtime (src/calls/runtime.ts) owns the
 * legs, the bridge and the end of every call; it hands a flow the StasisStart of the roles the
 * flow registered for, and the moments of the flow's calls where the flows differ. Every method
 * runs inside the call's per-call chain, except {@link Flow.start} (which queues its own steps,
 * since it creates the call). A new flow registers itself with `CallRuntime.registerFlow`
 * without touching the others.
 */
export interface Flow {
  readonly name: FlowName;
  /**
   * StasisStart roles (the first Stasis argument, e.g. `inbound` for
   * `Stasis(crm-app,inbound,<DID>)`) whose channel starts a new call of this flow.
   */
  readonly stasisRoles: readonly string[];
  /** What the call's caller channel is (see {@link CallerChannel}). */
  readonly callerChannel: CallerChannel;
  /** A channel entered Stasis with one of {@link stasisRoles}: create its call and drive it. */
  start?(channel: AriChannel, args: string[]): Promise<void>;
  /**
   * An engine leg of a dialling call entered Stasis (not a transfer target; a leg of a call
   * that is not `dialing` any more is hung up before). `args`: its Stasis arguments (empty
   * when a reconciliation found it in Stasis). Absent: it is dialled once its create was
   * answered.
   */
  legInStasis?(ctx: CallContext, leg: Leg, args: string[]): Promise<void>;
  /**
   * An answered engine leg of a call in progress entered Stasis again: the flow had sent it to
   * the dialplan (`POST /channels/{id}/continue`, e.g. to run `AMD()`), whose
   * `Stasis(<app>,<args>)` brought it back; `args` are those Stasis arguments. The StasisEnd
   * before it did not end the call (the runtime ends a call on an engine leg's ChannelDestroyed,
   * never on its StasisEnd). Absent: such a leg is hung up.
   */
  legBackInStasis?(ctx: CallContext, leg: Leg, args: string[]): Promise<void>;
  /**
   * A leg of a dialling call answered (not a transfer target). Absent: the first answer is
   * bridged with the anchor and the other legs cancelled (`CallRuntime.connect`).
   */
  legAnswered?(ctx: CallContext, leg: Leg): Promise<void>;
  /** A dialled leg of a dialling call ended unanswered (or was never created): go on or end. */
  legUnanswered(ctx: CallContext, leg: Leg): Promise<void>;
  /**
   * An event about one of the call's channels that the runtime does not act on itself (e.g.
   * `ChannelDtmfReceived`, `ChannelHold`); the runtime acts on StasisStart, `Dial`,
   * `ChannelStateChange` (`Ringing`, `Up`), `ChannelDestroyed` and `StasisEnd`, calling the
   * methods above.
   */
  channelEvent?(ctx: CallContext, leg: Leg, event: AriEvent): Promise<void>;
  /** `PlaybackFinished` of one of the call's playbacks (`CallRuntime.trackPlayback`). */
  playbackFinished?(ctx: CallContext, playbackId: string): Promise<void>;
  /**
   * An adopted call with nobody being dialled and no leg that ended unanswered. Absent: the
   * call ends `failed`.
   */
  nobodyDialled?(ctx: CallContext): Promise<void>;
  /**
   * An adopted call (after an engine restart) the reconciliation kept: the flow may finish it
   * when its progress was lost with the old process (a notification call's script). Runs in
   * the per-call chain, after the reconciliation step.
   */
  adopted?(ctx: CallContext): Promise<void>;
  /**
   * An adopted call whose route was lost with the old process (`routing`/`greeting`): route it
   * again. Runs outside the per-call chain (it may wait for the CRM); queue the steps with
   * `CallRuntime.run`.
   */
  resume?(ctx: CallContext): Promise<void>;
}

/**
 * The blind transfer to an extension (src/calls/flows/transfer.ts), told by the runtime about
 * the leg ringing the transfer target (`Call.transfer.channelId`), whatever the call's flow.
 */
export interface TransferTargetHandlers {
  /** The target answered: it joins the customer's bridge and replaces the first operator. */
  targetAnswered(ctx: CallContext, leg: Leg): Promise<void>;
  /** The target did not answer (busy, rang out, unreachable, refused): the call goes on. */
  targetFailed(ctx: CallContext, leg: Leg): Promise<void>;
}
