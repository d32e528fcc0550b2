/**
 * Operator presence, the pure part: what an operator's phone is doing (`state`, learned from
 * Asterisk and from the engine's own calls) and what the operator chose (`status`, set through
 * the API). No I/O here; the service (service.ts) feeds it and publishes its changes.
 *
 * How a state is decided ({@link deriveState}), most specific first:
 * 1. the engine has an answered leg of the operator's phone (or the phone placed a call that is
 *    in progress) → `on_call`;
 * 2. Asterisk's device state says the phone is in use (`INUSE`, `BUSY`, `ONHOLD`, `RINGINUSE`)
 *    → `on_call`;
 * 3. the engine rings the phone (Asterisk reported its leg ringing), or the device state is
 *    `RINGING` → `ringing`;
 * 4. the device is `UNAVAILABLE` / `INVALID` (a PJSIP endpoint without a registered contact)
 *    → `offline`; any other device state → `idle`;
 * 5. without a device state (or `UNKNOWN`), the endpoint state: `online` (or `unknown`) →
 *    `idle`, `offline` or nothing known yet → `offline`.
 *
 * The engine's knowledge wins where it is more precise: it knows which call rings the phone
 * (`callId`, also when the device state says `RINGING` before the leg's own ringing event) and
 * sees an answer as soon as Asterisk reports it on the channel.
 *
 * While the engine hangs up a leg it rang on the phone and never connected (`releasing`: another
 * operator answered the ring-all call first, and this phone, still ringing, may even pick up a
 * moment too late), a `RINGING` or `INUSE` device state is that leg's: the operator stays
 * `ringing` for that call until the phone is idle again, never `on_call` without a call.
 */

/** What the operator's phone is doing. */
export type OperatorState = 'offline' | 'idle' | 'ringing' | 'on_call';

/** What the operator (or the CRM) chose: `available` to take calls, on a `break`, do not disturb. */
export type OperatorStatus = 'available' | 'break' | 'dnd';

/** Every {@link OperatorState}. */
export const OPERATOR_STATES: readonly OperatorState[] = ['offline', 'idle', 'ringing', 'on_call'];

/** Every {@link OperatorStatus}. */
export const OPERATOR_STATUSES: readonly OperatorStatus[] = ['available', 'break', 'dnd'];

/** One operator as the API shows it (`GET /v1/operators/{extension}`). */
export interface Operator {
  /** The operator's extension (digits), e.g. `101`. */
  extension: string;
  state: OperatorState;
  status: OperatorStatus;
  /** When `state` or `status` last changed, ISO 8601 UTC with milliseconds. */
  since: string;
  /** The engine call ringing the operator or the operator is on (ringing and on_call only). */
  callId?: string;
}

/**
 * What Asterisk last said about the operator's phone. `deviceState` is ARI's `DeviceState.state`
 * of `PJSIP/<ext>` (NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD,
 * UNKNOWN); `endpointState` is ARI's `Endpoint.state` (`online`, `offline`, `unknown`).
 * Undefined: not learned yet.
 */
export interface AsteriskView {
  deviceState?: string;
  endpointState?: string;
}

/**
 * What the engine's own calls say about the operator's phone: the call that rings it
 * (`answered: false`) or that it is on (`answered: true`); `dialing`: the call's leg to the phone
 * exists but Asterisk has not reported it ringing yet (it only names the call of a ringing or
 * busy device). Undefined: no call of the engine involves the phone.
 */
export interface EngineView {
  callId: string;
  answered: boolean;
  dialing?: boolean;
  /**
   * The engine is hanging up its leg to the phone, a leg it rang and never connected (see the
   * module comment); only when no other leg of the engine involves the phone.
   */
  releasing?: boolean;
}

const IN_USE = new Set(['INUSE', 'BUSY', 'ONHOLD', 'RINGINUSE']);
const UNREACHABLE = new Set(['UNAVAILABLE', 'INVALID']);

/**
 * The operator's state from what Asterisk and the engine know (rules in the module comment).
 * `callId` is the engine's call when it has one; Asterisk alone does not say which call.
 */
export function deriveState(
  asterisk: AsteriskView,
  engine: EngineView | undefined,
): { state: OperatorState; callId?: string } {
  const withCall = (state: OperatorState): { state: OperatorState; callId?: string } =>
    engine ? { state, callId: engine.callId } : { state };
  const device = asterisk.deviceState?.toUpperCase();
  if (engine?.releasing) {
    // The phone rings, or picked up just as the engine let go of it: that leg, going away.
    if (device === 'RINGING' || device === 'INUSE') return withCall('ringing');
    return deriveState(asterisk, undefined);
  }
  if (engine?.answered) return withCall('on_call');
  if (device !== undefined && IN_USE.has(device)) return withCall('on_call');
  if ((engine && !engine.dialing) || device === 'RINGING') return withCall('ringing');
  // The device state is the live one; the endpoint state decides only without it.
  if (device !== undefined && device !== 'UNKNOWN')
    return UNREACHABLE.has(device) ? { state: 'offline' } : { state: 'idle' };
  const endpoint = asterisk.endpointState;
  return endpoint === 'online' || endpoint === 'unknown' ? { state: 'idle' } : { state: 'offline' };
}

/**
 * Whether inbound routing may ring the operator: `available`, and neither offline nor on a call
 * (a phone already ringing for another call may ring again).
 */
export function takesCalls(operator: Pick<Operator, 'state' | 'status'>): boolean {
  return (
    operator.status === 'available' && operator.state !== 'offline' && operator.state !== 'on_call'
  );
}

/** `PJSIP/101` from the OPERATOR_ENDPOINT template `PJSIP/{extension}` (the device's name). */
export function deviceNameOf(endpointTemplate: string, extension: string): string {
  return endpointTemplate.replaceAll('{extension}', extension);
}
