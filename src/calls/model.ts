/**
 * The call model: one customer conversation (a call) made of legs (Asterisk channels), with its
 * direction, numbers, times and final disposition. Pure data and pure functions only; the flows
 * that change it live in `service.ts`.
 *
 * Vocabulary: the caller leg is the channel Asterisk handed us from the dialplan;
 * operator legs ring operators' extensions; a customer leg dials a customer through a trunk.
 */

/** `in`: a customer called the company's DID. `out`: an operator (or the CRM) called a customer. */
export type Direction = 'in' | 'out';

/** Final outcome of a call (the CDR's disposition, lower-cased and normalised). */
export type Disposition = 'answered' | 'busy' | 'no_answer' | 'canceled' | 'failed';

/** Who ended an answered (or abandoned) call. `system`: the engine or Asterisk did. */
export type HangupBy = 'caller' | 'operator' | 'customer' | 'system';

/** Internal progress of a call's flow. */
export type CallPhase = 'routing' | 'greeting' | 'dialing' | 'bridged' | 'ended';

/**
 * Live state of a call as the API shows it, derived from the phase and the legs:
 * `routing` (asking the CRM), `greeting`, `dialing_operator` / `operator_ringing`,
 * `dialing_customer` / `customer_ringing`, `bridged`, `ended`.
 */
export type CallState =
  | 'routing'
  | 'greeting'
  | 'dialing_operator'
  | 'operator_ringing'
  | 'dialing_customer'
  | 'customer_ringing'
  | 'bridged'
  | 'ended';

/** What a leg is for. `caller`: came from the dialplan (inbound caller, or operator dialling out). */
export type LegRole = 'caller' | 'operator' | 'customer';

/**
 * How a leg that was dialled ended before being answered, from its ChannelDestroyed cause
 * (fixtures facts 4, 5) or a failed create (fact 10: 500 "Allocation failed").
 */
export type LegOutcome = 'answered' | 'busy' | 'no_answer' | 'unavailable' | 'canceled' | 'failed';

/** One channel of a call. Times are epoch milliseconds. */
export interface Leg {
  channelId: string;
  role: LegRole;
  /** Operator extension for operator legs (and for the caller leg of an outbound call). */
  extension?: string;
  /** Dial string used to create it, e.g. `PJSIP/101`. */
  endpoint?: string;
  /** The engine created this channel (it gets a ChannelDestroyed; dialplan channels do not). */
  createdByEngine: boolean;
  /** Asterisk acknowledged the create (engine legs), or the channel came from the dialplan. */
  created: boolean;
  /** The channel has entered Stasis (StasisStart seen). */
  inStasis: boolean;
  dialed: boolean;
  ringing: boolean;
  answered: boolean;
  /** The channel is gone (ChannelDestroyed, or StasisEnd of a dialplan channel). */
  ended: boolean;
  /** The engine asked Asterisk to hang this leg up. */
  hangupRequested: boolean;
  /**
   * The flow sent this answered leg into the dialplan (`continue`) and expects it back in
   * Stasis (e.g. after `AMD()`); cleared when it is back.
   */
  inDialplan?: boolean;
  outcome?: LegOutcome;
  /** Q.850 cause and text from ChannelDestroyed. */
  cause?: number;
  causeText?: string;
  createdAt: number;
  answeredAt?: number;
  /**
   * When the channel ended (its ChannelDestroyed, or StasisEnd of a dialplan channel). A leg
   * still up when its call ends gets the call's end time until that report comes (it may never
   * come, e.g. when the engine stops), so every leg of an ended call has one.
   */
  endedAt?: number;
}

/** A call: the unit the CRM sees (one id, one CDR, one stream of lifecycle events). */
export interface Call {
  /** Engine call id (UUID), used in the API, webhooks and logs. */
  id: string;
  direction: Direction;
  /** Caller number: the customer (in) or the operator's extension (out). */
  from: string;
  /** Called number: the DID (in) or the customer's number (out). */
  to: string;
  /** The DID the customer dialled (inbound only). */
  did?: string;
  /** Caller ID name Asterisk gave the caller leg. */
  callerName?: string;
  /** The customer as the CRM's route answer named it (`link`: its page in the CRM). */
  customer?: { id?: string; name?: string; link?: string };
  phase: CallPhase;
  legs: Map<string, Leg>;
  /** Channel id of the caller leg. */
  callerChannelId: string;
  bridgeId?: string;
  /**
   * Extension of the operator who answered (in), or who placed the call (out); after a blind
   * transfer to an extension, the operator who took it over (the last one who talked).
   */
  answeredBy?: string;
  operatorExtension?: string;
  disposition?: Disposition;
  hangupBy?: HangupBy;
  /** Free-text reason for a failed call, e.g. `route_hangup`, `handler_error`. */
  endReason?: string;
  startedAt: number;
  answeredAt?: number;
  endedAt?: number;
  /** Next per-call event sequence number (webhooks). */
  nextSequence: number;
  /** CRM variables that travel with the call (click-to-call). */
  variables?: Record<string, string>;
  /** The engine originated this call (click-to-call), for the concurrent-call cap. */
  originated?: boolean;
  /**
   * A blind transfer to an extension while it rings the target: the call stays bridged with the
   * first operator until the target answers (then the target replaces them) or fails (then the
   * call goes on with the first operator). Cleared when it settles and when the call ends.
   */
  transfer?: CallTransfer;
}

/** A blind transfer to an extension in progress (see {@link Call.transfer}). */
export interface CallTransfer {
  kind: 'extension';
  /** The target operator's extension. */
  to: string;
  /** Channel id of the target's leg (an operator leg of the call). */
  channelId: string;
  /** Channel id of the operator leg (or outbound caller leg) the customer talks with meanwhile. */
  fromChannelId: string;
  /** When the transfer was asked for, epoch ms. */
  startedAt: number;
}

/** The API state of a call (see {@link CallState}). */
export function callState(call: Pick<Call, 'phase' | 'legs'>): CallState {
  switch (call.phase) {
    case 'routing':
    case 'greeting':
    case 'bridged':
    case 'ended':
      return call.phase;
    case 'dialing': {
      const live = [...call.legs.values()].filter((leg) => !leg.ended);
      const customer = live.find((leg) => leg.role === 'customer');
      if (customer) return customer.ringing ? 'customer_ringing' : 'dialing_customer';
      return live.some((leg) => leg.role === 'operator' && leg.ringing)
        ? 'operator_ringing'
        : 'dialing_operator';
    }
  }
}

/** Map a ChannelDestroyed Q.850 cause to the leg's outcome when it was not answered. */
export function legOutcomeFromCause(
  cause: number | undefined,
  hangupRequested: boolean,
): LegOutcome {
  if (hangupRequested) return 'canceled';
  switch (cause) {
    case 17: // User busy
    case 21: // Call rejected (e.g. DND / decline)
      return 'busy';
    case 18: // No user responding
    case 19: // User alerting, no answer (dial timeout, fact 5)
      return 'no_answer';
    case 1: // Unallocated number
    case 3: // No route to destination
    case 20: // Subscriber absent (offline endpoint)
    case 27: // Destination out of order
      return 'unavailable';
    default:
      return 'failed';
  }
}

/**
 * Disposition of a call nobody answered, from its dialled legs: someone let it ring →
 * `no_answer`; otherwise someone was busy → `busy`; otherwise (unreachable, errors) → `failed`.
 */
export function unansweredDisposition(outcomes: LegOutcome[]): Disposition {
  if (outcomes.includes('no_answer')) return 'no_answer';
  if (outcomes.includes('busy')) return 'busy';
  return 'failed';
}

/** Whole seconds between two epoch-ms instants (rounded, never negative). */
export function secondsBetween(fromMs: number, toMs: number): number {
  return Math.max(0, Math.round((toMs - fromMs) / 1000));
}

/**
 * Wait time (ring time before answer; `hold` in the retailCRM module) in seconds: start → answer,
 * or
 * start → end for unanswered calls.
 */
export function waitSeconds(
  call: Pick<Call, 'startedAt' | 'answeredAt' | 'endedAt'>,
  nowMs: number,
): number {
  return secondsBetween(call.startedAt, call.answeredAt ?? call.endedAt ?? nowMs);
}

/** Talk time (`billsec`) in seconds: answer → end; 0 for unanswered calls. */
export function talkSeconds(call: Pick<Call, 'answeredAt' | 'endedAt'>, nowMs: number): number {
  if (call.answeredAt === undefined) return 0;
  return secondsBetween(call.answeredAt, call.endedAt ?? nowMs);
}

/** Public, JSON-friendly view of a call (API and logs). Times are ISO 8601 UTC. */
export interface CallSnapshot {
  id: string;
  direction: Direction;
  state: CallState;
  from: string;
  to: string;
  did?: string;
  customer?: { id?: string; name?: string; link?: string };
  answeredBy?: string;
  disposition?: Disposition;
  hangupBy?: HangupBy;
  endReason?: string;
  variables?: Record<string, string>;
  startedAt: string;
  answeredAt?: string;
  endedAt?: string;
  waitSec: number;
  talkSec: number;
  /**
   * Present while a blind transfer to an extension rings its target: the customer still talks
   * with the first operator (`answeredBy`) meanwhile.
   */
  transfer?: { kind: 'extension'; to: string; state: 'ringing'; startedAt: string };
  legs: Array<{
    channelId: string;
    role: LegRole;
    extension?: string;
    endpoint?: string;
    outcome?: LegOutcome;
    cause?: number;
    causeText?: string;
  }>;
}

/** One leg in a {@link CallSnapshot}. */
export type CallSnapshotLeg = CallSnapshot['legs'][number];

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** Build the public view of a call at `nowMs`. */
export function snapshotCall(call: Call, nowMs: number): CallSnapshot {
  return {
    id: call.id,
    direction: call.direction,
    state: callState(call),
    from: call.from,
    to: call.to,
    did: call.did,
    customer: call.customer,
    answeredBy: call.answeredBy,
    disposition: call.disposition,
    hangupBy: call.hangupBy,
    endReason: call.endReason,
    variables: call.variables,
    startedAt: new Date(call.startedAt).toISOString(),
    answeredAt: iso(call.answeredAt),
    endedAt: iso(call.endedAt),
    waitSec: waitSeconds(call, nowMs),
    talkSec: talkSeconds(call, nowMs),
    ...(call.transfer
      ? {
          transfer: {
            kind: call.transfer.kind,
            to: call.transfer.to,
            state: 'ringing' as const,
            startedAt: new Date(call.transfer.startedAt).toISOString(),
          },
        }
      : {}),
    legs: [...call.legs.values()].map((leg) => ({
      channelId: leg.channelId,
      role: leg.role,
      extension: leg.extension,
      endpoint: leg.endpoint,
      outcome: leg.outcome,
      cause: leg.cause,
      causeText: leg.causeText,
    })),
  };
}
