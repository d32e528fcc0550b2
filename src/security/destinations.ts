/**
 * The destination allow-list of the toll-fraud guard, checked on every originate: prefixes or
 * patterns; by default the default region's numbers only. And the number types it denies even
 * inside the allow-list (premium-rate and other high-cost ranges, told by libphonenumber-js's
 * numbering-plan metadata).
 */
import {
  numberTypeOf,
  type CountryCode,
  type NumberForms,
  type PhoneNumberType,
} from '../numbers/phone.ts';

/**
 * Number types denied by default (`DESTINATION_DENIED_TYPES` unset): the ranges where the caller
 * pays more than an ordinary call, part of it to whoever holds the number, which is what toll
 * fraud dials.
 *
 * - `PREMIUM_RATE`: paid-content lines (+7 809, +44 9, +1 900): the classic fraud target.
 * - `SHARED_COST`: the caller pays part of the receiver's cost at an above-ordinary rate.
 * - `PERSONAL_NUMBER`: follow-me numbers (UK 070) billed like premium-rate and abused as such.
 * - `UAN`: universal access numbers of businesses, in many countries billed above national rates;
 *   a customer is rarely reached on one.
 *
 * Allowed: `TOLL_FREE` (costs the caller nothing), `FIXED_LINE`, `MOBILE`, `FIXED_LINE_OR_MOBILE`,
 * `VOIP` (ordinary rates, real people), `PAGER`, `VOICEMAIL`, and numbers whose type the plan does
 * not say (the allow-list still applies).
 */
export const DEFAULT_DENIED_NUMBER_TYPES: readonly PhoneNumberType[] = [
  'PREMIUM_RATE',
  'SHARED_COST',
  'PERSONAL_NUMBER',
  'UAN',
];

/** How a type is named in refusals, e.g. `a premium-rate number`. */
const TYPE_NAMES: Record<PhoneNumberType, string> = {
  FIXED_LINE: 'a fixed-line number',
  MOBILE: 'a mobile number',
  FIXED_LINE_OR_MOBILE: 'a fixed-line or mobile number',
  TOLL_FREE: 'a toll-free number',
  PREMIUM_RATE: 'a premium-rate number',
  SHARED_COST: 'a shared-cost number',
  VOIP: 'a VoIP number',
  PERSONAL_NUMBER: 'a personal number',
  PAGER: 'a pager number',
  UAN: 'a universal access number',
  VOICEMAIL: 'a voicemail access number',
};

/** The number type a destination is denied for, as {@link DestinationPolicy.deniedType} tells. */
export interface DeniedType {
  /** e.g. `PREMIUM_RATE`. */
  type: PhoneNumberType;
  /** e.g. `a premium-rate number`. */
  description: string;
}

type Rule =
  | { kind: 'any' }
  | { kind: 'country'; country: string }
  | { kind: 'prefix'; digits: string }
  | { kind: 'pattern'; regex: RegExp };

/**
 * Compile an Asterisk-style pattern over E.164 digits (`_79XXXXXXXXX`): `X` any digit, `Z` 1-9,
 * `N` 2-9, `[1-5]` a set, `.` one or more digits, `!` zero or more; a `+` after `_` is ignored.
 * Throws SyntaxError for an unterminated or malformed set.
 */
export function compileDialPattern(pattern: string): RegExp {
  const body = pattern.replace(/^_\+?/, '');
  let source = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === 'X') source += '[0-9]';
    else if (c === 'Z') source += '[1-9]';
    else if (c === 'N') source += '[2-9]';
    else if (c === '.') source += '[0-9]+';
    else if (c === '!') source += '[0-9]*';
    else if (c === '[') {
      const end = body.indexOf(']', i);
      if (end < 0) throw new SyntaxError(`unterminated [ in ${pattern}`);
      const set = body.slice(i + 1, end);
      if (!/^[0-9-]+$/.test(set)) throw new SyntaxError(`bad set [${set}] in ${pattern}`);
      source += `[${set}]`;
      i = end;
    } else if (/\d/.test(c)) source += c;
    else throw new SyntaxError(`unexpected "${c}" in ${pattern}`);
  }
  try {
    return new RegExp(`^${source}$`);
  } catch {
    throw new SyntaxError(`bad pattern ${pattern} (a set like [9-1] is out of order)`);
  }
}

/**
 * Which customer numbers the engine may dial: click-to-call (and every other engine originate) and
 * the numbers operators dial from their phones (Stasis `outbound`).
 */
export class DestinationPolicy {
  private readonly rules: Rule[];
  /** The entries as configured (or the default), for messages and docs. */
  readonly entries: readonly string[];
  /** The number types refused even inside the allow-list. */
  readonly deniedTypes: ReadonlySet<PhoneNumberType>;

  /**
   * @param entries `DESTINATION_ALLOWLIST` entries: `*`, a country (`RU`), an E.164 prefix
   *   (`+7495` / `7495`) or a pattern (`_79XXXXXXXXX`); undefined or empty: `[defaultRegion]`
   * @param defaultRegion DEFAULT_REGION
   * @param deniedTypes `DESTINATION_DENIED_TYPES`: number types refused even inside the
   *   allow-list; default {@link DEFAULT_DENIED_NUMBER_TYPES}
   * @throws SyntaxError for a malformed pattern
   */
  constructor(
    entries: readonly string[] | undefined,
    defaultRegion: CountryCode,
    deniedTypes: readonly PhoneNumberType[] = DEFAULT_DENIED_NUMBER_TYPES,
  ) {
    this.deniedTypes = new Set(deniedTypes);
    this.entries = entries && entries.length > 0 ? [...entries] : [defaultRegion];
    this.rules = this.entries.map((entry): Rule => {
      if (entry === '*') return { kind: 'any' };
      if (/^[A-Z]{2}$/.test(entry)) return { kind: 'country', country: entry };
      if (entry.startsWith('_')) return { kind: 'pattern', regex: compileDialPattern(entry) };
      return { kind: 'prefix', digits: entry.replace(/^\+/, '') };
    });
  }

  /** Whether the (valid, normalised) number may be dialled. */
  allows(number: Pick<NumberForms, 'digits' | 'country'>): boolean {
    return this.rules.some((rule) => {
      switch (rule.kind) {
        case 'any':
          return true;
        case 'country':
          return number.country === rule.country;
        case 'prefix':
          return number.digits.startsWith(rule.digits);
        case 'pattern':
          return rule.regex.test(number.digits);
      }
    });
  }

  /**
   * The denied type of a number inside the allow-list (its country's numbering plan says it is,
   * e.g., premium-rate), or undefined when its type is not denied or not known.
   */
  deniedType(number: Pick<NumberForms, 'e164'>): DeniedType | undefined {
    if (this.deniedTypes.size === 0) return undefined;
    const type = numberTypeOf(number.e164);
    if (type === undefined || !this.deniedTypes.has(type)) return undefined;
    return { type, description: TYPE_NAMES[type] };
  }
}
