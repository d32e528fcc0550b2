/**
 * Bitrix24 REST values the engine's neutral ones map to (docs/connectors/bitrix24.md has the
 * tables): a call's disposition as the `STATUS_CODE` of `telephony.externalcall.finish`, call
 * directions as the `TYPE` of `telephony.externalcall.register`, times as Bitrix24's ISO 8601
 * with an offset, and REST parameters as the PHP-style form fields Bitrix24 reads
 * (`values[0]=…`, `FILTER[ACTIVE]=…`).
 */
import type { EventDirection, EventDisposition } from '../../events/types.ts';

/** `STATUS_CODE` of `telephony.externalcall.finish`. */
export type Bitrix24StatusCode = '200' | '304' | '486' | '603-S' | 'OTHER';

/**
 * Disposition → `STATUS_CODE`: answered 200, nobody answered 304 (missed), busy 486, the caller
 * hung up first 603-S (cancelled), anything else OTHER.
 */
export const STATUS_CODE: Readonly<Record<EventDisposition, Bitrix24StatusCode>> = {
  answered: '200',
  no_answer: '304',
  busy: '486',
  canceled: '603-S',
  failed: 'OTHER',
};

/** `TYPE` of `telephony.externalcall.register`: 1 outbound, 2 inbound. */
export const CALL_TYPE: Readonly<Record<EventDirection, '1' | '2'>> = { out: '1', in: '2' };

/**
 * An instant as Bitrix24's `CALL_START_DATE`: ISO 8601 in UTC with an explicit offset,
 * `2026-12-06T08:30:00+00:00`.
 *
 * @throws RangeError on an invalid time
 */
export function bitrix24Date(at: string | number | Date): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid time: ${String(at)}`);
  return `${date.toISOString().slice(0, 19)}+00:00`;
}

/** A REST parameter value: a scalar, a list, or a nested object. */
export type RestValue =
  string | number | boolean | readonly RestValue[] | { readonly [key: string]: RestValue };

/**
 * REST parameters as form fields the way Bitrix24 (PHP) reads them: nested keys in brackets,
 * lists indexed from 0, booleans as `1`/`0`, e.g. `{values: ['+7…']}` → `values[0]=+7…`.
 */
export function restForm(params: Readonly<Record<string, RestValue>>): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (key: string, value: RestValue): void => {
    if (typeof value === 'boolean') out[key] = value ? '1' : '0';
    else if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
    else if (Array.isArray(value))
      (value as readonly RestValue[]).forEach((v, i) => put(`${key}[${i}]`, v));
    else
      for (const [k, v] of Object.entries(value as Record<string, RestValue>))
        put(`${key}[${k}]`, v);
  };
  for (const [key, value] of Object.entries(params)) put(key, value);
  return out;
}
