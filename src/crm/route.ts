/**
 * Routes of inbound calls: where a call goes once the engine knows
 * who is calling. A route is what the CRM answered (see `route-answer.ts`) or the configured
 * fallback (`FALLBACK_ROUTE`, parsed by {@link parseRouteSpec}). Pure data, no telephony.
 */
import type { Route } from './types.ts';

/** Extensions are 2-10 digits, as in the rest of the configuration (SIM_EXTENSIONS). */
export const EXTENSION_PATTERN = /^\d{2,10}$/;
/** Bounds of a ring timeout in seconds (RING_TIMEOUT_SEC has the same bounds). */
export const MIN_RING_TIMEOUT_SEC = 1;
export const MAX_RING_TIMEOUT_SEC = 600;

const SPEC_SYNTAX =
  'ringall:EXT,EXT,… | sequential:EXT,EXT,… | hangup, optionally followed by :timeout=SEC';

/**
 * Parse a route spec, the syntax of the `FALLBACK_ROUTE` environment variable:
 *
 * - `ringall:101,102,103` — ring all extensions at once;
 * - `sequential:101,102` — ring them one after another;
 * - `hangup` — hang the caller up;
 * - a dial spec may end with `:timeout=SEC` (1-600), e.g. `sequential:101,102:timeout=15`;
 *   without it `defaultRingTimeoutSec` (RING_TIMEOUT_SEC) is used.
 *
 * Whitespace around parts is ignored; duplicate extensions are dropped (first one kept).
 *
 * @throws Error with the offending spec and the expected syntax when the spec is malformed,
 *   an extension is not 2-10 digits, or a timeout is out of bounds.
 */
export function parseRouteSpec(spec: string, defaultRingTimeoutSec: number): Route {
  const fail = (why: string): never => {
    throw new Error(`invalid route spec "${spec}": ${why}; expected ${SPEC_SYNTAX}`);
  };
  if (!isRingTimeout(defaultRingTimeoutSec)) {
    fail(
      `default ring timeout ${defaultRingTimeoutSec} is not an integer between ${MIN_RING_TIMEOUT_SEC} and ${MAX_RING_TIMEOUT_SEC}`,
    );
  }
  const parts = spec.split(':').map((p) => p.trim());
  const kind = parts[0] ?? '';
  if (kind === 'hangup') {
    if (parts.length > 1) fail('hangup takes no parameters');
    return { action: { type: 'hangup' } };
  }
  if (kind !== 'ringall' && kind !== 'sequential') {
    return fail(kind === '' ? 'empty spec' : `unknown action "${kind}"`);
  }
  if (parts.length < 2 || parts.length > 3) fail('wrong number of ":"-separated parts');
  const extensions: string[] = [];
  for (const raw of (parts[1] ?? '').split(',')) {
    const ext = raw.trim();
    if (ext === '') continue;
    if (!EXTENSION_PATTERN.test(ext)) fail(`extension "${ext}" is not 2-10 digits`);
    if (!extensions.includes(ext)) extensions.push(ext);
  }
  if (extensions.length === 0) fail('no extensions');
  let ringTimeoutSec = defaultRingTimeoutSec;
  if (parts.length === 3) {
    const match = /^timeout=(\d+)$/.exec(parts[2] ?? '');
    const value = match ? Number(match[1]) : NaN;
    if (!isRingTimeout(value)) {
      fail(
        `"${parts[2]}" is not timeout=SEC with SEC between ${MIN_RING_TIMEOUT_SEC} and ${MAX_RING_TIMEOUT_SEC}`,
      );
    }
    ringTimeoutSec = value;
  }
  return { action: { type: 'dial', strategy: kind, extensions, ringTimeoutSec } };
}

function isRingTimeout(value: number): boolean {
  return Number.isInteger(value) && value >= MIN_RING_TIMEOUT_SEC && value <= MAX_RING_TIMEOUT_SEC;
}
