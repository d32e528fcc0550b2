/**
 * The one narrow interface between the notification-call scheduler (which jobs to call, when, how
 * many at once) and the call flow that places one attempt on Asterisk (originate the customer
 * channel on the job's trunk, run the confirm prompt and the files or verbs, hang up). The
 * scheduler never touches ARI; the flow never touches the job store. Reference: docs/autocalls.md.
 */
import type { AttemptOutcome } from './model.ts';
import type { AutocallScript } from './types.ts';

/** One attempt to place, as the scheduler hands it to {@link NotificationDialer.dial}. */
export interface DialJob {
  /** The job's id (1..2^32-1; also the asterisk.fcgi AutoCallID). */
  id: number;
  /** The campaign's id, when the job belongs to one. */
  campaignId?: number;
  /** The customer number, E.164 (`+74957654321`). */
  to: string;
  /** The dial string of the trunk chosen by the number's prefix (TRUNKS), e.g. `PJSIP/74957654321@trunk`. */
  endpoint: string;
  /** What to run once the customer answers. */
  script: AutocallScript;
  /** Caller ID to present, when the job sets one (else the engine's COMPANY_CALLER_ID). */
  callerId?: string;
  /** Variables of the job (sent on the channel and in webhooks). */
  variables?: Record<string, string>;
  /** Attempts allowed in all. */
  tries: number;
}

/**
 * Places one attempt of a notification call. Implemented by the notification-call flow of the
 * call runtime; the engine runs the scheduler only when one is given.
 */
export interface NotificationDialer {
  /**
   * Place attempt `attemptNo` (1-based) of `job` and resolve once the customer channel is gone
   * (or could not be created) with how it went. Must not reject for call outcomes: a failed
   * originate resolves `{dialStatus: 'FAILED', outcome: 'failed', digits: '', playedSec: 0}`;
   * a rejection is recorded as such an attempt (with the error's message as `causeText`).
   *
   * `signal` aborts when the job or its campaign is canceled, or the engine stops the scheduler:
   * hang up the channel (if any) and resolve with what happened so far (`outcome: 'canceled'`
   * unless the message was already delivered).
   */
  dial(job: DialJob, attemptNo: number, signal: AbortSignal): Promise<AttemptOutcome>;

  /**
   * Engine restart: go on with attempt `attemptNo` of `job`, whose call `callId` (still up in
   * Asterisk) this engine adopted, and resolve with its outcome as {@link dial} does. Optional:
   * without it, adopted attempts are left to their leases (reclaimed as `lost`).
   */
  resumeAttempt?(
    callId: string,
    job: DialJob,
    attemptNo: number,
    signal: AbortSignal,
  ): Promise<AttemptOutcome>;
}
