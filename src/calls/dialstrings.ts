/**
 * Dial strings: which Asterisk endpoint reaches an operator extension or a customer number.
 * Pure functions over the configuration (OPERATOR_ENDPOINT, TRUNKS).
 */

/** One TRUNKS entry: numbers starting with `prefix` (or `*` for any) are dialled with `template`. */
export interface TrunkRoute {
  prefix: string;
  /** e.g. `PJSIP/{number}@client-trunk`; `{number}` is replaced by the dialled number. */
  template: string;
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
 * Throws {@link NoTrunkError}.
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
  return best.template.replaceAll('{number}', number);
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
