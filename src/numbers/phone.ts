/**
 * Phone numbers: any human-written customer number (`+7 495 765-43-21`, `8 (495) 765-43-21`,
 * `74957654321`, `4957654321` with region RU) to E.164 (`+74957654321`) with libphonenumber-js,
 * and the forms a trunk may want (each trunk's dial string template decides the form sent to it).
 */
import {
  isSupportedCountry,
  parsePhoneNumberWithError,
  validatePhoneNumberLength,
  type CountryCode,
  type PhoneNumber,
} from 'libphonenumber-js';
// The "max" metadata: the only one that tells number types (premium-rate, toll-free, mobile…).
// Parsing and validation keep the default ("min") metadata; only numberTypeOf uses this one.
import { parsePhoneNumber as parseWithTypes, type NumberType } from 'libphonenumber-js/max';

export type { CountryCode } from 'libphonenumber-js';

/**
 * Every number type libphonenumber-js tells (Google's libphonenumber metadata), e.g.
 * `PREMIUM_RATE` for +7 809…, `TOLL_FREE` for +7 800…, `MOBILE` for +7 916….
 */
export const NUMBER_TYPES = [
  'FIXED_LINE',
  'MOBILE',
  'FIXED_LINE_OR_MOBILE',
  'TOLL_FREE',
  'PREMIUM_RATE',
  'SHARED_COST',
  'VOIP',
  'PERSONAL_NUMBER',
  'PAGER',
  'UAN',
  'VOICEMAIL',
] as const satisfies readonly NonNullable<NumberType>[];

/** One of {@link NUMBER_TYPES}. */
export type PhoneNumberType = (typeof NUMBER_TYPES)[number];

/** Thrown when a text is not a valid phone number. `reason` is machine-readable. */
export class InvalidNumberError extends Error {
  override readonly name = 'InvalidNumberError';
  constructor(
    readonly input: string,
    readonly reason: 'not_a_number' | 'too_short' | 'too_long' | 'invalid',
  ) {
    super(
      reason === 'not_a_number'
        ? 'is not a phone number'
        : reason === 'invalid'
          ? 'is not a valid phone number'
          : `is ${reason.replace('_', ' ')} to be a phone number`,
    );
  }
}

/** A customer number in every form a trunk template may ask for. */
export interface NumberForms {
  /** E.164 with `+`, e.g. `+74957654321` (template `{e164}`). */
  e164: string;
  /** E.164 digits without `+`, e.g. `74957654321` (template `{number}`). */
  digits: string;
  /** National significant number, e.g. `4957654321` (template `{national}`). */
  national: string;
  /**
   * The number as dialled inside its country, with the national (trunk) prefix where the country
   * uses one, e.g. `84957654321` in Russia, `02079460958` in the UK, `2133734253` in the US
   * (template `{national_prefixed}`).
   */
  nationalPrefixed: string;
  /** ISO 3166-1 alpha-2 country of the number when known, e.g. `RU`. */
  country?: CountryCode;
}

/** True when `region` is an ISO 3166-1 alpha-2 code libphonenumber-js knows, e.g. `RU`. */
export function isSupportedRegion(region: string): region is CountryCode {
  return isSupportedCountry(region);
}

function formsOf(parsed: PhoneNumber): NumberForms {
  let nationalPrefixed: string | undefined;
  const forms: NumberForms = {
    e164: parsed.number,
    digits: parsed.number.slice(1),
    national: parsed.nationalNumber,
    // Formatting is the costly part; only trunk templates need it.
    get nationalPrefixed(): string {
      nationalPrefixed ??= parsed.formatNational().replace(/\D/g, '');
      return nationalPrefixed;
    },
  };
  if (parsed.country) forms.country = parsed.country;
  return forms;
}

/**
 * Parse `input` written in any human format; numbers without `+` are read as written in
 * `region` (a leading country code, e.g. `7…` in RU, is recognised too).
 *
 * @param input e.g. `+7 495 765-43-21`, `8 (495) 765-43-21`, `74957654321`
 * @param region default region, ISO 3166-1 alpha-2, e.g. `RU`; without it only `+` numbers parse
 * @returns the number's forms; `e164` is what the API stores and sends to the call flows
 * @throws InvalidNumberError when it is not a number, or not a valid one for its country's plan
 */
export function parseCustomerNumber(input: string, region?: CountryCode): NumberForms {
  const text = input.trim();
  if (text === '' || text.length > 64 || !/\d/.test(text)) {
    throw new InvalidNumberError(input, 'not_a_number');
  }
  let parsed: PhoneNumber;
  try {
    parsed = parsePhoneNumberWithError(text, region ? { defaultCountry: region } : {});
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    throw new InvalidNumberError(
      input,
      message === 'TOO_SHORT' ? 'too_short' : message === 'TOO_LONG' ? 'too_long' : 'not_a_number',
    );
  }
  if (!parsed.isValid()) {
    const length = validatePhoneNumberLength(text, region ? { defaultCountry: region } : {});
    throw new InvalidNumberError(
      input,
      length === 'TOO_SHORT' ? 'too_short' : length === 'TOO_LONG' ? 'too_long' : 'invalid',
    );
  }
  return formsOf(parsed);
}

/**
 * The forms of a number handed to the dial-string builder: an E.164 number (`+…`), or a number
 * as an operator dialled it (outbound calls from the dialplan), read in `region` when given.
 * Returns undefined when the number cannot be read as a valid number.
 */
export function tryNumberForms(number: string, region?: CountryCode): NumberForms | undefined {
  try {
    return parseCustomerNumber(number, region);
  } catch {
    return undefined;
  }
}

/**
 * The type of an E.164 number by its country's numbering plan (libphonenumber-js with its "max"
 * metadata), e.g. `PREMIUM_RATE` for `+78091234567`; undefined when the plan does not say (the
 * number matches none of its country's ranges) or it is not a number.
 */
export function numberTypeOf(e164: string): PhoneNumberType | undefined {
  try {
    return parseWithTypes(e164)?.getType();
  } catch {
    return undefined;
  }
}
