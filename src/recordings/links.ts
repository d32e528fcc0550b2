/**
 * Signed, expiring recording links: a CRM's audio player can fetch `GET /v1/calls/{id}/recording`
 * (or a call script's recording, `GET /v1/calls/{id}/recordings/{name}`) without an API key when
 * the URL carries `?expires=<unix seconds>&sig=<hex HMAC-SHA256>`.
 *
 * The signed message is `recording:<callId>:<expires>` for the call recording and
 * `recording:<callId>/<name>:<expires>` for a script recording (UTF-8; call ids never hold a
 * `/`), keyed with RECORDING_LINK_SECRET; `sig` is the 64-character lower-case hex digest. Verification recomputes it and compares in
 * constant time. Reference: docs/recordings.md "Links".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A freshly signed link. */
export interface SignedLink {
  /** Absolute URL, e.g. `https://engine.example.com/v1/calls/<id>/recording?expires=…&sig=…`. */
  url: string;
  /** When the link stops working, unix seconds. */
  expiresAtSec: number;
}

/** Outcome of {@link RecordingLinks.verify}. */
export type LinkVerdict = 'valid' | 'expired' | 'invalid';

/** Options of {@link RecordingLinks}. */
export interface RecordingLinksOptions {
  /** HMAC key (RECORDING_LINK_SECRET). Never logged. At least 16 characters. */
  secret: string;
  /** How long a link is valid after it was signed, in seconds (RECORDING_LINK_TTL_SEC). */
  ttlSec: number;
  /**
   * Base URL the CRM reaches the engine at (PUBLIC_URL), e.g. `https://engine.example.com`; may
   * be set later with {@link RecordingLinks.setBaseUrl} (once the HTTP port is known).
   */
  baseUrl?: string;
  /** Clock, epoch milliseconds (tests). */
  now?: () => number;
}

const SIG_PATTERN = /^[0-9a-f]{64}$/;
const EXPIRES_PATTERN = /^\d{1,12}$/;

/** Signs and verifies recording links. */
export class RecordingLinks {
  private readonly secret: Buffer;
  private readonly ttlSec: number;
  private readonly now: () => number;
  private base: string;

  /** @throws RangeError when the secret is shorter than 16 characters or the TTL is not ≥ 1 s */
  constructor(options: RecordingLinksOptions) {
    if (options.secret.length < 16)
      throw new RangeError('the recording link secret must be at least 16 characters');
    if (!Number.isInteger(options.ttlSec) || options.ttlSec < 1)
      throw new RangeError('the recording link TTL must be a whole number of seconds ≥ 1');
    this.secret = Buffer.from(options.secret, 'utf8');
    this.ttlSec = options.ttlSec;
    this.now = options.now ?? Date.now;
    this.base = trimBase(options.baseUrl ?? '');
  }

  /** Set the base URL links start with (no trailing `/`), e.g. the HTTP address once listening. */
  setBaseUrl(baseUrl: string): void {
    this.base = trimBase(baseUrl);
  }

  /** The base URL links start with ('' until set). */
  get baseUrl(): string {
    return this.base;
  }

  /**
   * Path of a call's recording (URL-encoded id), or with `name` of the call script recording
   * `name` (`/v1/calls/{id}/recordings/{name}`).
   */
  static path(callId: string, name?: string): string {
    const call = `/v1/calls/${encodeURIComponent(callId)}`;
    return name === undefined
      ? `${call}/recording`
      : `${call}/recordings/${encodeURIComponent(name)}`;
  }

  /**
   * A link to the recording of `callId` (with `name`: to that call script recording of the
   * call), valid for the configured TTL from now.
   */
  sign(callId: string, name?: string): SignedLink {
    const expiresAtSec = Math.floor(this.now() / 1000) + this.ttlSec;
    const sig = this.digest(subject(callId, name), String(expiresAtSec)).toString('hex');
    return {
      url: `${this.base}${RecordingLinks.path(callId, name)}?expires=${expiresAtSec}&sig=${sig}`,
      expiresAtSec,
    };
  }

  /**
   * Check the `expires` and `sig` query values of a link to `callId`. `invalid`: missing or
   * malformed values, or a signature that does not match (an altered id, expiry or signature);
   * `expired`: a genuine link past its expiry. The signature is checked first, so `expired` is
   * only ever said of links this engine signed. `name`: a link to that call script recording (a
   * link to the call recording, or to another name, is `invalid` for it).
   */
  verify(callId: string, expires: unknown, sig: unknown, name?: string): LinkVerdict {
    if (typeof expires !== 'string' || typeof sig !== 'string') return 'invalid';
    if (!EXPIRES_PATTERN.test(expires) || !SIG_PATTERN.test(sig)) return 'invalid';
    const expected = this.digest(subject(callId, name), expires);
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return 'invalid';
    return Number(expires) * 1000 <= this.now() ? 'expired' : 'valid';
  }

  private digest(subjectText: string, expires: string): Buffer {
    return createHmac('sha256', this.secret)
      .update(`recording:${subjectText}:${expires}`, 'utf8')
      .digest();
  }
}

/** What a link names: `<callId>`, or `<callId>/<name>` for a call script recording. */
function subject(callId: string, name: string | undefined): string {
  return name === undefined ? callId : `${callId}/${name}`;
}

function trimBase(url: string): string {
  return url.replace(/\/+$/, '');
}
