/**
 * The destination allow-list of the toll-fraud guard, checked on every originate: prefixes or
 * patterns; by default the default region's numbers only.
 */
import type { CountryCode, NumberForms } from '../numbers/phone.ts';

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

/** Which customer numbers click-to-call may dial. */
export class DestinationPolicy {
  private readonly rules: Rule[];
  /** The entries as configured (or the default), for messages and docs. */
  readonly entries: readonly string[];

  /**
   * @param entries `DESTINATION_ALLOWLIST` entries: `*`, a country (`RU`), an E.164 prefix
   *   (`+7495` / `7495`) or a pattern (`_79XXXXXXXXX`); undefined or empty: `[defaultRegion]`
   * @param defaultRegion DEFAULT_REGION
   * @throws SyntaxError for a malformed pattern
   */
  constructor(entries: readonly string[] | undefined, defaultRegion: CountryCode) {
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
}
