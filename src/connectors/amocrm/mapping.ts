/**
 * amoCRM / Kommo values the engine's neutral ones map to (docs/connectors/amocrm.md has the
 * table): a finished call's disposition as the `call_status` and `call_result` of
 * `POST /api/v4/calls`, and the phone query of a contact search.
 */
import type { EventDisposition } from '../../events/types.ts';

/**
 * `call_status` of `POST /api/v4/calls`: 1 left a message, 2 call back later, 3 not available,
 * 4 conversation, 5 wrong number, 6 not phoned (could not get through), 7 busy.
 */
export type AmoCrmCallStatus = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** amoCRM's `call_status` values by name. */
export const CALL_STATUS = {
  leftMessage: 1,
  callBackLater: 2,
  notAvailable: 3,
  conversation: 4,
  wrongNumber: 5,
  notPhoned: 6,
  busy: 7,
} as const satisfies Record<string, AmoCrmCallStatus>;

/**
 * Disposition → `call_status`: answered is a conversation (4), busy is busy (7); a call nobody
 * answered, one the caller gave up on before an answer (abandoned) and a failed one are "not
 * phoned" (6). A number the toll-fraud guard refused is a wrong number (5).
 */
export function callStatus(disposition: EventDisposition, endReason?: string): AmoCrmCallStatus {
  if (endReason !== undefined && NOT_ALLOWED_REASONS.has(endReason)) return CALL_STATUS.wrongNumber;
  switch (disposition) {
    case 'answered':
      return CALL_STATUS.conversation;
    case 'busy':
      return CALL_STATUS.busy;
    case 'no_answer':
    case 'canceled':
    case 'failed':
      return CALL_STATUS.notPhoned;
  }
}

/** End reasons of a number the toll-fraud guard refused. */
const NOT_ALLOWED_REASONS = new Set(['destination_not_allowed', 'destination_type_not_allowed']);

/**
 * `call_result`: the short text amoCRM shows with the call note, e.g. `Answered by 101`,
 * `No answer`, `Caller hung up before an answer`, `Busy`, `Failed`.
 */
export function callResult(
  direction: 'in' | 'out',
  disposition: EventDisposition,
  answeredBy: string | undefined,
  endReason?: string,
): string {
  if (endReason !== undefined && NOT_ALLOWED_REASONS.has(endReason)) return 'Number not allowed';
  switch (disposition) {
    case 'answered':
      return answeredBy === undefined ? 'Answered' : `Answered by ${answeredBy}`;
    case 'busy':
      return 'Busy';
    case 'no_answer':
      return 'No answer';
    case 'canceled':
      return direction === 'in' ? 'Caller hung up before an answer' : 'Canceled';
    case 'failed':
      return 'Failed';
  }
}

/**
 * The `query` of a contact search by phone: the number's last 10 digits (amoCRM matches the
 * contact whether the phone was saved as +7…, 8… or 7…); shorter numbers as their digits.
 */
export function phoneQuery(phone: string): string {
  const digits = phone.replace(/\D+/g, '');
  return digits.length > 10 ? digits.slice(-10) : digits || phone;
}

/** An ISO 8601 time as Unix seconds (`created_at`). */
export function unixSeconds(at: string): number {
  return Math.floor(Date.parse(at) / 1000);
}
