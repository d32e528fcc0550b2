/**
 * The text answers of the asterisk.fcgi daemon, byte for byte: `Key: value` lines,
 * each ended by `\n`, the first always `Answer: OK`, `Answer: Error` or `Answer: Busy`.
 *
 * - `?get_uniqueid_callerid`: `Answer: OK` / `CallerID: <number or unknown>` /
 *   `UniqueID: <channel id>`, or just `Answer: Error` when no connection is established;
 * - `?makecall=N`: `Answer: OK`, `Answer: Error` (no operator at the client's address),
 *   `Answer: Busy` (the line was busy through every try);
 * - `?transfer=UNIQUEID&dest=N`: `Answer: OK` or `Answer: Error`;
 * - `?autocall=N&file1=…&file10=…`: `Answer: OK` / `AutoCallID: <id>`, or `Answer: Error`;
 * - `?autocallstatus=ID`: see {@link autocallStatusAnswer}.
 */
import type { AutocallStatus } from '../autocalls/model.ts';
import type { CurrentCall } from '../calls/control.ts';
import type { CallSnapshot } from '../calls/model.ts';

/**
 * The daemon's answers: `OK`, `Error`, `Busy`; `?autocallstatus` also `OK (Sent)`, `Queued` and
 * `NO ANSWER` (the daemon's spelling).
 */
export type CompatAnswer = 'OK' | 'Error' | 'Busy' | 'OK (Sent)' | 'Queued' | 'NO ANSWER';

/** Media type of every compat answer. */
export const COMPAT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/** `Answer: <answer>\n` followed by `<key>: <value>\n` for each field, in order. */
export function formatAnswer(
  answer: CompatAnswer,
  fields: ReadonlyArray<[string, string]> = [],
): string {
  const clean = (v: string): string => v.replace(/[\r\n]+/g, ' ');
  return [['Answer', answer] as const, ...fields].map(([k, v]) => `${k}: ${clean(v)}\n`).join('');
}

/**
 * `CallerID` as the daemon's clients expect it: the number (digits, maybe with `+`), or `unknown`
 * when there is none (anonymous, empty, a name).
 */
export function compatCallerId(number: string): string {
  return /^\+?\d+$/.test(number) ? number : 'unknown';
}

/**
 * Answer of `?get_uniqueid_callerid` for the operator's current call: `OK` with `CallerID` and
 * `UniqueID` (the customer channel's Asterisk UniqueID) when a customer channel exists, else
 * `Error` (the daemon's manual: "if the connection is not established yet, only one pair: Answer:
 * Error").
 */
export function uniqueIdCallerIdAnswer(current: CurrentCall | undefined): string {
  if (!current || current.customerChannelId === '') return formatAnswer('Error');
  return formatAnswer('OK', [
    ['CallerID', compatCallerId(current.callerId.number)],
    ['UniqueID', current.customerChannelId],
  ]);
}

/**
 * What `?makecall` answers for a click-to-call in this state, or undefined while undecided:
 * `OK` once the customer's line rings or the parties are bridged (the daemon's manual: the operator
 * was found
 * and the number is not busy); `Busy` when the call ended busy (the operator through every try,
 * or the customer); `Error` when it ended otherwise (no answer, unreachable, failed), unless it
 * had been answered.
 */
export function makecallOutcome(
  call: Pick<CallSnapshot, 'state' | 'disposition'> | undefined,
): CompatAnswer | undefined {
  if (!call) return 'Error';
  switch (call.state) {
    case 'customer_ringing':
    case 'bridged':
      return 'OK';
    case 'ended':
      return call.disposition === 'answered'
        ? 'OK'
        : call.disposition === 'busy'
          ? 'Busy'
          : 'Error';
    default:
      return undefined;
  }
}

/**
 * Answer of `?autocallstatus=ID` for a notification call in `status`: `OK (Sent)` (delivered),
 * `Busy`, `Queued` (queued or in progress), `NO ANSWER` (no answer, or no confirm digit; also an
 * answering machine: the person was not reached), `Error` for `failed` and `canceled` (the
 * daemon had no answer for those; `X-Autocall-Status` tells which).
 */
export function autocallStatusAnswer(status: AutocallStatus): CompatAnswer {
  switch (status) {
    case 'delivered':
      return 'OK (Sent)';
    case 'busy':
      return 'Busy';
    case 'queued':
    case 'in_progress':
      return 'Queued';
    case 'no_answer':
    case 'machine':
      return 'NO ANSWER';
    case 'failed':
    case 'canceled':
      return 'Error';
  }
}
