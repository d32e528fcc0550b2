/**
 * Adoption after an engine restart: a call the store says is unfinished, rebuilt as the engine's
 * call model ({@link adoptedCallFromRecord}) before the gateway connects; the first `connected`
 * then reconciles it with what Asterisk shows (./reconcile.ts). Pure.
 */
import type { LegRecord, UnfinishedCallRecord } from '../store/calls.ts';
import type { Call, CallPhase, CallState, Leg } from './model.ts';

/** The flows whose calls an engine restart can adopt (see {@link adoptedCallFromRecord}). */
export type CallFlow = 'inbound' | 'outbound' | 'click2call' | 'notification';

/** A call rebuilt from its stored record (see {@link adoptedCallFromRecord}). */
export interface AdoptedCall {
  call: Call;
  flow: CallFlow;
  /** See `ReconcileTarget.anchorChannelId` (./reconcile.ts). */
  anchorChannelId: string;
  /** A blind transfer was ringing the new operator (answered call back in `dialing`). */
  transferring: boolean;
  /**
   * Click-to-call operator tries: the stored record does not keep `tries`/`triesPeriodSec`, so an
   * adopted click-to-call is not retried again (`tries` = the tries already made).
   */
  clickToCall?: { operator: string; tries: number; triesPeriodSec: number; attempt: number };
}

const PHASE_OF_STATE: Record<CallState, CallPhase> = {
  routing: 'routing',
  greeting: 'greeting',
  dialing_operator: 'dialing',
  operator_ringing: 'dialing',
  dialing_customer: 'dialing',
  customer_ringing: 'dialing',
  bridged: 'bridged',
  ended: 'ended',
};

const epochMs = (iso: string | undefined): number | undefined =>
  iso === undefined ? undefined : Date.parse(iso);

function legFromRecord(record: LegRecord): Leg {
  const answeredAt = epochMs(record.answeredAt);
  const endedAt = epochMs(record.endedAt);
  return {
    channelId: record.channelId,
    role: record.role,
    extension: record.extension,
    endpoint: record.endpoint,
    createdByEngine: record.role !== 'caller',
    created: true,
    inStasis: false,
    dialed: record.role !== 'caller',
    ringing: false,
    answered: answeredAt !== undefined || record.outcome === 'answered',
    ended: endedAt !== undefined,
    hangupRequested: false,
    outcome: record.outcome,
    cause: record.cause,
    causeText: record.causeText,
    createdAt: Date.parse(record.createdAt),
    answeredAt,
    endedAt,
  };
}

/**
 * Rebuild a call's model from its stored record (engine restart). What the store keeps: numbers,
 * DID, customer, variables, times, the API state, the legs (channel ids, roles, extensions,
 * endpoints, outcomes, times) and the last event sequence. What it derives: the flow (`in` →
 * inbound; `out` with a dialplan `caller` leg → outbound; else click-to-call), the anchor
 * channel, the phase (from the state), a blind transfer in progress (a bridged call with an
 * operator leg that never answered: its target; from an older engine: answered but dialling).
 * The bridge is found later in Asterisk's bridge list. Lost with the old process: the CRM
 * route (an inbound call still routing is routed again; pending sequential extensions are not
 * tried), click-to-call retry settings, the caller's CALLERID(name).
 */
export function adoptedCallFromRecord(record: UnfinishedCallRecord): AdoptedCall {
  const legs = new Map(record.legs.map((leg) => [leg.channelId, legFromRecord(leg)]));
  const all = [...legs.values()];
  const callerLeg = all.find((leg) => leg.role === 'caller');
  const flow: CallFlow =
    record.direction === 'in'
      ? 'inbound'
      : callerLeg
        ? 'outbound'
        : record.variables?.autocallId !== undefined && !all.some((l) => l.role === 'operator')
          ? 'notification'
          : 'click2call';
  const phase = PHASE_OF_STATE[record.state];
  const answeredAt = epochMs(record.answeredAt);
  const transferring = answeredAt !== undefined && phase === 'dialing';
  const operatorLegs = all.filter((leg) => leg.role === 'operator');
  // A bridged call with an operator leg still up that never answered: a blind transfer was
  // ringing its target (the first operator still talks with the customer).
  const transferLeg =
    phase === 'bridged'
      ? operatorLegs.find((leg) => !leg.ended && !leg.answered && leg.outcome === undefined)
      : undefined;
  const talking = operatorLegs.filter((leg) => leg.outcome === 'answered' && !leg.ended).at(-1);
  const callerChannelId =
    (flow === 'click2call'
      ? (talking ?? operatorLegs.filter((leg) => leg !== transferLeg).at(-1))?.channelId
      : callerLeg?.channelId) ?? '';
  const customerLeg = all.filter((leg) => leg.role === 'customer' && !leg.ended).at(-1);
  const anchorChannelId =
    transferring && flow !== 'inbound' && customerLeg ? customerLeg.channelId : callerChannelId;
  const call: Call = {
    id: record.id,
    direction: record.direction,
    from: record.from,
    to: record.to,
    did: record.did,
    customer: record.customer,
    phase,
    legs,
    callerChannelId,
    answeredBy: record.answeredBy,
    operatorExtension:
      flow === 'outbound' ? callerLeg?.extension : flow === 'click2call' ? record.from : undefined,
    startedAt: Date.parse(record.startedAt),
    answeredAt,
    nextSequence: record.lastSequence + 1,
    variables: record.variables,
    originated: flow === 'click2call' ? true : undefined,
  };
  const from = talking ?? (flow === 'outbound' ? callerLeg : undefined);
  if (transferLeg?.extension !== undefined && from) {
    call.transfer = {
      kind: 'extension',
      to: transferLeg.extension,
      channelId: transferLeg.channelId,
      fromChannelId: from.channelId,
      startedAt: transferLeg.createdAt,
    };
  }
  const adopted: AdoptedCall = { call, flow, anchorChannelId, transferring };
  if (flow === 'click2call') {
    const tries = Math.max(1, operatorLegs.length);
    adopted.clickToCall = { operator: record.from, tries, triesPeriodSec: 0, attempt: tries };
  }
  return adopted;
}
