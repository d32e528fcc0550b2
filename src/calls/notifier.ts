/**
 * Calls → lifecycle events: builds `call.*` events with a per-call sequence number and
 * hands them to the call journal (store, then the webhook dispatcher) and to extra sinks.
 * Never throws into call handling: a failing sink is logged.
 */
import type { Logger } from '../logging/logger.ts';
import {
  createEventEnvelope,
  type CallRecoveredData,
  type CallTransferFailedData,
  type EventCallState,
  type LifecycleEvent,
  type RecordingReadyData,
} from '../events/types.ts';
import { type Call, type Leg, talkSeconds, waitSeconds } from './model.ts';

/** Anything that takes lifecycle events (e.g. the webhook dispatcher). Must not throw or block. */
export interface EventSink {
  enqueue(event: LifecycleEvent): void;
}

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** Where the notifier records each event with the call that produced it (the call journal). */
export interface EventJournal {
  record(call: Call, event?: LifecycleEvent): void;
}

/**
 * Emits the lifecycle events of calls, in order, with per-call sequence numbers from 1. Each
 * event goes to the journal (which stores it with the call's state and then hands it to the
 * webhook dispatcher) and, synchronously, to every extra sink (e.g. a test recorder).
 */
export class CallNotifier {
  constructor(
    private readonly sinks: EventSink[],
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly journal?: EventJournal,
  ) {}

  /** `call.started`: the call exists (inbound: entered Stasis; outbound: operator dialled out). */
  started(call: Call): void {
    this.emit(call, 'call.started', {
      direction: call.direction,
      from: call.from,
      to: call.to,
      did: call.did,
      customer: call.customer,
      variables: call.variables,
    });
  }

  /** `call.ringing`: an operator's phone (`leg.extension`) rings for this call (screen pop). */
  ringing(call: Call, leg: Leg): void {
    if (!leg.extension) return;
    this.emit(call, 'call.ringing', {
      extension: leg.extension,
      from: call.from,
      to: call.to,
      ...(call.customer ? { customer: call.customer } : {}),
    });
  }

  /** `call.answered`: answered by the operator at `extension`; `waitSec` = ring time before. */
  answered(call: Call, extension: string): void {
    this.emit(call, 'call.answered', { extension, waitSec: waitSeconds(call, this.now()) });
  }

  /**
   * `call.transferred`: moved to a service number, or blind-transferred to an extension whose
   * operator answered.
   */
  transferred(call: Call, transfer: { to: string; kind: 'service' | 'extension' }): void {
    this.emit(call, 'call.transferred', transfer);
  }

  /**
   * `call.transfer_failed`: a blind transfer's target did not answer; the call goes on with the
   * operator it had.
   */
  transferFailed(call: Call, failure: CallTransferFailedData): void {
    this.emit(call, 'call.transfer_failed', failure);
  }

  /**
   * `call.recovered`: the engine took the call back after losing sight of it (ARI reconnect or
   * engine restart; src/calls/reconcile.ts). `state` is the call's API state after reconciliation.
   */
  recovered(
    call: Call,
    recovery: { reason: CallRecoveredData['reason']; state: EventCallState; outageSec: number },
  ): void {
    this.emit(call, 'call.recovered', {
      reason: recovery.reason,
      state: recovery.state,
      answeredBy: call.answeredBy,
      outageSec: recovery.outageSec,
    });
  }

  /**
   * `call.ended`: the call's CDR (direction, numbers, operator, disposition, times), with the
   * signed link to its recording when the call is recorded (`recordingUrl`, src/recordings/).
   */
  ended(call: Call, recordingUrl?: string): void {
    const now = this.now();
    this.emit(call, 'call.ended', {
      direction: call.direction,
      from: call.from,
      to: call.to,
      did: call.did,
      answeredBy: call.answeredBy,
      disposition: call.disposition ?? 'failed',
      startedAt: new Date(call.startedAt).toISOString(),
      answeredAt: iso(call.answeredAt),
      endedAt: new Date(call.endedAt ?? now).toISOString(),
      waitSec: waitSeconds(call, now),
      talkSec: talkSeconds(call, now),
      hangupBy: call.hangupBy,
      endReason: call.endReason,
      ...(recordingUrl === undefined ? {} : { recordingUrl }),
    });
  }

  /**
   * `recording.ready`: the call's recording is stored and playable. Sent by the
   * recordings domain after `call.ended`, on the same `Call` (kept by it until then) so the
   * per-call sequence continues without gaps.
   */
  recordingReady(call: Call, data: RecordingReadyData): void {
    this.emit(call, 'recording.ready', data);
  }

  private emit<T extends LifecycleEvent['type']>(
    call: Call,
    type: T,
    data: Extract<LifecycleEvent, { type: T }>['data'],
  ): void {
    const event = createEventEnvelope(
      type,
      call.id,
      call.nextSequence++,
      data,
      new Date(this.now()),
    );
    try {
      this.journal?.record(call, event);
    } catch (err) {
      this.logger.error('event journal failed', { callId: call.id, eventType: type, err });
    }
    for (const sink of this.sinks) {
      try {
        sink.enqueue(event);
      } catch (err) {
        this.logger.error('event sink failed', { callId: call.id, eventType: type, err });
      }
    }
  }
}
