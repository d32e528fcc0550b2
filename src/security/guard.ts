/**
 * The toll-fraud guard on call creation: a destination allow-list with denied number types
 * (premium-rate…), a per-API-key rate limit and a cap on engine-originated calls in progress. Every
 * refusal is logged with the key's name and counted (`aricrm_call_guard_refusals_total{reason}`).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { NumberForms } from '../numbers/phone.ts';
import type { DestinationPolicy } from './destinations.ts';
import type { GuardRefusal, SecurityMetrics } from './metrics.ts';

/**
 * `Retry-After` of a 429 `too_many_calls`, seconds. When a call in progress ends is unknown (a
 * conversation lasts minutes); a few seconds lets a client retry soon without hammering the API.
 */
export const TOO_MANY_CALLS_RETRY_AFTER_SEC = 10;

/** What the guard needs. */
export interface CallGuardOptions {
  destinations: DestinationPolicy;
  /** Calls one key may create per minute (CALLS_RATE_LIMIT_PER_MIN). */
  callsPerMinute: number;
  /** Engine-originated calls that may be in progress at once (MAX_LIVE_ORIGINATED_CALLS). */
  maxLiveCalls: number;
  /** How many engine-originated calls are in progress now (`CallControl.liveOriginatedCalls`). */
  liveCalls: () => number;
  logger: Logger;
  metrics: SecurityMetrics;
}

/** One call creation to check. */
export interface GuardRequest {
  /** Name of the API key asking. */
  keyName: string;
  /** The customer number, normalised. */
  number: Pick<NumberForms, 'e164' | 'digits' | 'country'>;
  /** Operator extension (logs). */
  operator: string;
  /** Client address (logs). */
  ip?: string;
}

/** Checks a call creation against the guard's three rules. */
export class CallGuard {
  private readonly limiter: RateLimiterMemory;

  constructor(private readonly options: CallGuardOptions) {
    this.limiter = new RateLimiterMemory({
      points: options.callsPerMinute,
      duration: 60,
      keyPrefix: 'calls',
    });
  }

  /**
   * Admit one call creation, in this order: destination allow-list, denied number types, rate
   * limit (consumes one point of the key's minute), concurrent-call cap.
   *
   * @throws HttpError 403 `destination_not_allowed`; 403 `destination_type_not_allowed` with
   *   `numberType` (e.g. `PREMIUM_RATE`, `DESTINATION_DENIED_TYPES`); 429 `rate_limited` with `Retry-After`
   *   (whole seconds until the key's window frees a point); 429 `too_many_calls` with
   *   `Retry-After` ({@link TOO_MANY_CALLS_RETRY_AFTER_SEC})
   */
  async admit(request: GuardRequest): Promise<void> {
    const { destinations, maxLiveCalls, liveCalls } = this.options;
    if (!destinations.allows(request.number)) {
      throw this.refuse(
        'destination_not_allowed',
        request,
        new HttpError(
          403,
          'destination_not_allowed',
          `calls to ${request.number.e164} are not allowed (destination allow-list)`,
          { field: 'to' },
        ),
      );
    }
    const denied = destinations.deniedType(request.number);
    if (denied) {
      throw this.refuse(
        'destination_type_not_allowed',
        request,
        new HttpError(
          403,
          'destination_type_not_allowed',
          `calls to ${request.number.e164} are not allowed: it is ${denied.description} (${denied.type}, denied by DESTINATION_DENIED_TYPES)`,
          { field: 'to', numberType: denied.type },
        ),
      );
    }
    try {
      await this.limiter.consume(request.keyName);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfterSec = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      throw this.refuse(
        'rate_limited',
        request,
        new HttpError(
          429,
          'rate_limited',
          `too many calls for this API key (at most ${this.options.callsPerMinute} per minute); retry in ${retryAfterSec} s`,
          undefined,
          { 'Retry-After': String(retryAfterSec) },
        ),
      );
    }
    const live = liveCalls();
    if (live >= maxLiveCalls) {
      throw this.refuse(
        'too_many_calls',
        request,
        new HttpError(
          429,
          'too_many_calls',
          `${live} engine-originated calls are in progress (at most ${maxLiveCalls}); retry in ${TOO_MANY_CALLS_RETRY_AFTER_SEC} s`,
          undefined,
          { 'Retry-After': String(TOO_MANY_CALLS_RETRY_AFTER_SEC) },
        ),
      );
    }
  }

  private refuse(reason: GuardRefusal, request: GuardRequest, error: HttpError): HttpError {
    this.options.metrics.guardRefusals.inc({ reason });
    this.options.logger.warn('call refused by the toll-fraud guard', {
      reason,
      keyName: request.keyName,
      operator: request.operator,
      to: request.number.e164,
      numberType: error.details?.numberType,
      ip: request.ip,
    });
    return error;
  }
}
