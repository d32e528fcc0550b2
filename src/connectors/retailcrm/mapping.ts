/**
 * retailCRM API v5 values the engine's neutral ones map to (docs/connectors/retailcrm.md has the
 * tables): a call's disposition as the `hangupStatus` of `POST /api/v5/telephony/call/event`
 * and as the `result` of `POST /api/v5/telephony/calls/upload`; call dates in "Y-m-d H:i:s";
 * retailCRM user statuses as the engine's operator statuses.
 */
import type { EventDisposition } from '../../events/types.ts';
import type { OperatorStatus } from '../types.ts';

/** `hangupStatus` of a `hangup` call event. */
export type RetailCrmHangupStatus = 'answered' | 'busy' | 'cancel' | 'failed' | 'no answered';

/** `result` of an uploaded call. */
export type RetailCrmCallResult =
  'failed' | 'answered' | 'busy' | 'no answer' | 'not allowed' | 'unknown';

/** Disposition → `hangupStatus`. */
export const HANGUP_STATUS: Readonly<Record<EventDisposition, RetailCrmHangupStatus>> = {
  answered: 'answered',
  busy: 'busy',
  no_answer: 'no answered',
  canceled: 'cancel',
  failed: 'failed',
};

/** End reasons of a call the toll-fraud guard refused (`result: "not allowed"`). */
const NOT_ALLOWED_REASONS = new Set(['destination_not_allowed', 'destination_type_not_allowed']);

/**
 * Disposition (and end reason) → `result`: a caller who hung up before an answer (`canceled`,
 * abandoned) is a missed call for the CRM, `no answer`; a number the toll-fraud guard refused is
 * `not allowed`.
 */
export function callResult(
  disposition: string | undefined,
  endReason?: string,
): RetailCrmCallResult {
  if (endReason !== undefined && NOT_ALLOWED_REASONS.has(endReason)) return 'not allowed';
  switch (disposition) {
    case 'answered':
      return 'answered';
    case 'busy':
      return 'busy';
    case 'no_answer':
    case 'canceled':
      return 'no answer';
    case 'failed':
      return 'failed';
    default:
      return 'unknown';
  }
}

/** retailCRM user statuses (`POST /api/v5/users/{id}/status`, `changeUserStatusUrl`). */
export const RETAILCRM_USER_STATUSES = ['free', 'busy', 'dinner', 'break'] as const;
/** A retailCRM user status. */
export type RetailCrmUserStatus = (typeof RETAILCRM_USER_STATUSES)[number];

/** retailCRM user status → the engine's operator status. */
export const OPERATOR_STATUS: Readonly<Record<RetailCrmUserStatus, OperatorStatus>> = {
  free: 'available',
  busy: 'dnd',
  dinner: 'break',
  break: 'break',
};

/**
 * An instant as retailCRM's "Y-m-d H:i:s" in `timeZone` (IANA, e.g. `Europe/Moscow`).
 *
 * @throws RangeError on an invalid time or time zone
 */
export function retailCrmDate(at: string | number | Date, timeZone: string): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid time: ${String(at)}`);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}
