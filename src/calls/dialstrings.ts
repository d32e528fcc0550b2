/**
 * Dial strings: which Asterisk endpoint reaches an operator extension or a customer number.
 * Pure functions over the configuration (OPERATOR_ENDPOINT, TRUNKS, DEFAULT_REGION).
 */
import { tryNumberForms, type CountryCode, type NumberForms } from '../numbers/phone.ts';

/**
 * Placeholders of a trunk template (each trunk's template decides the form of the number sent to
 * it), shown for `+74957654321`:
 * - `{number}`: the number without a leading `+` (`74957654321`); a number dialled by an operator
 *   without `+` is used as dialled (the meaning `{number}` always had);
 * - `{e164}`: E.164 with `+` (`+74957654321`);
 * - `{national}`: the national significant number (`4957654321`);
 * - `{national_prefixed}`: as dialled inside the country, with its national prefix (`84957654321`).
 */
export const TRUNK_PLACEHOLDERS = ['number', 'e164', 'national', 'national_prefixed'] as const;

/** One of {@link TRUNK_PLACEHOLDERS}. */
export type TrunkPlaceholder = (typeof TRUNK_PLACEHOLDERS)[number];

/** One TRUNKS entry: numbers starting with `prefix` (or `*` for any) are dialled with `template`. */
export interface TrunkRoute {
  prefix: string;
  /** e.g. `PJSIP/{number}@client-trunk`, with the placeholders of {@link TRUNK_PLACEHOLDERS}. */
  template: string;
  /**
   * Region (ISO 3166-1 alpha-2, from DEFAULT_REGION) in which numbers not written in E.164 are
   * read for `{e164}`, `{national}` and `{national_prefixed}` (outbound calls dialled by operators,
   * e.g. `84957654321`). Without it only `+` numbers have those forms.
   */
  region?: CountryCode;
}

/**
 * Thrown when the chosen trunk's template needs a form of the number (`{e164}`, `{national}`,
 * `{national_prefixed}`) that cannot be derived because the number is not a valid phone number.
 */
export class UnroutableNumberError extends Error {
  override readonly name = 'UnroutableNumberError';
  constructor(
    readonly number: string,
    readonly template: string,
  ) {
    super(`${number} is not a valid phone number; the trunk template ${template} needs its forms`);
  }
}

/** Thrown when no trunk matches a number (no `*` entry and no prefix match). */
export class NoTrunkError extends Error {
  override readonly name = 'NoTrunkError';
  constructor(readonly number: string) {
    super(`no trunk is configured for ${number}`);
  }
}

/**
 * The endpoint that dials `number`: the entry with the longest matching prefix wins, `*` is the
 * default. A leading `+` of the number is kept for matching `+`-prefixes and stripped otherwise.
 * The template's placeholders ({@link TRUNK_PLACEHOLDERS}) are replaced by the forms of the
 * number, e.g. `+74957654321` with `PJSIP/{national_prefixed}@ru` → `PJSIP/84957654321@ru`.
 *
 * @param number E.164 (`+74957654321`, API calls) or as an operator dialled it (`84957654321`)
 * @param trunks the TRUNKS map
 * @throws NoTrunkError when no entry matches; UnroutableNumberError when the template needs a
 *   form of an invalid number
 */
export function customerEndpoint(number: string, trunks: readonly TrunkRoute[]): string {
  let best: TrunkRoute | undefined;
  for (const trunk of trunks) {
    if (trunk.prefix === '*') {
      if (!best) best = trunk;
      continue;
    }
    const candidate = trunk.prefix.startsWith('+') ? number : number.replace(/^\+/, '');
    if (
      candidate.startsWith(trunk.prefix) &&
      (!best || best.prefix === '*' || trunk.prefix.length > best.prefix.length)
    ) {
      best = trunk;
    }
  }
  if (!best) throw new NoTrunkError(number);
  return renderTrunkTemplate(best, number);
}

/** Fill a trunk template's placeholders for `number` (see {@link customerEndpoint}). */
export function renderTrunkTemplate(trunk: TrunkRoute, number: string): string {
  let forms: NumberForms | undefined;
  const form = (name: Exclude<TrunkPlaceholder, 'number'>): string => {
    forms ??= tryNumberForms(number, trunk.region);
    if (!forms) throw new UnroutableNumberError(number, trunk.template);
    return name === 'e164'
      ? forms.e164
      : name === 'national'
        ? forms.national
        : forms.nationalPrefixed;
  };
  return trunk.template.replace(
    /\{(number|e164|national|national_prefixed)\}/g,
    (_match, name: TrunkPlaceholder) =>
      name === 'number' ? number.replace(/^\+/, '') : form(name),
  );
}

/** The endpoint of an operator's phone, e.g. `PJSIP/{extension}` → `PJSIP/101`. */
export function operatorEndpoint(extension: string, template: string): string {
  return template.replaceAll('{extension}', extension);
}

/**
 * The extension behind a channel that came from an operator's phone: its caller ID number when
 * that is all digits, else the resource of its name (`PJSIP/101-00000037` → `101`).
 */
export function extensionOfChannel(channel: {
  name: string;
  caller: { number: string };
}): string | undefined {
  if (/^\d{2,10}$/.test(channel.caller.number)) return channel.caller.number;
  const match = /^[A-Za-z]+\/([^-@/]+)-[0-9a-f]+$/.exec(channel.name);
  return match?.[1];
}
