/**
 * Call flows over the ARI gateway (BRIEF "Shape": the engine owns every channel and bridge of its
 * calls; Asterisk never hangs up the other leg nor destroys a bridge, fixtures fact 9):
 *
 * - inbound (F1): `Stasis(crm-app,inbound,<DID>)`: ring the caller, ask the CRM, optionally greet,
 *   ring operators (ring-all or sequential), bridge the first answer, cancel the others;
 * - outbound: `Stasis(crm-app,outbound,<number>)` from an operator's phone: dial the customer
 *   through the trunk chosen by prefix and bridge;
 * - click-to-call (F2): originate the operator leg first (retried when busy or not answering),
 *   then dial the customer leg and bridge; a failed customer leg gets a short beep to the operator;
 * - hang-up, transfer to a service number or blind to an extension (F7), current call (F8).
 *
 * Concurrency: events of one call are handled one at a time, in arrival order (a per-call promise
 * chain), so a flow never sees half-applied state. Long waits (the CRM lookup, a greeting, the
 * period between operator tries) happen outside that chain; every step re-checks the phase.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from '../metrics/registry.ts';
import type { AriChannel, AriEvent, AriGateway, HangupParams } from '../ari/types.ts';
import {
  AriBadRequestError,
  AriConnectionError,
  AriNotFoundError,
  AriServerError,
} from '../ari/errors.ts';
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
  callState,
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
import type { CallNotifier, EventJournal } from './notifier.ts';
import type { UnfinishedCallRecord } from '../store/calls.ts';
import {
  adoptedCallFromRecord,
  reconcileAll,
  type ReconcileReport,
  type ReconcileTarget,
} from './reconcile.ts';
import {
  CallNotFoundError,
  CallStateError,
  type CallControl,
  type ClickToCallRequest,
  type CurrentCall,
  type TransferRequest,
} from './control.ts';

/** Where the service asks for inbound routes (the CRM route client). */
export interface RouteSource {
  lookup(request: { callId: string; from: string; did: string }): Promise<RouteDecision>;
}

/**
 * The recordings domain (BRIEF F5, src/recordings/), plugged in with
 * {@link CallService.setRecorder}. The service hands it the call's live `Call` when the bridge is
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
}

/** What the service needs. */
export interface CallServiceDeps {
  gateway: AriGateway;
  routes: RouteSource;
  notifier: CallNotifier;
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
  logger: Logger;
  registry: Registry;
  options: CallServiceOptions;
  now?: () => number;
}

/** Which flow drives a call. */
type Flow = 'inbound' | 'outbound' | 'click2call';

/** Per-call working state (never exposed). */
interface CallContext {
  call: Call;
  flow: Flow;
  log: Logger;
  tail: Promise<void>;
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
    /** Per-call recording override of the request (F5). */
    record?: boolean;
  };
  retryTimer?: NodeJS.Timeout;
  forgetTimer?: NodeJS.Timeout;
  /** A reconciliation step runs (src/calls/reconcile.ts): calls it ends get `reconciled`. */
  reconciling?: boolean;
  /** Adopted from the store at start-up, not yet reconciled: its stored state and when. */
  adoption?: { state: CallSnapshot['state']; sinceMs: number };
  /** A step failed because ARI was unreachable: the call waits for a reconciliation. */
  needsRepair?: boolean;
  /** {@link CallService.forget} ran: no channel maps to the call any more. */
  forgotten?: boolean;
}

/** Events of the service for in-process listeners (tests, the future WebSocket hub). */
export interface CallServiceEvents {
  ended: [CallSnapshot];
  /**
   * The service let go of the call with this id: its channels are gone and the journal has
   * committed its last change (from now on only the store knows the call).
   */
  released: [string];
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
 * from StasisStart (`inbound,<DID>`, `outbound,<number>`) and from {@link startClickToCall}, and
 * drives them to the end.
 */
export class CallService extends EventEmitter<CallServiceEvents> implements CallControl {
  private readonly byChannel = new Map<string, CallContext>();
  private readonly byPlayback = new Map<string, CallContext>();
  private readonly active = new Map<string, CallContext>();
  private readonly watchers = new Map<string, Set<(call: CallSnapshot) => void>>();
  private readonly now: () => number;
  private readonly activeGauge: Gauge<'direction'>;
  private readonly endedCounter: Counter<'direction' | 'disposition'>;
  private readonly failures: Counter;
  private repairTimer: NodeJS.Timeout | undefined;
  private recorder: CallRecorder | undefined;

  constructor(private readonly deps: CallServiceDeps) {
    super();
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
   * Plug in the recordings domain (BRIEF F5; see {@link CallRecorder}). Calls bridged from now on
   * are offered to it.
   */
  setRecorder(recorder: CallRecorder): void {
    this.recorder = recorder;
  }

  /**
   * Live view of a call the service holds: in progress, or ended but not yet committed to the
   * store (src/calls/journal.ts); undefined otherwise (unknown, or ended and in the store, where
   * `GET /v1/calls/{id}` finds it).
   */
  getCall(callId: string): CallSnapshot | undefined {
    const ctx = this.active.get(callId);
    return ctx ? snapshotCall(ctx.call, this.now()) : undefined;
  }

  /** Every call in progress. */
  activeCalls(): CallSnapshot[] {
    return [...this.active.values()]
      .filter((ctx) => ctx.call.phase !== 'ended')
      .map((ctx) => snapshotCall(ctx.call, this.now()));
  }

  /** Number of channels the service is tracking (for leak checks). */
  trackedChannels(): number {
    return this.byChannel.size;
  }

  /**
   * What the service holds in memory (leak checks; issue 5 "no heap growth"): `calls` held (live,
   * and ended ones waiting for their store commit), `channels` and `playbacks` mapped to a call,
   * `watchedCalls` with a {@link watchCall} listener. All 0 once every call ended and was stored.
   */
  memoryFootprint(): { calls: number; channels: number; playbacks: number; watchedCalls: number } {
    return {
      calls: this.active.size,
      channels: this.byChannel.size,
      playbacks: this.byPlayback.size,
      watchedCalls: this.watchers.size,
    };
  }

  /** Wait until every call's queued work has run (tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.active.values()].map((ctx) => ctx.tail));
  }

  /** See {@link CallControl.whenStored}: the journal's commit of the call, bounded by `timeoutMs`. */
  whenStored(callId: string, timeoutMs: number): Promise<boolean> {
    const journal = this.deps.journal;
    if (!journal?.whenWritten) return Promise.resolve(true);
    const whenWritten = journal.whenWritten.bind(journal);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      whenWritten(callId, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** See {@link CallControl.storeFailing}. */
  storeFailing(): boolean {
    return this.deps.journal?.failing?.() ?? false;
  }

  /** Click-to-call calls not ended yet. */
  liveOriginatedCalls(): number {
    let n = 0;
    for (const ctx of this.active.values())
      if (ctx.call.originated && ctx.call.phase !== 'ended') n++;
    return n;
  }

  /**
   * Click-to-call (F2, seed 003 makecall): originate the operator leg with CALLERID
   * `"<clickToCallCallerIdName>" <customer number>`; once the operator answers, dial the customer
   * through the trunk and bridge. The operator leg is retried `tries` times, `triesPeriodSec`
   * apart, when busy or not answering. Returns at once.
   */
  startClickToCall(request: ClickToCallRequest): CallSnapshot {
    const id = randomUUID();
    const now = this.now();
    const call: Call = {
      id,
      direction: 'out',
      from: request.operator,
      to: request.to,
      phase: 'dialing',
      legs: new Map(),
      callerChannelId: '',
      operatorExtension: request.operator,
      startedAt: now,
      nextSequence: 1,
      variables: request.variables,
      originated: true,
    };
    const ctx = this.register(call, 'click2call', '');
    ctx.clickToCall = {
      operator: request.operator,
      tries: request.tries,
      triesPeriodSec: request.triesPeriodSec,
      attempt: 0,
      record: request.record,
    };
    ctx.log.info('click-to-call', {
      operator: request.operator,
      to: request.to,
      tries: request.tries,
      requestedBy: request.requestedBy,
    });
    this.deps.notifier.started(call);
    void this.run(ctx, () => this.originateOperator(ctx));
    return snapshotCall(call, now);
  }

  /** Hang up every leg of a live call (API). */
  async hangupCall(callId: string): Promise<CallSnapshot> {
    const ctx = this.liveContext(callId);
    await this.run(ctx, () =>
      this.endCall(ctx, {
        disposition: ctx.call.answeredAt !== undefined ? 'answered' : 'canceled',
        hangupBy: 'system',
        reason: 'api_hangup',
      }),
    );
    return snapshotCall(ctx.call, this.now());
  }

  /**
   * Transfer a bridged call (F7, seed 003 transfer). `service`: the customer leaves the bridge
   * and continues in the dialplan at `serviceContext,<to>,1`; the operator leg is hung up and the
   * call ends (`endReason: transferred`). `extension`: the operator leg is hung up and operator
   * `to` is rung; on answer they join the customer's bridge (same call id).
   */
  async transferCall(callId: string, request: TransferRequest): Promise<CallSnapshot> {
    const ctx = this.liveContext(callId);
    let problem: CallStateError | undefined;
    await this.run(ctx, async () => {
      if (ctx.call.phase === 'ended') {
        problem = new CallStateError('call_ended', `call ${callId} has ended`);
      } else if (ctx.transferring) {
        problem = new CallStateError('transfer_in_progress', `call ${callId} is being transferred`);
      } else if (ctx.call.phase !== 'bridged' || !this.customerLeg(ctx) || !this.operatorLeg(ctx)) {
        problem = new CallStateError('call_not_bridged', `call ${callId} is not bridged yet`);
      } else if (request.kind === 'service') {
        await this.transferToService(ctx, request.to);
      } else {
        await this.transferToExtension(ctx, request.to);
      }
    });
    if (problem) throw problem;
    return snapshotCall(ctx.call, this.now());
  }

  /** The live call that owns `channelId` (see {@link CallControl.findCallByChannel}). */
  findCallByChannel(channelId: string): CallSnapshot | undefined {
    const ctx = this.byChannel.get(channelId);
    return ctx && ctx.call.phase !== 'ended' ? snapshotCall(ctx.call, this.now()) : undefined;
  }

  /** Follow a call's changes (see {@link CallControl.watchCall}). */
  watchCall(callId: string, listener: (call: CallSnapshot) => void): () => void {
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

  /** The call the operator at `extension` is on, ringing or talking (F8). */
  currentCallOf(extension: string): CurrentCall | undefined {
    for (const ctx of this.active.values()) {
      const { call } = ctx;
      if (call.phase === 'ended') continue;
      const onIt = [...call.legs.values()].some(
        (leg) =>
          !leg.ended &&
          !leg.hangupRequested &&
          leg.extension === extension &&
          (leg.role === 'caller' || leg.ringing || leg.answered),
      );
      if (!onIt) continue;
      const customer = this.customerLeg(ctx);
      return {
        callId: call.id,
        customerChannelId: customer?.channelId ?? '',
        callerId: {
          number: this.customerNumber(ctx),
          name: call.customer?.name ?? call.callerName ?? '',
        },
        direction: call.direction,
        state: callState(call),
      };
    }
    return undefined;
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
    void this.run(ctx, () => this.onChannelEvent(ctx, channelId, event));
  }

  // -------------------------------------------------------------------------------------------
  // Calls entering Stasis from the dialplan
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

  private register(call: Call, flow: Flow, anchorChannelId: string): CallContext {
    const ctx: CallContext = {
      call,
      flow,
      log: this.deps.logger.child(
        anchorChannelId ? { callId: call.id, channelId: anchorChannelId } : { callId: call.id },
      ),
      tail: Promise.resolve(),
      pending: [],
      ringTimeoutSec: this.deps.options.defaultRingTimeoutSec,
      anchorChannelId,
      callerAnswered: false,
      released: new Set(),
      transferring: false,
    };
    this.active.set(call.id, ctx);
    this.activeGauge.inc({ direction: call.direction });
    return ctx;
  }

  /** A call whose first channel came from the dialplan (inbound, outbound). */
  private dialplanCall(
    channel: AriChannel,
    flow: Flow,
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

  /** Inbound (F1): ring the caller, ask the CRM, optionally greet, then ring operators. */
  private async startInbound(channel: AriChannel, did: string): Promise<void> {
    const ctx = this.dialplanCall(channel, 'inbound', 'in', channel.caller.number, did);
    const { call } = ctx;
    call.did = did;
    ctx.log.info('inbound call', { from: call.from, did });
    this.deps.notifier.started(call);
    await this.run(ctx, async () => {
      await this.ringCaller(ctx);
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

  private async onPlaybackDone(ctx: CallContext, playbackId: string): Promise<void> {
    if (playbackId === ctx.greetingPlaybackId && ctx.call.phase === 'greeting') {
      await this.startDialing(ctx);
    } else if (playbackId === ctx.beepPlaybackId && ctx.endAfterBeep) {
      await this.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
    }
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
    const name = call.customer?.name ?? call.callerName ?? this.customerNumber(ctx);
    const endpoint = operatorEndpoint(extension, this.deps.options.operatorEndpoint);
    const leg = this.addEngineLeg(ctx, 'operator', endpoint, extension);
    await this.createLeg(ctx, leg, ['operator', call.id], {
      'CALLERID(name)': `${this.deps.options.callerIdPrefix}${name}`,
      'CALLERID(num)': this.customerNumber(ctx),
    });
  }

  /** Outbound: an operator dialled a customer number; dial it through the trunk and bridge. */
  private async startOutbound(channel: AriChannel, number: string): Promise<void> {
    const extension = extensionOfChannel(channel);
    const ctx = this.dialplanCall(
      channel,
      'outbound',
      'out',
      extension ?? channel.caller.number,
      number,
    );
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
      if (!(await this.ringCaller(ctx))) return;
      call.phase = 'dialing';
      await this.placeCustomerLeg(ctx);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Click-to-call
  // -------------------------------------------------------------------------------------------

  /** Originate the operator leg; it enters Stasis only once answered (fixtures fact 8). */
  private async originateOperator(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const c2c = ctx.clickToCall!;
    if (call.phase !== 'dialing') return;
    c2c.attempt++;
    const endpoint = operatorEndpoint(c2c.operator, this.deps.options.operatorEndpoint);
    const leg = this.addEngineLeg(ctx, 'operator', endpoint, c2c.operator);
    leg.dialed = true; // an originate dials by itself
    call.callerChannelId = leg.channelId;
    ctx.anchorChannelId = leg.channelId;
    const name = this.deps.options.clickToCallCallerIdName ?? 'CRM';
    try {
      await this.deps.gateway.channels.originate({
        endpoint,
        channelId: leg.channelId,
        appArgs: ['click2call', 'operator', call.id],
        callerId: `"${name.replace(/"/g, '')}" <${call.to}>`,
        timeoutSec: this.deps.options.clickToCallRingTimeoutSec ?? 20,
      });
      leg.created = true;
      ctx.log.info('operator leg originated', {
        legChannelId: leg.channelId,
        attempt: c2c.attempt,
      });
    } catch (err) {
      this.legNotCreated(ctx, leg, err);
      await this.afterUnansweredLeg(ctx, leg);
    }
  }

  /** Once the click-to-call operator answered and is in Stasis, dial the customer. */
  private async maybeDialCustomer(ctx: CallContext): Promise<void> {
    const operator = ctx.call.legs.get(ctx.anchorChannelId);
    if (!operator || !operator.answered || !operator.inStasis || operator.ended) return;
    if ([...ctx.call.legs.values()].some((leg) => leg.role === 'customer')) return;
    if (ctx.call.phase !== 'dialing') return;
    ctx.callerAnswered = true;
    await this.deps.gateway.channels.ring(operator.channelId); // the operator hears ringback
    await this.placeCustomerLeg(ctx);
  }

  /** Create the customer leg through the trunk chosen by prefix, with the company caller ID. */
  private async placeCustomerLeg(ctx: CallContext): Promise<void> {
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

  /** Asterisk refused the channel (500 "Allocation failed" for an offline endpoint, fact 10). */
  private legNotCreated(ctx: CallContext, leg: Leg, err: unknown): void {
    leg.ended = true;
    leg.endedAt = this.now();
    leg.outcome = err instanceof AriServerError ? 'unavailable' : 'failed';
    this.byChannel.delete(leg.channelId);
    ctx.log.warn('could not create leg', {
      legChannelId: leg.channelId,
      endpoint: leg.endpoint,
      err,
    });
  }

  private async onLegStasisStart(ctx: CallContext, channelId: string): Promise<void> {
    const leg = ctx.call.legs.get(channelId);
    if (!leg) return;
    leg.inStasis = true;
    if (ctx.call.phase !== 'dialing' || leg.hangupRequested) {
      // The call moved on (answered elsewhere, abandoned) while this leg was being created.
      if (!leg.hangupRequested) await this.hangupLeg(ctx, leg);
      return;
    }
    if (ctx.flow === 'click2call' && leg.role === 'operator') {
      await this.maybeDialCustomer(ctx);
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
        caller: ctx.anchorChannelId,
        timeoutSec: ctx.ringTimeoutSec,
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

  private async onLegAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    if (leg.answered || leg.ended) return;
    leg.answered = true;
    leg.answeredAt = this.now();
    if (ctx.call.phase !== 'dialing' || leg.hangupRequested) {
      ctx.log.info('leg answered after the call moved on; hanging it up', {
        legChannelId: leg.channelId,
      });
      await this.hangupLeg(ctx, leg);
      return;
    }
    if (ctx.flow === 'click2call' && leg.role === 'operator' && ctx.call.answeredAt === undefined) {
      // The operator picked up: the customer is dialled once the leg is in Stasis (fact 8).
      leg.outcome = 'answered';
      ctx.log.info('operator answered; dialling the customer', { legChannelId: leg.channelId });
      await this.maybeDialCustomer(ctx);
      return;
    }
    await this.connect(ctx, leg);
  }

  /** First answer wins: bridge it with the anchor, cancel the other dialled legs. */
  private async connect(ctx: CallContext, leg: Leg): Promise<void> {
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
        const record = ctx.route?.record ?? ctx.clickToCall?.record;
        await this.recorder?.bridgeCreated(call, bridgeId, record);
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

  private async onLegGone(ctx: CallContext, leg: Leg): Promise<void> {
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
      leg.outcome ??= legOutcomeFromCause(leg.cause, leg.hangupRequested);
      ctx.log.info('leg ended without answer', {
        legChannelId: leg.channelId,
        extension: leg.extension,
        outcome: leg.outcome,
        cause: leg.cause,
      });
      if (call.phase === 'dialing') await this.afterUnansweredLeg(ctx, leg);
    }
    this.maybeForget(ctx);
  }

  private async onCallerGone(ctx: CallContext, leg: Leg): Promise<void> {
    if (ctx.call.phase === 'ended') return;
    if (leg.hangupRequested) return; // dropped by a blind transfer
    await this.onPartyGone(ctx, ctx.flow === 'inbound' ? 'caller' : 'operator');
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

  /** A dialled leg ended unanswered: retry, try the next extension, or end the call. */
  private async afterUnansweredLeg(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    if (call.phase !== 'dialing') return;
    const outcome = leg.outcome ?? 'failed';
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
    if (ctx.flow === 'inbound') {
      await this.afterUnansweredOperator(ctx);
    } else if (leg.role === 'customer') {
      await this.customerFailed(ctx, unansweredDisposition([outcome]));
    } else {
      // Click-to-call operator leg: retry while busy / not answering (F2: tries, period).
      const c2c = ctx.clickToCall!;
      if ((outcome === 'busy' || outcome === 'no_answer') && c2c.attempt < c2c.tries) {
        ctx.log.info('operator did not answer; retrying', {
          outcome,
          attempt: c2c.attempt,
          tries: c2c.tries,
          inSec: c2c.triesPeriodSec,
        });
        ctx.retryTimer = setTimeout(() => {
          ctx.retryTimer = undefined;
          void this.run(ctx, () => this.originateOperator(ctx));
        }, c2c.triesPeriodSec * 1000);
        return;
      }
      await this.endCall(ctx, {
        disposition: unansweredDisposition([outcome]),
        hangupBy: 'system',
        reason: 'operator_unreachable',
      });
    }
  }

  private async afterUnansweredOperator(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const dialled = [...call.legs.values()].filter((l) => l.role === 'operator');
    if (dialled.some((l) => !l.ended)) return;
    const next = ctx.pending.shift();
    if (next !== undefined) {
      await this.placeOperatorLeg(ctx, next);
      return;
    }
    const outcomes = dialled.map((l) => l.outcome).filter((o): o is LegOutcome => o !== undefined);
    const disposition = unansweredDisposition(outcomes);
    const dialplan = this.deps.options.noAnswerDialplan;
    if (dialplan) {
      ctx.released.add(call.callerChannelId);
      try {
        await this.deps.gateway.channels.continueInDialplan(call.callerChannelId, dialplan);
        ctx.log.info('nobody answered; caller sent to the dialplan', { ...dialplan, disposition });
      } catch (err) {
        ctx.released.delete(call.callerChannelId);
        ctx.log.warn('could not send the caller to the no-answer dialplan; hanging up', { err });
      }
    }
    await this.endCall(ctx, { disposition, hangupBy: 'system', reason: 'nobody_answered' });
  }

  /**
   * The customer leg failed (busy, no answer, unreachable). Outbound: hang the operator up with
   * that reason. Click-to-call: the operator hears a short beep first (trace
   * click-to-call-client-busy), then is hung up.
   */
  private async customerFailed(ctx: CallContext, disposition: Disposition): Promise<void> {
    if (ctx.flow !== 'click2call') {
      await this.endCall(ctx, { disposition, hangupBy: 'system', reason: 'customer_unreachable' });
      return;
    }
    const playbackId = `pb-${randomUUID()}`;
    ctx.beepPlaybackId = playbackId;
    ctx.endAfterBeep = { disposition, reason: 'customer_unreachable' };
    this.byPlayback.set(playbackId, ctx);
    try {
      await this.deps.gateway.channels.play(ctx.anchorChannelId, {
        media: ['sound:beep'],
        playbackId,
      });
    } catch (err) {
      this.byPlayback.delete(playbackId);
      if (!isGone(err)) ctx.log.warn('could not play the failure tone', { err });
      await this.endCall(ctx, { ...ctx.endAfterBeep, hangupBy: 'system' });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Transfers
  // -------------------------------------------------------------------------------------------

  private async transferToService(ctx: CallContext, to: string): Promise<void> {
    const { call } = ctx;
    const customer = this.customerLeg(ctx)!;
    const context = this.deps.options.serviceContext ?? 'service';
    ctx.released.add(customer.channelId);
    await this.deps.gateway.bridges.removeChannel(call.bridgeId!, [customer.channelId]);
    await this.deps.gateway.channels.continueInDialplan(customer.channelId, {
      context,
      extension: to,
      priority: 1,
    });
    ctx.log.info('call transferred to a service number', {
      context,
      to,
      customerChannelId: customer.channelId,
    });
    this.deps.notifier.transferred(call, { to, kind: 'service' });
    await this.endCall(ctx, { disposition: 'answered', hangupBy: 'system', reason: 'transferred' });
  }

  private async transferToExtension(ctx: CallContext, extension: string): Promise<void> {
    const { call } = ctx;
    const customer = this.customerLeg(ctx)!;
    const operator = this.operatorLeg(ctx)!;
    ctx.log.info('blind transfer', { from: operator.extension, to: extension });
    this.deps.notifier.transferred(call, { to: extension, kind: 'extension' });
    ctx.anchorChannelId = customer.channelId;
    ctx.transferring = true;
    ctx.pending = [];
    ctx.ringTimeoutSec = this.deps.options.defaultRingTimeoutSec;
    call.phase = 'dialing';
    await this.hangupLeg(ctx, operator);
    await this.placeOperatorLeg(ctx, extension);
  }

  /** The customer's channel of a call: the inbound caller, or the customer leg. */
  private customerLeg(ctx: CallContext): Leg | undefined {
    const legs = [...ctx.call.legs.values()].filter((leg) => !leg.ended);
    if (ctx.flow === 'inbound') return legs.find((leg) => leg.role === 'caller');
    return legs.find((leg) => leg.role === 'customer');
  }

  /** The operator's channel on a bridged call. */
  private operatorLeg(ctx: CallContext): Leg | undefined {
    const legs = [...ctx.call.legs.values()].filter((leg) => !leg.ended && !leg.hangupRequested);
    return (
      legs.find((leg) => leg.role === 'operator' && leg.outcome === 'answered') ??
      (ctx.flow === 'outbound' ? legs.find((leg) => leg.role === 'caller') : undefined)
    );
  }

  private customerNumber(ctx: CallContext): string {
    return ctx.flow === 'inbound' ? ctx.call.from : ctx.call.to;
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
    call.endReason = outcome.reason ?? (ctx.reconciling ? 'reconciled' : undefined);
    ctx.pending = [];
    ctx.transferring = false;
    if (ctx.retryTimer) clearTimeout(ctx.retryTimer);
    for (const id of [ctx.greetingPlaybackId, ctx.beepPlaybackId])
      if (id) this.byPlayback.delete(id);
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
    this.emit('ended', snapshot);
    // Safety net: stop tracking channels whose end events never come.
    ctx.forgetTimer = setTimeout(() => this.forget(ctx), 60_000);
    ctx.forgetTimer.unref();
    this.maybeForget(ctx);
  }

  /**
   * Ring the caller's channel (180) unless it is answered. False when the caller already hung up
   * (404): its StasisEnd, queued behind this step, ends the call as abandoned.
   */
  private async ringCaller(ctx: CallContext): Promise<boolean> {
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

  private async answerCaller(ctx: CallContext): Promise<void> {
    if (ctx.callerAnswered || ctx.flow === 'click2call') return;
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

  /**
   * The context of a call in progress. Throws CallStateError('call_ended') for an ended call the
   * service still holds, CallNotFoundError otherwise (unknown, or ended and only in the store:
   * the API tells those two apart from the store, src/calls/routes.ts).
   */
  private liveContext(callId: string): CallContext {
    const ctx = this.active.get(callId);
    if (ctx && ctx.call.phase !== 'ended') return ctx;
    if (ctx) throw new CallStateError('call_ended', `call ${callId} has ended`);
    throw new CallNotFoundError(callId);
  }

  /** Stop tracking a call once it has ended and all its channels are gone. */
  private maybeForget(ctx: CallContext): void {
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
   * (until then {@link getCall} and the API answer it from memory, so it is never missing while
   * the store lags a turn behind, or fails). Nothing of the call stays in the service afterwards.
   */
  private forget(ctx: CallContext): void {
    if (ctx.forgetTimer) clearTimeout(ctx.forgetTimer);
    ctx.forgetTimer = undefined;
    for (const leg of ctx.call.legs.values()) {
      if (this.byChannel.get(leg.channelId) === ctx) this.byChannel.delete(leg.channelId);
    }
    for (const id of [ctx.greetingPlaybackId, ctx.beepPlaybackId])
      if (id !== undefined && this.byPlayback.get(id) === ctx) this.byPlayback.delete(id);
    if (ctx.forgotten) return;
    ctx.forgotten = true;
    const drop = (): void => {
      if (this.active.get(ctx.call.id) !== ctx) return;
      this.active.delete(ctx.call.id);
      this.deps.journal?.release?.(ctx.call.id);
      this.emit('released', ctx.call.id);
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
  // Reconciliation (src/calls/reconcile.ts): ARI reconnect, engine restart
  // -------------------------------------------------------------------------------------------

  /**
   * Reconcile every live call with what Asterisk shows now (after an ARI reconnect; at the first
   * connect for calls adopted by {@link adoptCalls}): list channels and bridges, then correct
   * each call in its per-call chain; `call.recovered` for each call kept. `lostSinceMs`: when
   * the WebSocket dropped (epoch ms), for `outageSec`. Never rejects.
   */
  reconcile(lostSinceMs?: number): Promise<ReconcileReport> {
    return this.reconcileContexts([...this.active.values()], lostSinceMs, false);
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
            this.run(ctx, async () => {
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
    return reconcileAll(this.deps.gateway, entries, {
      logger: this.deps.logger,
      registry: this.deps.registry,
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
      if (this.active.has(record.id) || record.state === 'ended') continue;
      const found = adoptedCallFromRecord(record);
      const ctx = this.register(found.call, found.flow, found.anchorChannelId);
      ctx.transferring = found.transferring;
      if (found.clickToCall) ctx.clickToCall = found.clickToCall;
      ctx.adoption = { state: record.state, sinceMs: Date.parse(record.updatedAt) };
      for (const leg of found.call.legs.values())
        if (!leg.ended) this.byChannel.set(leg.channelId, ctx);
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
      if (!this.deps.gateway.isConnected()) return;
      const contexts = [...this.active.values()].filter((ctx) => ctx.needsRepair);
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
    const adoption = ctx.adoption;
    ctx.adoption = undefined;
    ctx.needsRepair = false;
    const sinceMs = adoption?.sinceMs ?? lostSinceMs;
    const markGone = (leg: Leg): void => {
      leg.ended = true;
      leg.endedAt ??= this.now();
      if (this.byChannel.get(leg.channelId) === ctx) this.byChannel.delete(leg.channelId);
    };
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
          await this.deps.gateway.playbacks.get(playbackId);
          return true;
        } catch (err) {
          return !(err instanceof AriNotFoundError);
        }
      },
      callerAnswered: () => {
        ctx.callerAnswered = true;
      },
      legEnteredStasis: (leg) => this.onLegStasisStart(ctx, leg.channelId),
      legRinging: (leg) => this.onLegRinging(ctx, leg),
      legAnswered: (leg) => this.onLegAnswered(ctx, leg),
      legGone: (leg) => this.onLegGone(ctx, leg),
      callerGone: async (leg) => {
        markGone(leg);
        await this.onCallerGone(ctx, leg);
        this.maybeForget(ctx);
      },
      legVanished: markGone,
      playbackDone: (playbackId) => {
        this.byPlayback.delete(playbackId);
        return this.onPlaybackDone(ctx, playbackId);
      },
      nothingLive: async (lastEnded) => {
        if (lastEnded) await this.afterUnansweredLeg(ctx, lastEnded);
        else if (ctx.flow === 'inbound') await this.afterUnansweredOperator(ctx);
        else await this.endCall(ctx, { disposition: 'failed', hangupBy: 'system' });
      },
      resumeRouting: () => void this.resumeRouting(ctx),
      bridge: async (channelIds, bridgeExists) => {
        const { call } = ctx;
        await this.answerCaller(ctx);
        if (!bridgeExists || call.bridgeId === undefined) {
          const bridgeId = call.bridgeId ?? `br-${randomUUID()}`;
          await this.deps.gateway.bridges.create({
            bridgeId,
            type: ['mixing'],
            name: `call-${call.id}`,
          });
          call.bridgeId = bridgeId;
        }
        await this.deps.gateway.bridges.addChannel(call.bridgeId, channelIds);
        ctx.log.info('call bridged again after reconciliation', { channelIds });
        // The bridging was cut before the recorder heard of it (an adopted call's recording is
        // the recordings domain's own business after a restart).
        if (!adoption)
          await this.recorder?.bridgeCreated(
            call,
            call.bridgeId,
            ctx.route?.record ?? ctx.clickToCall?.record,
          );
      },
      hangup: async (leg) => {
        leg.hangupRequested = false;
        await this.hangupLeg(ctx, leg);
      },
      destroyBridge: async () => {
        try {
          if (ctx.call.bridgeId) await this.deps.gateway.bridges.destroy(ctx.call.bridgeId);
        } catch (err) {
          if (!isGone(err)) throw err;
        }
      },
      forgetIfDone: () => this.maybeForget(ctx),
      end: (outcome) => this.endCall(ctx, outcome),
      recovered: (state) => {
        if (silent) return;
        this.deps.notifier.recovered(ctx.call, {
          reason: adoption ? 'engine_restart' : 'ari_reconnect',
          state,
          outageSec:
            sinceMs === undefined || !Number.isFinite(sinceMs)
              ? 0
              : Math.max(0, Math.round((this.now() - sinceMs) / 1000)),
        });
      },
    };
  }

  /**
   * An adopted call whose route was lost with the old process: an inbound call asks the CRM
   * again and dials (a greeting already started is not played again); an outbound call dials
   * the customer.
   */
  private async resumeRouting(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    if (ctx.flow === 'outbound') {
      await this.run(ctx, async () => {
        if (call.phase !== 'routing') return;
        call.phase = 'dialing';
        await this.placeCustomerLeg(ctx);
      });
      return;
    }
    if (ctx.flow !== 'inbound') return;
    const skipGreeting = call.phase === 'greeting';
    const decision = await this.deps.routes.lookup({
      callId: call.id,
      from: call.from,
      did: call.did ?? call.to,
    });
    ctx.log.info('route decided again after a restart', {
      source: decision.source,
      action: decision.route.action.type,
    });
    const { greeting, ...rest } = decision.route;
    await this.run(ctx, async () => {
      if (call.phase !== 'routing' && call.phase !== 'greeting') return;
      await this.applyRoute(ctx, skipGreeting || !greeting ? rest : { ...rest, greeting });
    });
  }

  /** Run `step` after the call's earlier steps; a failure ends the call and is never thrown. */
  private run(ctx: CallContext, step: () => Promise<void> | void): Promise<void> {
    const next = ctx.tail
      .then(step)
      .catch((err: unknown) => this.fail(ctx, err))
      .then(() => {
        this.deps.journal?.record(ctx.call);
        this.notifyWatchers(ctx);
      });
    ctx.tail = next;
    return next;
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
      this.repairSoon();
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
