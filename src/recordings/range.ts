/**
 * HTTP `Range` requests (RFC 9110 §14) for serving recordings to audio players, which seek with
 * single byte ranges (`bytes=0-`, `bytes=1000-1999`, `bytes=-500`), and the conditional requests
 * that let a player reuse the copy it holds (RFC 9110 §13: `If-None-Match`,
 * `If-Modified-Since`). Pure functions.
 */

/** What to answer for a Range header. Byte offsets are inclusive, as in `Content-Range`. */
export type RangeDecision =
  /** No usable range: answer 200 with the whole file. */
  | { kind: 'full' }
  /** Answer 206 with bytes `start`…`end` (inclusive). */
  | { kind: 'partial'; start: number; end: number }
  /** Answer 416 with `Content-Range: bytes * /<size>`. */
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

/**
 * Decide how to answer `header` (the raw `Range` value, or undefined) for a file of `size`
 * bytes:
 *
 * - absent, not a `bytes=` range, syntactically invalid, or several ranges → `full` (RFC 9110
 *   lets a server ignore a Range it does not support; players only send one range);
 * - `bytes=a-b` → `a`…`min(b, size-1)`; `bytes=a-` → `a`…`size-1`; `bytes=-n` → the last `n`
 *   bytes (all of them when `n ≥ size`);
 * - a first byte at or past the end, or a suffix of 0 bytes, or any range of an empty file →
 *   `unsatisfiable`.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!match) return { kind: 'full' };
  const specs = match[1]!.split(',').map((s) => s.trim());
  if (specs.length !== 1) return { kind: 'full' };
  const spec = SPEC.exec(specs[0]!);
  if (!spec) return { kind: 'full' };
  const [, first, last] = spec as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (!Number.isSafeInteger(suffix)) return { kind: 'full' };
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start)) return { kind: 'full' };
  let end = size - 1;
  if (last !== '') {
    const requested = Number(last);
    if (!Number.isSafeInteger(requested) || requested < start) return { kind: 'full' };
    end = Math.min(requested, size - 1);
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** The `Content-Range` value of a 206 (`bytes 0-99/48044`) or of a 416 (`bytes * /48044`). */
export function contentRange(decision: RangeDecision, size: number): string | undefined {
  if (decision.kind === 'partial') return `bytes ${decision.start}-${decision.end}/${size}`;
  if (decision.kind === 'unsatisfiable') return `bytes */${size}`;
  return undefined;
}

/** The validators of the file being served: its `ETag` (quoted, e.g. `"3c2c-1a2b"`) and mtime. */
export interface Validators {
  /** A strong entity tag, quoted. */
  etag: string;
  /** Last modification, as sent in `Last-Modified` (whole seconds count). */
  lastModified: Date;
}

/** Entity tags of an `If-None-Match` list, without their `W/` prefix; undefined for `*`. */
function entityTags(header: string): string[] | undefined {
  if (header.trim() === '*') return undefined;
  return [...header.matchAll(/(?:W\/)?("[^"]*")/g)].map((match) => match[1]!);
}

/**
 * Whether a GET or HEAD of a file that exists is answered 304 Not Modified (RFC 9110 §13.2.2,
 * steps 3-4):
 *
 * - `If-None-Match` present: 304 when it is `*` or lists the file's entity tag, compared weakly
 *   (§8.8.3.2: `W/"x"` matches `"x"`); otherwise the full answer, and `If-Modified-Since` is
 *   ignored;
 * - else `If-Modified-Since` a valid HTTP date not in the future: 304 when the file was not
 *   modified after it (to the second, as `Last-Modified` says).
 *
 * A request `Cache-Control: no-cache` does not change this: it speaks to caches, and the origin
 * still evaluates the preconditions (§13.2.1).
 */
export function notModified(
  headers: { ifNoneMatch?: string; ifModifiedSince?: string },
  file: Validators,
  nowMs: number = Date.now(),
): boolean {
  if (headers.ifNoneMatch !== undefined) {
    const tags = entityTags(headers.ifNoneMatch);
    if (tags === undefined) return true;
    const own = file.etag.replace(/^W\//, '');
    return tags.includes(own);
  }
  if (headers.ifModifiedSince === undefined) return false;
  const sinceMs = Date.parse(headers.ifModifiedSince);
  if (Number.isNaN(sinceMs) || sinceMs > nowMs) return false;
  const modifiedMs = Math.floor(file.lastModified.getTime() / 1000) * 1000;
  return modifiedMs <= sinceMs;
}
