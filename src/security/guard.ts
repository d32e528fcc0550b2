/**
 * The toll-fraud guard on call creation: a destination
 * allow-list with denied number types (premium-rate…), a per-API-key rate limit and a cap on
 * engine-originated calls in progress ({@link CallGuard}, for the API); and the same destination
 * policy for numbers operators dial from their own phones ({@link OperatorDialGuard}, for the
 * outbound call flow). Every refusal is logged and counted
 * (`aricrm_call_guard_refusals_total{source,reason}`).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import {
  tryNumberForms,
  type CountryCode,
  type NumberForms,
  type PhoneNumberType,
} from '../numbers/phone.ts';
import type { DestinationPolicy } from './destinations.ts';
import type { GuardRefusal, SecurityMetrics } from './metrics.ts';

/** Why a destination is refused by the {@link DestinationPolicy}. */
export interface DestinationRefusal {
  reason: Extract<GuardRefusal, 'destination_not_allowed' | 'destination_type_not_allowed'>;
  /** Human message naming the number, e.g. `calls to +78091234567 are not allowed: …`. */
  message: string;
  /** The denied number type (`destination_type_not_allowed` only), e.g. `PREMIUM_RATE`. */
  numberType?: PhoneNumberType;
}

/**
 * Check a number against the destination allow-list (`DESTINATION_ALLOWLIST`), then the denied
 * number types (`DESTINATION_DENIED_TYPES`). Undefined when it may be dialled.
 */
export function destinationRefusal(
  destinations: DestinationPolicy,
  number: Pick<NumberForms, 'e164' | 'digits' | 'country'>,
): DestinationRefusal | undefined {
  if (!destinations.allows(number))
    return {
      reason: 'destination_not_allowed',
      message: `calls to ${number.e164} are not allowed (destination allow-list)`,
    };
  const denied = destinations.deniedType(number);
  if (denied)
    return {
      reason: 'destination_type_not_allowed',
      message: `calls to ${number.e164} are not allowed: it is ${denied.description} (${denied.type}, denied by DESTINATION_DENIED_TYPES)`,
      numberType: denied.type,
    };
  return undefined;
}

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
    const refused = destinationRefusal(destinations, request.number);
    if (refused) {
      throw this.refuse(
        refused.reason,
        request,
        new HttpError(
          403,
          refused.reason,
          refused.message,
          refused.numberType === undefined
            ? { field: 'to' }
            : { field: 'to', numberType: refused.numberType },
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
    this.options.metrics.guardRefusals.inc({ source: 'api', reason });
    this.options.logger.warn('call refused by the toll-fraud guard', {
      source: 'api',
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

/** What the guard of operator-dialled calls needs. */
export interface OperatorDialGuardOptions {
  destinations: DestinationPolicy;
  /** DEFAULT_REGION: numbers dialled without a country code are read in it. */
  region: CountryCode;
  logger: Logger;
  metrics: SecurityMetrics;
}

/** One number an operator dialled from their phone (`Stasis(crm-app,outbound,<number>)`). */
export interface OperatorDialRequest {
  /** The number as dialled (the dialplan drops a leading `+`), e.g. `78091234567`. */
  number: string;
  /** The operator's extension, when the channel tells it (logs). */
  extension?: string;
  /** The call (logs). */
  callId: string;
}

/**
 * The toll-fraud guard of calls operators dial from their own phones: the same destination
 * policy as the API (allow-list, then denied number types), applied before the engine dials the
 * trunk, so that a hijacked SIP extension cannot reach premium-rate numbers through the engine.
 * No rate limit (there is no API key) and no live-call cap (MAX_LIVE_ORIGINATED_CALLS is the API's
 * budget; an extension's concurrent calls are Asterisk's to limit).
 *
 * A number that cannot be read as a valid number of `region` (or, with a leading country code,
 * of its own country) is checked by its digits alone: no country rule matches it, a prefix or
 * pattern rule or `*` may.
 */
export class OperatorDialGuard {
  constructor(private readonly options: OperatorDialGuardOptions) {}

  /**
   * Check one operator-dialled number; a refusal is logged (`call refused by the toll-fraud
   * guard`, `source: operator_phone`) and counted
   * (`aricrm_call_guard_refusals_total{source="operator_phone",reason}`).
   *
   * @returns undefined when it may be dialled, else why not
   */
  check(request: OperatorDialRequest): DestinationRefusal | undefined {
    const digits = request.number.replace(/^\+/, '');
    const number = tryNumberForms(request.number, this.options.region) ?? {
      e164: `+${digits}`,
      digits,
    };
    const refused = destinationRefusal(this.options.destinations, number);
    if (!refused) return undefined;
    this.options.metrics.guardRefusals.inc({ source: 'operator_phone', reason: refused.reason });
    this.options.logger.warn('call refused by the toll-fraud guard', {
      source: 'operator_phone',
      reason: refused.reason,
      callId: request.callId,
      operator: request.extension,
      to: number.e164,
      dialled: request.number,
      numberType: refused.numberType,
    });
    return refused;
  }
}
