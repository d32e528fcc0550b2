/** Configuration of operator tokens and the live stream (the operator console's WebSocket). */
import { z } from 'zod';
import { splitList } from './fields.ts';

/** Comma-separated secrets of at least 32 characters each (several for rotation). */
const secretList = z.string().transform((s, ctx) => {
  const entries = splitList(s);
  if (entries.length === 0 || entries.some((e) => e.length < 32))
    ctx.addIssue({ code: 'custom', message: 'each key must be at least 32 characters' });
  return entries;
});

/** Comma-separated web origins (scheme://host[:port]) or `*`. */
const originList = z.string().transform((s, ctx) => {
  const origins: string[] = [];
  for (const entry of splitList(s)) {
    if (entry === '*') {
      origins.push(entry);
      continue;
    }
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    if (origin === undefined || origin === 'null' || origin !== entry.replace(/\/$/, ''))
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not an origin like https://crm.example.com`,
      });
    else origins.push(origin);
  }
  return origins;
});

/** OPERATOR_TOKEN_*, STREAM_*. */
export const streamFields = {
  OPERATOR_TOKEN_SECRET: secretList
    .optional()
    .describe(
      'HMAC-SHA256 keys of operator tokens (POST /v1/operators/{extension}/tokens, the live stream and the console), comma-separated, each at least 32 characters (openssl rand -hex 32): the first signs new tokens, every one is accepted (rotation: put the new key first, drop the old one once its tokens expired). Unset in development: a random key per run (tokens die on restart); unset in production: operator tokens are refused (503 operator_tokens_not_configured) and the stream takes API keys only. Never logged.',
    ),
  OPERATOR_TOKEN_DEFAULT_TTL_SEC: z.coerce
    .number()
    .int()
    .min(60)
    .max(86_400)
    .default(3600)
    .describe(
      'Lifetime of an operator token when POST /v1/operators/{extension}/tokens gives no ttlSec, in seconds (60-86400; default 1 hour).',
    ),
  STREAM_ALLOWED_ORIGINS: originList
    .default([])
    .describe(
      'Web origins whose pages may open the live stream (GET /v1/stream), comma-separated, e.g. https://crm.example.com,https://engine.example.com; * allows any. A request without an Origin header (not a browser) is allowed; its token or API key still decides. Empty: only pages served by the engine itself (PUBLIC_URL or the Host the request came to).',
    ),
  STREAM_PING_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(300_000)
    .default(30_000)
    .describe(
      'How often the live stream pings each socket, in milliseconds; a socket that did not answer the previous ping is closed (dead connection).',
    ),
  STREAM_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(67_108_864)
    .default(1_048_576)
    .describe(
      'Most bytes the live stream keeps queued for one socket that does not read fast enough; over it the socket is closed with code 4008 (the client reconnects with ?after= and misses nothing).',
    ),
  STREAM_MAX_SOCKETS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1000)
    .describe(
      'Live stream sockets (GET /v1/stream) open at once, authenticated or not; more are refused with 503 stream_full and Retry-After. They have their own cap: they do not count against HTTP_MAX_CONNECTIONS, so consoles left open never take the connections of the API. Size it above the operators times the console tabs each keeps open, plus the admin streams.',
    ),
  STREAM_ADMIN_RESERVE: z.coerce
    .number()
    .int()
    .min(0)
    .max(999_999)
    .optional()
    .describe(
      "Places of STREAM_MAX_SOCKETS kept for admin streams (opened with an API key: the CRM's server, wallboards), so operators' consoles cannot lock them out: operator sockets hold at most STREAM_MAX_SOCKETS minus this many. Past that an operator's upgrade with the token in the URL or header is refused with 503 stream_full, and a socket whose first message brings an operator token is closed with code 1013 (try again later). 0 keeps no places. Unset: a tenth of STREAM_MAX_SOCKETS, at most 10 (10 for the default cap). When set, must be below STREAM_MAX_SOCKETS.",
    ),
  STREAM_POLL_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(50)
    .max(60_000)
    .default(1000)
    .describe(
      'PostgreSQL store: while sockets are connected, the live stream also reads the stored events this often, in milliseconds (events of other engine instances sharing the database); its own events are sent as soon as their commit is done. Unused with SQLite, where events are sent as soon as they are durable.',
    ),
  STREAM_COMMIT_WAIT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(30_000)
    .describe(
      'SQLite store: longest a new live stream socket waits, after stream.welcome, for the store to commit the events already sent live before its replay or the calls in progress are read, in milliseconds. Only a store outage (a full disk, failing writes the journal keeps retrying) makes it wait longer than a moment; past it the socket is closed with code 1013 (try again later) and the console reconnects with a back-off. A socket closed while waiting is let go at once.',
    ),
};
