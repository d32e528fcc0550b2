/**
 * Q.850 hang-up causes with Asterisk's texts (`ast_cause2str`), and the SIP answers the simulated
 * phones give, mapped the way chan_pjsip maps them (`ast_sip_hangup_sip2cause`). Values checked
 * against the traces: 16 "Normal Clearing", 17 "User busy" (486), 19 "User alerting, no answer",
 * 127 for a CANCEL (487).
 */

export const CAUSE = {
  UNALLOCATED: 1,
  NO_ROUTE_DESTINATION: 3,
  NORMAL_CLEARING: 16,
  USER_BUSY: 17,
  NO_USER_RESPONSE: 18,
  NO_ANSWER: 19,
  CALL_REJECTED: 21,
  NORMAL_CIRCUIT_CONGESTION: 34,
  INTERWORKING: 127,
} as const;

const CAUSE_TEXT: Record<number, string> = {
  0: 'Unknown',
  1: 'Unallocated (unassigned) number',
  3: 'No route to destination',
  16: 'Normal Clearing',
  17: 'User busy',
  18: 'No user responding',
  19: 'User alerting, no answer',
  20: 'Subscriber absent',
  21: 'Call Rejected',
  26: 'Answered elsewhere',
  28: 'Invalid number format (addr incomplete)',
  31: 'Normal, unspecified',
  38: 'Network out of order',
  58: 'Bearer capability not available',
  34: 'Circuit/channel congestion',
  127: 'Interworking, unspecified',
};

/** Asterisk's text for a cause (`ast_cause2str`). */
export function causeText(cause: number): string {
  return CAUSE_TEXT[cause] ?? 'Unknown';
}

/** `DELETE /channels/{id}?reason=` → hang-up cause (res/ari/resource_channels.c, Asterisk 22). */
export const HANGUP_REASON_CAUSE: Record<string, number> = {
  normal: 16,
  busy: 17,
  congestion: 34,
  no_answer: 19,
  timeout: 18,
  rejected: 21,
  unallocated: 1,
  normal_unspecified: 31,
  number_incomplete: 28,
  codec_mismatch: 58,
  interworking: 127,
  failure: 38,
  answered_elsewhere: 26,
};

/** Dial status Asterisk reports for a final hang-up cause (`ast_hangup_cause_to_dial_status`). */
export function dialStatusOfCause(cause: number): string {
  switch (cause) {
    case 17:
      return 'BUSY';
    case 34:
      return 'CONGESTION';
    case 3:
    case 20:
      return 'CHANUNAVAIL';
    default:
      return 'NOANSWER';
  }
}
