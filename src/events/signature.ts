/**
 * Webhook signatures. Every webhook carries
 *
 * ```
 * X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 * ```
 *
 * The timestamp is signed together with the body, so a receiver can refuse replays older than a
 * tolerance (default 300 s). During a secret rotation the sender signs with every active secret
 * and the header carries several `v1=` values; a receiver accepts the request when any of them
 * matches any secret it knows. Receiver guide: docs/webhooks.md.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** One secret, or several during a rotation (each produces its own `v1=`). */
export type WebhookSecret = string | readonly string[];

/** Default accepted clock difference between sender and receiver, in seconds. */
export const DEFAULT_SIGNATURE_TOLERANCE_SEC = 300;

const V1_PATTERN = /^[0-9a-f]{64}$/i;

/** The exact string that is signed: `"<t>.<raw body>"`. */
export function signedPayload(timestampSec: number, body: string | Buffer): Buffer {
  const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`${timestampSec}.`, 'utf8'), raw]);
}

function hmacHex(secret: string, timestampSec: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(signedPayload(timestampSec, body)).digest('hex');
}

function secretList(secret: WebhookSecret): string[] {
  return (typeof secret === 'string' ? [secret] : [...secret]).filter((s) => s.length > 0);
}

/**
 * The `X-Signature` header value for `body` sent at `nowSec`.
 *
 * @param secret WEBHOOK_SECRET, or several secrets during a rotation (one `v1=` each, in order)
 * @param body the exact raw request body (UTF-8)
 * @param nowSec unix time in seconds (fractions are dropped); default now
 * @returns `t=<nowSec>,v1=<64 hex digits>[,v1=…]`
 * @throws Error when no non-empty secret is given (an unsigned webhook must never go out)
 */
export function signWebhook(
  secret: WebhookSecret,
  body: string,
  nowSec: number = Date.now() / 1000,
): string {
  const secrets = secretList(secret);
  if (secrets.length === 0) throw new Error('webhook secret is empty');
  const t = Math.floor(nowSec);
  return [`t=${t}`, ...secrets.map((s) => `v1=${hmacHex(s, t, body)}`)].join(',');
}

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyOptions {
  /** Largest accepted |now - t|, in seconds. Default 300. */
  toleranceSec?: number;
  /** Receiver's unix time in seconds; default now. */
  nowSec?: number;
}

/**
 * Check an `X-Signature` header against the raw body. True when the header is well formed, its
 * `t` is within `toleranceSec` of `nowSec`, and any `v1` equals HMAC-SHA256(secret, "<t>.<body>")
 * for any of the given secrets. Comparison is constant-time. Never throws: a malformed header or
 * an empty secret gives false.
 *
 * @param secret the shared secret, or several (old and new) during a rotation
 * @param header the `X-Signature` value (undefined/empty → false)
 * @param body the raw body exactly as received (do not re-serialise parsed JSON)
 */
export function verifyWebhookSignature(
  secret: WebhookSecret,
  header: string | undefined,
  body: string | Buffer,
  options: VerifyOptions = {},
): boolean {
  const toleranceSec = options.toleranceSec ?? DEFAULT_SIGNATURE_TOLERANCE_SEC;
  const nowSec = options.nowSec ?? Date.now() / 1000;
  if (!header) return false;
  let t: number | undefined;
  const given: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return false;
      t = Number(value);
    } else if (key === 'v1' && V1_PATTERN.test(value)) {
      given.push(Buffer.from(value, 'hex'));
    }
  }
  if (t === undefined || given.length === 0) return false;
  if (!(Math.abs(nowSec - t) <= toleranceSec)) return false;
  let ok = false;
  for (const s of secretList(secret)) {
    const expected = createHmac('sha256', s).update(signedPayload(t, body)).digest();
    for (const candidate of given) {
      // Every pair is compared (no early exit) so timing does not reveal which one matched.
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) ok = true;
    }
  }
  return ok;
}
