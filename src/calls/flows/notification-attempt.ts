/**
 * One attempt of a notification call, as the notification-call flow
 * (src/calls/flows/notification.ts) tracks it: what the attempt gathers while it runs (the dial
 * status and the digits, straight from its channel's events; the script's progress; the
 * answering-machine verdict; a cancel) and, once the call is released, what it achieved
 * ({@link attemptOutcome}: the `AttemptOutcome` the scheduler records).
 */
import type { AriEvent, AriGateway } from '../../ari/types.ts';
import type { DialJob } from '../../autocalls/dialer.ts';
import {
  type AmdStatus,
  type AttemptOutcome,
  type AttemptResult,
  type AutocallDialStatus,
  unansweredResult,
} from '../../autocalls/model.ts';
import type { Leg } from '../model.ts';
import type { CallContext } from '../context.ts';

/** What one attempt gathers while it runs. */
export interface Attempt {
  job: DialJob;
  ctx: CallContext;
  leg: Leg;
  /** The last final dial status of the channel's `Dial` events. */
  dialStatus?: AutocallDialStatus;
  digits: string;
  /** The script (or answering-machine detection) started on the answered channel. */
  scriptStarted: boolean;
  /** Answering-machine detection's verdict, once the channel came back (AMDSTATUS, AMDCAUSE). */
  amdStatus?: AmdStatus;
  amdCause?: string;
  /** AMD found a machine: the attempt is `machine` whatever plays afterwards. */
  machine: boolean;
  confirmed: boolean;
  playedMs: number;
  delivered: boolean;
  /** A message item could not be played (unreachable media, unknown sound). */
  mediaFailed: boolean;
  canceled: boolean;
  /** The originate request failed: no channel. */
  originateError?: string;
  /**
   * The originate failure may pass: Asterisk unreachable, or it could not allocate the channel
   * (500, e.g. the trunk is offline). The attempt is then `congestion` (retried), else `failed`.
   */
  originateTransient?: boolean;
  /** Stops the script (cancel). */
  stop: AbortController;
  resolve: (outcome: AttemptOutcome) => void;
  offChannel?: () => void;
  settled: boolean;
}

/**
 * A new attempt of `job` on the call `ctx` with its customer leg `leg`, nothing gathered yet;
 * `resolve` settles the promise the scheduler awaits.
 */
export function newAttempt(
  job: DialJob,
  ctx: CallContext,
  leg: Leg,
  resolve: (outcome: AttemptOutcome) => void,
): Attempt {
  return {
    job,
    ctx,
    leg,
    digits: '',
    scriptStarted: false,
    machine: false,
    confirmed: false,
    playedMs: 0,
    delivered: false,
    mediaFailed: false,
    canceled: false,
    stop: new AbortController(),
    resolve,
    settled: false,
  };
}

const FINAL_DIAL_STATUSES: ReadonlySet<string> = new Set([
  'ANSWER',
  'BUSY',
  'NOANSWER',
  'CANCEL',
  'CONGESTION',
  'CHANUNAVAIL',
]);

/**
 * Follow the events of the attempt's customer channel (`AriGateway.onChannel`), dropping the
 * listener it had: the dial status and the digits, straight from the channel's events (the
 * runtime acts on the rest).
 */
export function listenToChannel(gateway: AriGateway, attempt: Attempt): void {
  attempt.offChannel?.();
  attempt.offChannel = gateway.onChannel(attempt.leg.channelId, (event) =>
    onChannelEvent(attempt, event),
  );
}

/** Dial status and digits, straight from the channel's events (the runtime acts on the rest). */
function onChannelEvent(attempt: Attempt, event: AriEvent): void {
  if (event.type === 'Dial' && event.peer.id === attempt.leg.channelId) {
    if (FINAL_DIAL_STATUSES.has(event.dialstatus))
      attempt.dialStatus = event.dialstatus as AutocallDialStatus;
  } else if (event.type === 'ChannelDtmfReceived') {
    attempt.digits += event.digit;
  }
}

/** What the attempt achieved, from what it gathered (see {@link AttemptResult}). */
export function attemptOutcome(attempt: Attempt): AttemptOutcome {
  const { leg, ctx } = attempt;
  const answeredAt = ctx.call.answeredAt;
  const base = {
    digits: attempt.digits,
    playedSec: Math.floor(attempt.playedMs / 1000),
    callId: ctx.call.id,
    ...(leg.cause !== undefined ? { cause: leg.cause } : {}),
    ...(leg.causeText ? { causeText: leg.causeText } : {}),
    ...(attempt.amdStatus ? { amdStatus: attempt.amdStatus } : {}),
    ...(attempt.amdCause ? { amdCause: attempt.amdCause } : {}),
  };
  if (attempt.originateError !== undefined)
    return {
      ...base,
      dialStatus: attempt.originateTransient ? 'CHANUNAVAIL' : 'FAILED',
      outcome: attempt.originateTransient ? 'congestion' : 'failed',
      causeText: attempt.originateError.slice(0, 200),
    };
  if (answeredAt !== undefined) {
    let outcome: AttemptResult;
    if (attempt.machine) outcome = 'machine';
    else if (attempt.delivered) outcome = 'delivered';
    else if (attempt.canceled) outcome = 'canceled';
    else if (attempt.job.script.confirm && !attempt.confirmed) outcome = 'not_confirmed';
    else if (attempt.mediaFailed) outcome = 'failed';
    else outcome = 'cut_short';
    return { ...base, dialStatus: 'ANSWER', answeredAt, outcome };
  }
  const dialStatus: AutocallDialStatus = attempt.canceled
    ? 'CANCEL'
    : (attempt.dialStatus ?? dialStatusOfCause(leg.cause));
  return {
    ...base,
    dialStatus,
    outcome: attempt.canceled ? 'canceled' : unansweredResult(dialStatus, leg.cause),
  };
}

/**
 * Asterisk's dial status for a channel that ended without a `Dial` event telling it (an
 * originate whose ring timeout expired hangs the channel up with cause 19).
 */
function dialStatusOfCause(cause: number | undefined): AutocallDialStatus {
  switch (cause) {
    case 17:
      return 'BUSY';
    case 18:
    case 19:
      return 'NOANSWER';
    case 34:
    case 38:
    case 41:
    case 42:
    case 44:
    case 47:
      return 'CONGESTION';
    default:
      return 'CHANUNAVAIL';
  }
}
