/**
 * Lengths of the media the simulator "plays", in simulated milliseconds. Measured in the traces:
 * `sound:hello-world` ≈ 1.40 s, `sound:beep` ≈ 0.42 s (autocall-playback, click-to-call-client-busy).
 * Other sounds last 2 s; `sound:silence/<n>` n seconds; `digits:`/`characters:` 0.5 s per symbol;
 * `number:` 0.4 s per digit plus 0.6 s; `recording:<name>` the stored recording's length;
 * `tone:` plays until stopped. Unknown schemes and missing recordings fail (`state: failed`).
 * `sound:http(s)://…` is fetched and lasts as long as the WAV file (see `playbacks.ts`).
 */

const SOUND_MS: Record<string, number> = {
  'hello-world': 1400,
  beep: 420,
  'demo-congrats': 16000,
  'vm-goodbye': 900,
  'tt-monkeys': 9000,
  'conf-onlyperson': 2400,
  'queue-thankyou': 1800,
  'pls-hold-while-try': 2300,
};

/**
 * The URL of `sound:http://…` / `sound:https://…` media (played from a web server through
 * Asterisk's HTTP media cache), undefined for other media.
 */
export function httpMediaUrl(uri: string): string | undefined {
  const m = /^sound:(https?:\/\/.+)$/i.exec(uri);
  return m ? m[1] : undefined;
}

/** Default length of a sound not in the table. */
export const DEFAULT_SOUND_MS = 2000;

/**
 * Length of one media URI in simulated ms; `Infinity` plays until stopped; `undefined` fails.
 * `recordingMs` gives a stored recording's length (undefined when missing).
 */
export function mediaDurationMs(
  uri: string,
  recordingMs: (name: string) => number | undefined,
): number | undefined {
  const colon = uri.indexOf(':');
  if (colon < 0) return undefined;
  const scheme = uri.slice(0, colon);
  const target = uri.slice(colon + 1);
  switch (scheme) {
    case 'sound': {
      const silence = /^silence\/(\d+)$/.exec(target);
      if (silence) return Number(silence[1]) * 1000;
      return target ? (SOUND_MS[target] ?? DEFAULT_SOUND_MS) : undefined;
    }
    case 'recording':
      return recordingMs(target);
    case 'digits':
    case 'characters':
      return target ? target.length * 500 : undefined;
    case 'number':
      return /^-?\d+$/.test(target) ? 600 + target.replace('-', '').length * 400 : undefined;
    case 'tone':
      return target ? Number.POSITIVE_INFINITY : undefined;
    default:
      return undefined;
  }
}
