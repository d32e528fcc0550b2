/**
 * The checks every call command makes before it runs, shared by the call routes
 * (src/calls/routes.ts), the compatibility path (src/compat/) and the connectors' click-to-call:
 * refusals while Asterisk or the store is down, a customer number read or refused, and the
 * call-control contract's errors as HTTP errors.
 */
import { HttpError } from '../http/errors.ts';
import {
  InvalidNumberError,
  parseCustomerNumber,
  type CountryCode,
  type NumberForms,
} from '../numbers/phone.ts';
import { CallNotFoundError, CallStateError, type CallControl } from './control.ts';

/**
 * Before a call is placed (`POST /v1/calls`, compat `makecall`): while store writes fail, refuse
 * rather than accept a call that could not be recorded.
 *
 * @throws HttpError 503 `store_unavailable` with `Retry-After: 5`
 */
export function refuseWhileStoreFails(control: Pick<CallControl, 'storeFailing'>): void {
  if (control.storeFailing())
    throw new HttpError(
      503,
      'store_unavailable',
      'the call store is not accepting writes; no call was placed, retry shortly',
      undefined,
      { 'Retry-After': '5' },
    );
}

/** `Retry-After` of a 503 `ari_unavailable`, seconds. */
export const ARI_UNAVAILABLE_RETRY_AFTER_SEC = 5;

/**
 * Before a call command (`POST /v1/calls`, hang-up, transfer, compat `makecall`/`transfer`):
 * while the engine is not connected to Asterisk (starting with Asterisk down, or an outage), refuse
 * rather than accept a command that cannot be carried out.
 *
 * @throws HttpError 503 `ari_unavailable` with `Retry-After` ({@link ARI_UNAVAILABLE_RETRY_AFTER_SEC})
 */
export function refuseWhileAriDown(control: Pick<CallControl, 'ariConnected'>): void {
  if (!control.ariConnected())
    throw new HttpError(
      503,
      'ari_unavailable',
      'the engine is not connected to Asterisk; nothing was done, retry shortly',
      undefined,
      { 'Retry-After': String(ARI_UNAVAILABLE_RETRY_AFTER_SEC) },
    );
}

/**
 * Normalise a customer number for the API.
 *
 * @throws HttpError 400 `invalid_number` naming `field`
 */
export function normaliseNumberOrThrow(
  input: string,
  region: CountryCode,
  field: string,
): NumberForms {
  try {
    return parseCustomerNumber(input, region);
  } catch (err) {
    if (!(err instanceof InvalidNumberError)) throw err;
    const shown = input.length > 40 ? `${input.slice(0, 40)}…` : input;
    throw new HttpError(400, 'invalid_number', `${field}: "${shown}" ${err.message}`, { field });
  }
}

/** Map the contract's errors to HTTP: 404 `call_not_found`, 409 with the state error's code. */
export function controlErrorToHttp(err: unknown): unknown {
  if (err instanceof CallNotFoundError) return new HttpError(404, err.code, err.message);
  if (err instanceof CallStateError) return new HttpError(409, err.code, err.message);
  return err;
}
