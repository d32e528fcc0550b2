/**
 * The call service: the public face of the calls domain (the {@link CallControl} contract the
 * HTTP API and the asterisk.fcgi path use, the ARI event entry point, reconciliation and
 * adoption). It wires the call runtime and the flows together and delegates to them:
 *
 * - src/calls/runtime.ts: legs, bridge, end of a call, journal and notifier hand-off, per-call
 *   ordering, the live calls, the dispatch of ARI events to the flows (the parts it delegates
 *   to, `routing.ts`, `legs.ts`, `leg-states.ts` and `lifecycle.ts`, are named in its header);
 * - src/calls/flows/inbound.ts: `Stasis(crm-app,inbound,<DID>)`: ring the caller, ask the CRM,
 *   optionally greet, ring operators (ring-all or sequential), bridge the first answer;
 * - src/calls/flows/outbound.ts: `Stasis(crm-app,outbound,<number>)` from an operator's phone:
 *   the toll-fraud check, dial the customer through the trunk chosen by prefix and bridge;
 * - src/calls/flows/click-to-call.ts: originate the operator leg first (retried when busy or not
 *   answering), then dial the customer leg and bridge; a failed customer leg gets a short beep;
 * - src/calls/flows/transfer.ts: transfer to a service number or blind to an extension;
 * - src/calls/flows/notification.ts: notification calls (autocalls): originate the customer,
 *   run the confirm prompt and the message with the verb runner, report the attempt;
 * - src/calls/recovery.ts: reconciliation after an ARI outage, adoption after a restart.
 *
 * Concurrency: events of one call are handled one at a time, in arrival order (a per-call promise
 * chain, `CallRuntime.run`), so a flow never sees half-applied state.
 */
import { EventEmitter } from 'node:events';
import type { AriEvent } from '../ari/types.ts';
import { type CallSnapshot, callState, snapshotCall } from './model.ts';
import type { UnfinishedCallRecord } from '../store/calls.ts';
import type { ReconcileReport } from './reconcile-pass.ts';
import type { CallControl, ClickToCallRequest, CurrentCall, TransferRequest } from './control.ts';
import type { CallRecorder, CallServiceDeps } from './context.ts';
import { apiHangupOutcome } from './lifecycle.ts';
import { CallRuntime } from './runtime.ts';
import { CallRecovery } from './recovery.ts';
import { InboundFlow } from './flows/inbound.ts';
import { OutboundFlow } from './flows/outbound.ts';
import { ClickToCallFlow } from './flows/click-to-call.ts';
import { TransferFlow } from './flows/transfer.ts';
import { NotificationFlow } from './flows/notification.ts';
import type { NotificationDialer } from '../autocalls/dialer.ts';

export type {
  CallRecorder,
  CallServiceDeps,
  CallServiceOptions,
  OutboundDialGuard,
  RouteSource,
} from './context.ts';

/** Events of the service for in-process listeners (tests, the future WebSocket hub). */
export interface CallServiceEvents {
  ended: [CallSnapshot];
  /**
   * The service let go of the call with this id: its channels are gone and the journal has
   * committed its last change (from now on only the store knows the call).
   */
  released: [string];
}

/**
 * The call service. Feed it every ARI event with {@link CallService.handleEvent}; it creates calls
 * from StasisStart (`inbound,<DID>`, `outbound,<number>`) and from {@link startClickToCall}, and
 * drives them to the end.
 */
export class CallService extends EventEmitter<CallServiceEvents> implements CallControl {
  private readonly runtime: CallRuntime;
  private readonly recovery: CallRecovery;
  private readonly clickToCall: ClickToCallFlow;
  private readonly transfer: TransferFlow;
  private readonly inbound: InboundFlow;
  private readonly notification: NotificationFlow;

  constructor(deps: CallServiceDeps) {
    super();
    this.runtime = new CallRuntime(deps, {
      ended: (call) => this.emit('ended', call),
      released: (callId) => {
        this.notification.released(callId);
        this.emit('released', callId);
      },
    });
    this.recovery = new CallRecovery(this.runtime);
    this.clickToCall = new ClickToCallFlow(this.runtime);
    this.transfer = new TransferFlow(this.runtime);
    this.inbound = new InboundFlow(this.runtime);
    this.runtime.registerFlow(this.inbound);
    this.runtime.registerFlow(new OutboundFlow(this.runtime));
    this.runtime.registerFlow(this.clickToCall);
    this.notification = new NotificationFlow(this.runtime, {
      ringTimeoutSec: deps.options.notificationRingTimeoutSec,
      ...(deps.options.amdContext ? { amdContext: deps.options.amdContext } : {}),
      defaultCallerId: deps.options.companyCallerId,
      ...(deps.verbCrm ? { crm: deps.verbCrm } : {}),
    });
    this.runtime.registerFlow(this.notification);
  }

  /**
   * The notification-call flow as the scheduler's dialer (src/autocalls/dialer.ts): each
   * `dial` places one attempt of a job and resolves once its call ended and its channel is gone.
   */
  get notificationDialer(): NotificationDialer {
    return this.notification;
  }

  /**
   * The adopted notification calls (after {@link adoptCalls}) with their job and attempt, for
   * the scheduler to take their attempts over before ARI connects.
   */
  adoptedNotificationAttempts(): Array<{ callId: string; jobId: number; attemptNo: number }> {
    return this.notification.adoptedAttempts();
  }

  /**
   * Engine shutdown: stop the call scripts running (the verb running stops its playback or
   * recording; no further verb runs) without ending their calls, which the next engine adopts
   * (an adopted call in the middle of a script is routed again: docs/crm-routing.md).
   */
  stopScripts(): void {
    this.inbound.stopScripts();
  }

  /**
   * Engine shutdown, as ARI disconnects: call scripts stop where they are ({@link stopScripts})
   * and no call step starts on its own any more: a click-to-call waiting to ring its operator
   * again (`tries`, `triesPeriodSec`) is not retried, now or later. Its call stays unfinished in
   * the store; the next engine adopts it and, its operator leg being gone, ends it. A hang-up of
   * a leg given up on is not sent again (the next start hangs such channels up). Steps already
   * under way go on ({@link settled}). Idempotent.
   */
  stop(): void {
    this.stopScripts();
    this.runtime.stopping = true;
    this.runtime.unconfirmed.stop();
    for (const ctx of this.runtime.active.values()) {
      if (!ctx.retryTimer) continue;
      clearTimeout(ctx.retryTimer);
      ctx.retryTimer = undefined;
      ctx.log.info('engine stopping: the operator is not rung again', {
        attempt: ctx.clickToCall?.attempt,
      });
    }
  }

  /**
   * Plug in the recordings domain (see {@link CallRecorder}). Calls bridged from now on
   * are offered to it.
   */
  setRecorder(recorder: CallRecorder): void {
    this.runtime.recorder = recorder;
  }

  /**
   * Live view of a call the service holds: in progress, or ended but not yet committed to the
   * store (src/calls/journal.ts); undefined otherwise (unknown, or ended and in the store, where
   * `GET /v1/calls/{id}` finds it).
   */
  getCall(callId: string): CallSnapshot | undefined {
    const ctx = this.runtime.active.get(callId);
    return ctx ? snapshotCall(ctx.call, this.runtime.now()) : undefined;
  }

  /** Every call in progress. */
  activeCalls(): CallSnapshot[] {
    return [...this.runtime.active.values()]
      .filter((ctx) => ctx.call.phase !== 'ended')
      .map((ctx) => snapshotCall(ctx.call, this.runtime.now()));
  }

  /** Number of channels the service is tracking (for leak checks). */
  trackedChannels(): number {
    return this.runtime.byChannel.size;
  }

  /**
   * What the service holds in memory (leak checks: no heap growth): `calls` held (live,
   * and ended ones waiting for their store commit), `channels` and `playbacks` mapped to a call,
   * `watchedCalls` with a {@link watchCall} listener. All 0 once every call ended and was stored.
   */
  memoryFootprint(): { calls: number; channels: number; playbacks: number; watchedCalls: number } {
    return {
      calls: this.runtime.active.size,
      channels: this.runtime.byChannel.size,
      playbacks: this.runtime.byPlayback.size,
      watchedCalls: this.runtime.watchers.size,
    };
  }

  /**
   * Wait until every call's queued work has run, including calls still starting (an inbound call
   * waiting for its CRM route) and the steps queued meanwhile (tests and shutdown). Resolves true
   * once nothing is left, false when `timeoutMs` passed first; without it, waits as long as it
   * takes.
   */
  async settled(timeoutMs?: number): Promise<boolean> {
    const work = async (): Promise<true> => {
      const waited = new Set<Promise<void>>();
      for (;;) {
        const pending = [
          ...[...this.runtime.active.values()].map((ctx) => ctx.tail),
          ...this.runtime.starting,
        ].filter((step) => !waited.has(step));
        if (pending.length === 0) return true;
        for (const step of pending) waited.add(step);
        await Promise.allSettled(pending);
      }
    };
    if (timeoutMs === undefined) return work();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([work(), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** See {@link CallControl.whenStored}: the journal's commit of the call, bounded by `timeoutMs`. */
  whenStored(callId: string, timeoutMs: number): Promise<boolean> {
    const journal = this.runtime.deps.journal;
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

  /** See {@link CallControl.ariConnected}. */
  ariConnected(): boolean {
    return this.runtime.deps.gateway.isConnected();
  }

  /** See {@link CallControl.storeFailing}. */
  storeFailing(): boolean {
    return this.runtime.deps.journal?.failing?.() ?? false;
  }

  /** Click-to-call calls not ended yet. */
  liveOriginatedCalls(): number {
    let n = 0;
    for (const ctx of this.runtime.active.values())
      if (ctx.call.originated && ctx.call.phase !== 'ended') n++;
    return n;
  }

  /**
   * Click-to-call (also asterisk.fcgi `makecall`): originate the operator leg with CALLERID
   * `"<clickToCallCallerIdName>" <customer number>`; once the operator answers, dial the customer
   * through the trunk and bridge. The operator leg is retried `tries` times, `triesPeriodSec`
   * apart, when busy or not answering. Returns at once.
   */
  startClickToCall(request: ClickToCallRequest): CallSnapshot {
    return this.clickToCall.startCall(request);
  }

  /** Hang up every leg of a live call (API). */
  async hangupCall(callId: string): Promise<CallSnapshot> {
    const ctx = this.runtime.liveContext(callId);
    // Steps queued before this one (e.g. an originate waiting for its answer) see the request.
    ctx.apiHangup = true;
    await this.runtime.run(ctx, () => this.runtime.endCall(ctx, apiHangupOutcome(ctx.call)));
    return snapshotCall(ctx.call, this.runtime.now());
  }

  /**
   * Transfer a bridged call to a service number or blind to an extension (see
   * {@link TransferFlow.transferCall}: what happens, and the CallStateError codes it throws).
   */
  transferCall(callId: string, request: TransferRequest): Promise<CallSnapshot> {
    return this.transfer.transferCall(callId, request);
  }

  /** The live call that owns `channelId` (see {@link CallControl.findCallByChannel}). */
  findCallByChannel(channelId: string): CallSnapshot | undefined {
    const ctx = this.runtime.byChannel.get(channelId);
    return ctx && ctx.call.phase !== 'ended'
      ? snapshotCall(ctx.call, this.runtime.now())
      : undefined;
  }

  /** Follow a call's changes (see {@link CallControl.watchCall}). */
  watchCall(callId: string, listener: (call: CallSnapshot) => void): () => void {
    return this.runtime.watch(callId, listener);
  }

  /** The call the operator at `extension` is on, ringing or talking. */
  /**
   * Ids of the calls in progress that involve the operator at `extension` (a leg of theirs not
   * ended: ringing, talking, placing the call), or of every call in progress when `extension` is
   * undefined. The live stream's snapshot of a socket opened without `?after=`.
   */
  liveCallIds(extension?: string): string[] {
    const ids: string[] = [];
    for (const ctx of this.runtime.active.values()) {
      const { call } = ctx;
      if (call.phase === 'ended') continue;
      if (
        extension === undefined ||
        call.answeredBy === extension ||
        [...call.legs.values()].some((leg) => !leg.ended && leg.extension === extension)
      )
        ids.push(call.id);
    }
    return ids;
  }

  currentCallOf(extension: string): CurrentCall | undefined {
    for (const ctx of this.runtime.active.values()) {
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
      const customer = this.runtime.customerLeg(ctx);
      return {
        callId: call.id,
        customerChannelId: customer?.channelId ?? '',
        callerId: {
          number: this.runtime.customerNumber(ctx),
          name: call.customer?.name ?? call.callerName ?? '',
        },
        direction: call.direction,
        state: callState(call),
      };
    }
    return undefined;
  }

  /**
   * What the engine's live calls say about the phone at `extension`, for operator presence
   * (src/operators/): the call the phone is on (`answered: true`: an answered operator leg, or
   * the call the phone itself placed); else the call ringing it (`answered: false`, a leg
   * Asterisk reported ringing); else a call dialling it (`dialing: true`: the leg exists, Asterisk
   * has not reported it ringing yet); else a leg the engine is hanging up before it was ever
   * connected (`releasing: true`: a ring-all call another operator answered, this phone still
   * ringing or answering a moment too late), whose ringing or in-use device state is not a call
   * of the operator's. Other legs the engine is hanging up (a party dropped by a transfer) are
   * left out. Undefined: none.
   */
  operatorActivity(
    extension: string,
  ): { callId: string; answered: boolean; dialing?: true; releasing?: true } | undefined {
    let ringing: { callId: string; answered: boolean } | undefined;
    let dialing: { callId: string; answered: boolean; dialing: true } | undefined;
    let releasing: { callId: string; answered: boolean; releasing: true } | undefined;
    for (const ctx of this.runtime.active.values()) {
      const { call } = ctx;
      if (call.phase === 'ended') continue;
      for (const leg of call.legs.values()) {
        if (leg.extension !== extension || leg.ended) continue;
        if (leg.hangupRequested) {
          if (leg.role !== 'caller' && leg.outcome !== 'answered')
            releasing ??= { callId: call.id, answered: false, releasing: true };
          continue;
        }
        if (leg.role === 'caller' || leg.answered) return { callId: call.id, answered: true };
        if (leg.ringing) ringing ??= { callId: call.id, answered: false };
        else dialing ??= { callId: call.id, answered: false, dialing: true };
      }
    }
    return ringing ?? dialing ?? releasing;
  }

  /**
   * Entry point for ARI events (subscribe it to the gateway). Never throws: failures of a call's
   * handler are logged, counted and the call is cleaned up.
   */
  handleEvent(event: AriEvent): void {
    this.runtime.handleEvent(event);
  }

  /**
   * Reconcile every live call with what Asterisk shows now (see {@link CallRecovery.reconcile}).
   * `lostSinceMs`: when the WebSocket dropped (epoch ms), for `outageSec`. Never rejects.
   */
  reconcile(lostSinceMs?: number): Promise<ReconcileReport> {
    return this.recovery.reconcile(lostSinceMs);
  }

  /**
   * Engine restart: take over the calls the store says are unfinished (see
   * {@link CallRecovery.adoptCalls}). Call before the gateway connects. Returns how many calls
   * were adopted.
   */
  adoptCalls(records: readonly UnfinishedCallRecord[]): number {
    return this.recovery.adoptCalls(records);
  }
}
