/**
 * Call lifecycle events pushed to the CRM as webhooks (the retailCRM Asterisk module's `in` /
 * `out` / `hangup` events with `phone`, `code`, `status`, `direct`, `date`, `hold`, `duration`,
 * `path`, here as typed JSON). Reference with examples: docs/webhooks.md.
 *
 * Every event is an {@link EventEnvelope}: one id (the idempotency key), a type, the time it
 * happened, the call it belongs to and its place in that call's sequence (1, 2, 3, … without
 * gaps), plus type-specific `data`. Times are ISO 8601 UTC strings, durations whole seconds,
 * phone numbers and extensions strings of digits as Asterisk gave them.
 */
import { randomUUID } from 'node:crypto';

/** `in`: a customer called a DID of the company. `out`: an operator (or the CRM) called a customer. */
export type EventDirection = 'in' | 'out';

/** Final outcome of a call, lower-cased from Asterisk's dial status / CDR disposition. */
export type EventDisposition = 'answered' | 'busy' | 'no_answer' | 'canceled' | 'failed';

/** Who hung up. `customer`: the external party of an outbound call; `system`: the engine or Asterisk. */
export type EventHangupBy = 'caller' | 'operator' | 'customer' | 'system';

/** The customer as the CRM identified it (route lookup answer). */
export interface EventCustomer {
  /** The CRM's id of the customer. */
  id?: string;
  /** Customer name, as shown on the operator's phone. */
  name?: string;
  /** The customer's page in the CRM (http(s) URL), when the route answer gave one. */
  link?: string;
}

/** `call.started`: the call exists (inbound: it entered the Stasis app; outbound: dialling began). Seed `type=in|out`. */
export interface CallStartedData {
  direction: EventDirection;
  /** Caller number: the customer's (in) or the operator's extension (out). */
  from: string;
  /** Called number: the DID (in) or the customer's number (out). */
  to: string;
  /** The DID the customer dialled (inbound only). */
  did?: string;
  /** The customer, when the CRM recognised the caller. */
  customer?: EventCustomer;
  /** Variables that travel with the call (e.g. a deal id given to click-to-call). */
  variables?: Record<string, string>;
}

/** `call.ringing`: the phone of operator `extension` rings for this call (screen pop; seed `code`). */
export interface CallRingingData {
  /** The ringing operator's extension. One event per extension when a group rings. */
  extension: string;
  /** Caller number (as in `call.started`). */
  from: string;
  /** Called number (as in `call.started`). */
  to: string;
  /**
   * The customer the route lookup recognised (inbound; `call.started` is sent before the
   * lookup answers), with the link to their card when the CRM gave one. Absent when unknown.
   */
  customer?: EventCustomer;
}

/** `call.answered`: operator `extension` answered (inbound) or the customer answered (outbound). */
export interface CallAnsweredData {
  /** Extension of the operator on the call. */
  extension: string;
  /** Ring time from the start of the call until the answer, in whole seconds (seed `hold`). */
  waitSec: number;
}

/**
 * `call.transferred`: the call left its operator: sent to a service number (then
 * `call.ended` follows), or blind-transferred to an extension whose operator answered and took
 * the call over (then `call.answered` for that extension follows).
 */
export interface CallTransferredData {
  /** Where it went: a service number or an operator extension. */
  to: string;
  /** `service`: an internal service number set by the admin; `extension`: blind transfer to an operator. */
  kind: 'service' | 'extension';
}

/**
 * How the target of a blind transfer failed to answer, as its leg's outcome: `busy` (the phone
 * refused: busy or declined), `no_answer` (rang until the ring timeout), `unavailable` (offline
 * extension, no route), `failed` (anything else).
 */
export type TransferDialStatus = 'busy' | 'no_answer' | 'unavailable' | 'failed';

/**
 * `call.transfer_failed`: a blind transfer to an extension did not reach its target; the customer
 * goes on talking with the operator they had (who stays `answeredBy`).
 */
export interface CallTransferFailedData {
  /** The extension the call was to go to. */
  to: string;
  /** Always `extension` (a transfer to a service number cannot fail this way). */
  kind: 'extension';
  /** How the target's leg ended. */
  dialStatus: TransferDialStatus;
  /** Q.850 hang-up cause of the target's channel, when Asterisk gave one (e.g. 17 busy, 19 no answer). */
  cause?: number;
  /** Asterisk's text for `cause`, e.g. `User busy`. */
  causeText?: string;
}

/**
 * `call.ended`: the call is over; its CDR (seed `type=hangup`). The last `call.*` event of a call;
 * only `recording.ready` may follow it.
 */
export interface CallEndedData {
  direction: EventDirection;
  /** Caller number (as in `call.started`). */
  from: string;
  /** Called number (as in `call.started`). */
  to: string;
  /** The DID the customer dialled (inbound only). */
  did?: string;
  /**
   * Extension of the operator who answered (in) or placed the call (out); after a blind transfer,
   * the operator who took the call over (the last one who talked with the customer). Absent when
   * nobody answered (seed `code`).
   */
  answeredBy?: string;
  /** Final outcome (seed `status`: ANSWER, BUSY, CANCEL, …). */
  disposition: EventDisposition;
  /** When the call started, ISO 8601 UTC (seed `date`). */
  startedAt: string;
  /** When it was answered, ISO 8601 UTC; absent when it was not. */
  answeredAt?: string;
  /** When it ended, ISO 8601 UTC. */
  endedAt: string;
  /** Ring time before the answer (or before the end, if unanswered), whole seconds (seed `hold`). */
  waitSec: number;
  /** Talk time from answer to end, whole seconds; 0 when unanswered (seed `duration`, CDR `billsec`). */
  talkSec: number;
  /** Who hung up. */
  hangupBy?: EventHangupBy;
  /**
   * Why the call ended when it was not simply a party hanging up (as `endReason` of
   * `GET /v1/calls/{id}`): e.g. `transferred` (sent to a service number), `operator_unreachable`,
   * `customer_unreachable`, `nobody_answered`, `abandoned`, `api_hangup`, `route_hangup`,
   * `script_hangup` / `script_ended` (the CRM's call script hung up or ran out of verbs before
   * an operator answered),
   * `destination_not_allowed` / `destination_type_not_allowed` (the toll-fraud guard refused a
   * number an operator dialled from their phone),
   * `reconciled` (the engine found the call over after losing sight of it: who hung up and when
   * are unknown, `endedAt` is when it found out). Absent for a plain hang-up.
   */
  endReason?: string;
  /**
   * Signed link to the conversation's recording when the call is recorded (seed `path`); it
   * answers 409 `recording_not_ready` until `recording.ready` is sent.
   */
  recordingUrl?: string;
}

/** Live state of a call as the API shows it (`GET /v1/calls/{id}` `state`), without `ended`. */
export type EventCallState =
  | 'routing'
  | 'greeting'
  | 'dialing_operator'
  | 'operator_ringing'
  | 'dialing_customer'
  | 'customer_ringing'
  | 'bridged';

/**
 * `call.recovered`: the engine lost sight of this call and took it back.
 * `ari_reconnect`: the ARI WebSocket dropped and came back; Asterisk replays nothing
 * (fixtures fact 13), so the engine listed channels and bridges and corrected the call (events it
 * missed, e.g. an answer, are sent before this one). `engine_restart`: the engine restarted and
 * adopted the call from its store. Only calls still alive get it; calls found over are ended
 * (`call.ended`) instead.
 */
export interface CallRecoveredData {
  /** Why the engine had lost sight of the call. */
  reason: 'ari_reconnect' | 'engine_restart';
  /** The call's state after reconciliation. */
  state: EventCallState;
  /** Extension of the operator on the call, when answered (as in `call.ended`). */
  answeredBy?: string;
  /**
   * How long the engine could not see the call, whole seconds: from the WebSocket drop, or from
   * the last change it stored before the restart, to the reconciliation.
   */
  outageSec: number;
}

/**
 * `recording.ready`: the conversation's recording is stored by the engine and can be played.
 * Sent after `call.ended` (whose `recordingUrl` already points at it), once the file
 * was downloaded from Asterisk, checked and stored; a recording that could not be stored gets no
 * event (the call's record says `recording.status: failed`).
 */
export interface RecordingReadyData {
  /**
   * Signed link to the audio, `GET /v1/calls/{id}/recording?expires=<unix s>&sig=<hex>`: plays
   * without an API key (HTTP Range supported) until `expiresAt`.
   */
  recordingUrl: string;
  /** When `recordingUrl` stops working, ISO 8601 UTC. `GET /v1/calls/{id}` gives a fresh link. */
  expiresAt: string;
  /** Size of the file, bytes. */
  bytes: number;
  /** Length of the audio, whole seconds. */
  durationSec: number;
  /** `wav`: RIFF PCM, 8 kHz, 16-bit, mono (served as `audio/wav`). */
  format: 'wav';
}

/**
 * `autocall.attempt`: one attempt of a notification call ended. The envelope's `callId` is the
 * job's key `autocall-<id>` (its events are numbered like a call's).
 */
export interface AutocallAttemptData {
  /** The job's id (also the asterisk.fcgi AutoCallID). */
  jobId: number;
  campaignId?: number;
  /** The customer number, E.164. */
  to: string;
  /** 1-based attempt number. */
  attempt: number;
  startedAt: string;
  endedAt: string;
  /** Asterisk's dial status: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL or FAILED. */
  dialStatus: string;
  /** Q.850 hang-up cause, when known. */
  cause?: number;
  causeText?: string;
  answeredAt?: string;
  /** DTMF digits pressed, in order. */
  digits: string;
  /** Whole seconds of the message that played. */
  playedSec: number;
  /**
   * What the attempt achieved: delivered, not_confirmed, cut_short, busy, no_answer, congestion,
   * rejected, machine, canceled, failed, lost.
   */
  outcome: string;
  /** The engine's call id of the attempt, when a call was created. */
  callId?: string;
  /** Answering-machine detection's verdict (AMDSTATUS: MACHINE, HUMAN, NOTSURE), when it ran. */
  amdStatus?: string;
  /** Its reason (AMDCAUSE), e.g. `LONGGREETING-1500-1500`. */
  amdCause?: string;
  /** When the next attempt is due, when there is one (else `autocall.finished` follows). */
  nextAttemptAt?: string;
}

/** `autocall.finished`: a notification call reached its final status (exactly once per job). */
export interface AutocallFinishedData {
  jobId: number;
  campaignId?: number;
  to: string;
  /** delivered, busy, no_answer, failed, canceled or machine. */
  status: string;
  /** Attempts made. */
  attempts: number;
  finishedAt: string;
  /** The last attempt's answering-machine detection verdict (AMDSTATUS), when it ran. */
  amdStatus?: string;
  /** Its reason (AMDCAUSE). */
  amdCause?: string;
  variables?: Record<string, string>;
}

/**
 * `operator.state`: an operator's presence changed (src/operators/, docs/operators.md): the
 * phone's `state` or the `status` set through the API. The envelope's `callId` is the operator's
 * key `operator-<extension>` (its events are numbered like a call's).
 */
export interface OperatorStateData {
  /** The operator's extension. */
  extension: string;
  /** What the phone is doing now: offline (not registered), idle, ringing, on_call. */
  state: 'offline' | 'idle' | 'ringing' | 'on_call';
  /** What the operator chose: available, break, dnd. */
  status: 'available' | 'break' | 'dnd';
  /** When the state or status changed, ISO 8601 UTC. */
  since: string;
  /** The engine call ringing the operator or the operator is on (ringing and on_call). */
  callId?: string;
  /** The state before, when the state changed (absent when only the status did). */
  previousState?: 'offline' | 'idle' | 'ringing' | 'on_call';
}

/** `data` of each event type. */
export interface EventDataMap {
  'autocall.attempt': AutocallAttemptData;
  'autocall.finished': AutocallFinishedData;
  'operator.state': OperatorStateData;
  'call.started': CallStartedData;
  'call.ringing': CallRingingData;
  'call.answered': CallAnsweredData;
  'call.transferred': CallTransferredData;
  'call.transfer_failed': CallTransferFailedData;
  'call.recovered': CallRecoveredData;
  'call.ended': CallEndedData;
  'recording.ready': RecordingReadyData;
}

/** The event types, e.g. `call.started`. */
export type LifecycleEventType = keyof EventDataMap;

/** The JSON body of one webhook. */
export interface EventEnvelope<T extends LifecycleEventType = LifecycleEventType> {
  /** Random UUID of this event; also the idempotency key (sent again on retries, header `X-Event-Id`). */
  id: string;
  /** Event type (header `X-Event-Type`). */
  type: T;
  /** When it happened, ISO 8601 UTC with milliseconds, e.g. `2025-01-31T09:15:02.123Z`. */
  occurredAt: string;
  /** Engine call id (UUID); the same id as in the route lookup and the API. */
  callId: string;
  /** Position in this call's events: 1, 2, 3, … without gaps. */
  sequence: number;
  data: EventDataMap[T];
}

/** Any lifecycle event; `type` discriminates `data`. */
export type LifecycleEvent = { [T in LifecycleEventType]: EventEnvelope<T> }[LifecycleEventType];

/** All event types, in the order they can occur in a call. */
export const LIFECYCLE_EVENT_TYPES: readonly LifecycleEventType[] = [
  'call.started',
  'call.ringing',
  'call.answered',
  'call.transferred',
  'call.transfer_failed',
  'call.recovered',
  'call.ended',
  'recording.ready',
  'autocall.attempt',
  'autocall.finished',
  'operator.state',
];

/**
 * Build an event with a fresh UUID.
 *
 * @param type event type, e.g. `call.started`
 * @param callId the engine's call id
 * @param sequence the call's next sequence number (from 1, no gaps; the caller keeps the count)
 * @param data the type's data
 * @param now when it happened: a Date or epoch milliseconds; default now
 * @throws RangeError when `sequence` is not a positive integer
 */
export function createEventEnvelope<T extends LifecycleEventType>(
  type: T,
  callId: string,
  sequence: number,
  data: EventDataMap[T],
  now?: Date | number,
): Extract<LifecycleEvent, { type: T }>;
/**
 * Same, for callers that are themselves generic over the type (TypeScript cannot relate a generic
 * `Extract<LifecycleEvent, {type: T}>['data']` to `EventDataMap[T]`); `data` is then only checked
 * to be the data of some event type.
 */
export function createEventEnvelope<T extends LifecycleEventType>(
  type: T,
  callId: string,
  sequence: number,
  data: LifecycleEvent['data'],
  now?: Date | number,
): Extract<LifecycleEvent, { type: T }>;
export function createEventEnvelope(
  type: LifecycleEventType,
  callId: string,
  sequence: number,
  data: LifecycleEvent['data'],
  now: Date | number = Date.now(),
): LifecycleEvent {
  if (!Number.isInteger(sequence) || sequence < 1) {
    throw new RangeError(`event sequence must be a positive integer, got ${sequence}`);
  }
  return {
    id: randomUUID(),
    type,
    occurredAt: new Date(now).toISOString(),
    callId,
    sequence,
    data,
  } as LifecycleEvent;
}
