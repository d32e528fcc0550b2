/**
 * Notification calls, the pure part: job statuses, what an attempt's outcome means for its job
 * (final status or a retry, and when), the campaign calling window, and the pacing bucket. No
 * I/O, no clock of its own: every time is given (epoch milliseconds). Reference: docs/autocalls.md.
 */

/** A job waits for its next attempt (`queued`) or has an attempt in progress (`in_progress`). */
export type AutocallPendingStatus = 'queued' | 'in_progress';

/**
 * A job's final status, exactly one per job:
 * - `delivered`: the message played to its end (after the confirm digit when there is one);
 * - `busy`: the last attempt found the line busy (after every try);
 * - `no_answer`: the last attempt was not answered, or answered without the confirm digit, or
 *   hung up before the message ended;
 * - `failed`: the destination refused the call for good (unallocated number, call rejected…), the
 *   network kept failing through every try, or the engine could not place the call;
 * - `canceled`: canceled (the job, or its campaign) before it was delivered;
 * - `machine`: an answering machine answered (only with answering-machine detection on).
 */
export type AutocallFinalStatus =
  'delivered' | 'busy' | 'no_answer' | 'failed' | 'canceled' | 'machine';

/** Every job status. */
export type AutocallStatus = AutocallPendingStatus | AutocallFinalStatus;

/** The final statuses, in the order the API lists counts. */
export const FINAL_STATUSES: readonly AutocallFinalStatus[] = [
  'delivered',
  'busy',
  'no_answer',
  'failed',
  'canceled',
  'machine',
];

/** Every status, pending ones first. */
export const AUTOCALL_STATUSES: readonly AutocallStatus[] = [
  'queued',
  'in_progress',
  ...FINAL_STATUSES,
];

/** Whether a status is final. */
export function isFinalStatus(status: AutocallStatus): status is AutocallFinalStatus {
  return status !== 'queued' && status !== 'in_progress';
}

/**
 * Asterisk's dial status of the attempt's channel (the `DIALSTATUS` values Asterisk gives for an
 * originate, the `dialstatus` of ARI's `Dial` event): `ANSWER`, `BUSY`, `NOANSWER`, `CANCEL`
 * (the engine hung up before an answer), `CONGESTION`, `CHANUNAVAIL`; `FAILED` when no channel
 * could be created (the originate request itself failed); `UNKNOWN` only on the `lost` attempts
 * the store writes for an engine that stopped mid-attempt.
 */
export type AutocallDialStatus =
  'ANSWER' | 'BUSY' | 'NOANSWER' | 'CANCEL' | 'CONGESTION' | 'CHANUNAVAIL' | 'FAILED' | 'UNKNOWN';

/** The dial statuses. */
export const DIAL_STATUSES: readonly AutocallDialStatus[] = [
  'ANSWER',
  'BUSY',
  'NOANSWER',
  'CANCEL',
  'CONGESTION',
  'CHANUNAVAIL',
  'FAILED',
  'UNKNOWN',
];

/**
 * What one attempt achieved, as the notification-call flow reports it:
 * - `delivered`: answered, (confirm digit pressed,) every file played to its end;
 * - `not_confirmed`: answered, the confirm digit was not pressed in time;
 * - `cut_short`: answered (and confirmed) but hung up before the message ended;
 * - `busy`: the line was busy (dial status BUSY, cause 17);
 * - `no_answer`: rang without an answer (NOANSWER, cause 19/18);
 * - `congestion`: the network or trunk could not take the call now (CONGESTION, CHANUNAVAIL, cause
 *   34/38/41/42/44/47): worth retrying;
 * - `rejected`: the destination refuses the call for good (cause 1 unallocated number, 3 no route,
 *   21 call rejected, 22 number changed, 28 invalid number format): never retried;
 * - `machine`: answering-machine detection found a machine (the message was not played, or
 *   played to the machine with `amd.onMachine: "message"`);
 * - `canceled`: the attempt was stopped because the job or its campaign was canceled;
 * - `failed`: anything else (the originate failed, an engine error): not retried;
 * - `lost`: the engine that held the attempt stopped (its lease expired); what happened is
 *   unknown. Written by the store when it reclaims the job, never by a dialer.
 */
export type AttemptResult =
  | 'delivered'
  | 'not_confirmed'
  | 'cut_short'
  | 'busy'
  | 'no_answer'
  | 'congestion'
  | 'rejected'
  | 'machine'
  | 'canceled'
  | 'failed'
  | 'lost';

/** The attempt results a dialer may report (every one but `lost`). */
export const ATTEMPT_RESULTS: readonly AttemptResult[] = [
  'delivered',
  'not_confirmed',
  'cut_short',
  'busy',
  'no_answer',
  'congestion',
  'rejected',
  'machine',
  'canceled',
  'failed',
  'lost',
];

/**
 * How one attempt went: what a {@link NotificationDialer} resolves with (see
 * src/autocalls/dialer.ts), stored as one row of the job's attempts.
 */
export interface AttemptOutcome {
  /** Asterisk's dial status of the customer channel. */
  dialStatus: AutocallDialStatus;
  /** Q.850 hang-up cause of the customer channel (`ChannelDestroyed.cause`), when known. */
  cause?: number;
  /** Asterisk's text of `cause`, e.g. `User busy`. */
  causeText?: string;
  /** When the customer answered, epoch milliseconds; absent when not answered. */
  answeredAt?: number;
  /** DTMF digits the customer pressed during the attempt, in order (`""` when none). */
  digits: string;
  /** Whole seconds of the message (the files, after the confirm prompt) that played. */
  playedSec: number;
  /** What the attempt achieved. */
  outcome: AttemptResult;
  /** The engine's id of the call that carried the attempt, when one was created. */
  callId?: string;
  /**
   * Asterisk's answering-machine detection verdict (`AMDSTATUS`), when it ran on the attempt
   * and came back: `MACHINE`, `HUMAN` or `NOTSURE`.
   */
  amdStatus?: AmdStatus;
  /** Asterisk's reason for it (`AMDCAUSE`), e.g. `LONGGREETING-1500-1500`, `TOOLONG-4800`. */
  amdCause?: string;
}

/** Verdicts of Asterisk's `AMD()` (`AMDSTATUS`) an attempt records. */
export const AMD_STATUSES = ['MACHINE', 'HUMAN', 'NOTSURE'] as const;

/** One of {@link AMD_STATUSES}. */
export type AmdStatus = (typeof AMD_STATUSES)[number];

/** Q.850 causes for which a destination refuses calls for good (never retried). */
const PERMANENT_CAUSES: ReadonlySet<number> = new Set([1, 2, 3, 21, 22, 28]);
/** Q.850 causes of a network that cannot take the call now (retried). */
const TEMPORARY_CAUSES: ReadonlySet<number> = new Set([27, 34, 38, 41, 42, 44, 47]);

/**
 * The result of an attempt that was not answered, from Asterisk's dial status and hang-up cause:
 * a helper for the dialer. BUSY or cause 17 → `busy`; NOANSWER or cause 18/19 → `no_answer`;
 * cause 1/2/3/21/22/28 → `rejected` (whatever the dial status: a CHANUNAVAIL with cause 1 is an
 * unallocated number); CONGESTION, CHANUNAVAIL or cause 27/34/38/41/42/44/47 → `congestion`;
 * CANCEL → `canceled`; else `failed`.
 */
export function unansweredResult(dialStatus: AutocallDialStatus, cause?: number): AttemptResult {
  if (dialStatus === 'BUSY' || cause === 17) return 'busy';
  if (dialStatus === 'NOANSWER' || cause === 18 || cause === 19) return 'no_answer';
  if (cause !== undefined && PERMANENT_CAUSES.has(cause)) return 'rejected';
  if (
    dialStatus === 'CONGESTION' ||
    dialStatus === 'CHANUNAVAIL' ||
    (cause !== undefined && TEMPORARY_CAUSES.has(cause))
  )
    return 'congestion';
  if (dialStatus === 'CANCEL') return 'canceled';
  return 'failed';
}

/**
 * What an attempt result makes of its job: the final status it would end with, and whether
 * another try is worth making. Retried: `busy`, `no_answer`, `not_confirmed`, `cut_short`,
 * `congestion`, `lost`. Final at once: `delivered`, `machine`, `canceled`, `rejected`, `failed`.
 */
export function classifyResult(result: AttemptResult): {
  status: AutocallFinalStatus;
  retry: boolean;
} {
  switch (result) {
    case 'delivered':
      return { status: 'delivered', retry: false };
    case 'machine':
      return { status: 'machine', retry: false };
    case 'canceled':
      return { status: 'canceled', retry: false };
    case 'busy':
      return { status: 'busy', retry: true };
    case 'no_answer':
    case 'not_confirmed':
    case 'cut_short':
      return { status: 'no_answer', retry: true };
    case 'congestion':
    case 'lost':
      return { status: 'failed', retry: true };
    case 'rejected':
    case 'failed':
      return { status: 'failed', retry: false };
  }
}

/** The job fields {@link nextStep} reads. */
export interface RetryState {
  /** Attempts allowed in all (1-99). */
  tries: number;
  /** Attempts made, the one just ended included. */
  attemptsMade: number;
  /** Seconds between the end of an attempt and the start of the next. */
  triesPeriodSec: number;
  /** A cancel arrived while the attempt was in progress. */
  cancelRequested: boolean;
}

/** What happens to a job after an attempt: it ends, or it is queued again for `nextAttemptAt`. */
export type NextStep =
  { kind: 'final'; status: AutocallFinalStatus } | { kind: 'retry'; nextAttemptAt: number };

/**
 * The job's next step after an attempt ended at `endedAtMs` with `result`: final when the result
 * is final, when the job was canceled meanwhile (`canceled`, unless the message was delivered),
 * or when every try is used (the status of this last attempt); else a retry `triesPeriodSec`
 * after the end.
 */
export function nextStep(state: RetryState, result: AttemptResult, endedAtMs: number): NextStep {
  const { status, retry } = classifyResult(result);
  if (state.cancelRequested && status !== 'delivered') return { kind: 'final', status: 'canceled' };
  if (!retry || state.attemptsMade >= state.tries) return { kind: 'final', status };
  return { kind: 'retry', nextAttemptAt: endedAtMs + state.triesPeriodSec * 1000 };
}

/** Days of the week as the window names them. */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** One of {@link WEEKDAYS}. */
export type Weekday = (typeof WEEKDAYS)[number];

/**
 * When a campaign may place calls: every listed day from `from` to `to` (`HH:MM`, 24-hour,
 * local time of the IANA `timezone`; `to` excluded). `from` later than `to` spans midnight
 * (`21:00`-`06:00`; the day is the day the span starts). Outside it no new call starts; calls in
 * progress finish.
 */
export interface CallingWindow {
  from: string;
  to: string;
  /** IANA time zone, e.g. `Europe/Moscow`. */
  timezone: string;
  /** Days on which the window opens; every day when absent. */
  days?: readonly Weekday[];
}

const WEEKDAY_OF: Record<string, Weekday> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of the day of `ms` in `timezone`. */
function localTime(ms: number, timezone: string): { day: Weekday; minute: number } {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timezone, format);
  }
  const parts = format.formatToParts(new Date(ms));
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  return {
    day: WEEKDAY_OF[get('weekday')] ?? 'mon',
    minute: Number(get('hour')) * 60 + Number(get('minute')),
  };
}

/** `HH:MM` → minutes since midnight. */
export function minuteOfDay(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

/** Whether `timezone` is an IANA time zone this runtime knows. */
export function isKnownTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** Whether the window is open at `nowMs`; no window means always open. */
export function windowOpen(window: CallingWindow | undefined, nowMs: number): boolean {
  if (!window) return true;
  const { day, minute } = localTime(nowMs, window.timezone);
  const from = minuteOfDay(window.from);
  const to = minuteOfDay(window.to);
  const dayAllowed = (d: Weekday): boolean => !window.days || window.days.includes(d);
  if (from === to) return dayAllowed(day);
  if (from < to) return dayAllowed(day) && minute >= from && minute < to;
  // Spans midnight: the evening part belongs to today, the morning part to yesterday's window.
  if (minute >= from) return dayAllowed(day);
  if (minute < to) {
    const yesterday = WEEKDAYS[(WEEKDAYS.indexOf(day) + 6) % 7]!;
    return dayAllowed(yesterday);
  }
  return false;
}

/**
 * Pacing of a campaign, `callsPerSecond`, as slots spaced evenly `1000 / callsPerSecond` ms
 * apart: a claim at `nowMs` may start `allowed` calls; the next slot moves on by that many
 * intervals. Slots not used while nothing was due are not saved up beyond `burst` (one second's
 * worth, at least 1), so a campaign idle for an hour does not start an hour's calls at once.
 *
 * @param nextSlotAt the campaign's stored next slot, epoch ms
 * @param wanted how many calls the caller would start now
 * @returns how many it may start and the new next slot
 */
export function takeSlots(
  nextSlotAt: number,
  callsPerSecond: number,
  nowMs: number,
  wanted: number,
): { allowed: number; nextSlotAt: number } {
  const interval = 1000 / callsPerSecond;
  const burst = Math.max(1, Math.floor(callsPerSecond));
  const start = Math.max(nextSlotAt, nowMs - (burst - 1) * interval);
  if (start > nowMs || wanted <= 0) return { allowed: 0, nextSlotAt };
  const available = Math.floor((nowMs - start) / interval) + 1;
  const allowed = Math.min(wanted, available);
  return { allowed, nextSlotAt: start + allowed * interval };
}

/** Smallest and largest job id (the asterisk.fcgi `AutoCallID` is an integer from 1 to 2^32). */
export const MAX_AUTOCALL_ID = 2 ** 32 - 1;
