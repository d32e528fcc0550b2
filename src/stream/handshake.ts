/**
 * The HTTP upgrade of `GET /v1/stream`, before the WebSocket opens (src/stream/server.ts runs the
 * checks in order): where the request comes from (its client address, behind TRUST_PROXY; its
 * `Origin`), the credential it carries (`?token=`, operator tokens only, or
 * `Authorization: Bearer`), and the JSON `{code, message}` answer of an upgrade refused.
 * Reference: docs/stream.md.
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** `code` of an upgrade the stream refused (the JSON answer's `code`). */
export type StreamRefusalCode =
  | 'not_found'
  | 'shutting_down'
  | 'ip_not_allowed'
  | 'origin_not_allowed'
  | 'invalid_cursor'
  | 'stream_full';

/**
 * The credential an upgrade carries: `text` is the token or API key; `fromUrl` when it came in
 * the query (`?token=`), where only operator tokens are accepted.
 */
export interface UpgradeCredential {
  text: string;
  fromUrl?: boolean;
}

/**
 * The credential of the upgrade request: `?token=` first, else `Authorization: Bearer`;
 * undefined when neither (the client may send it as its first message).
 */
export function upgradeCredential(req: IncomingMessage, url: URL): UpgradeCredential | undefined {
  const header = /^Bearer +([^\s]+) *$/i.exec(req.headers.authorization ?? '')?.[1];
  const query = url.searchParams.get('token') ?? undefined;
  // An API key never travels in a URL (proxies log URLs): in the query only operator tokens.
  return query !== undefined
    ? { text: query, fromUrl: true }
    : header
      ? { text: header }
      : undefined;
}

/**
 * The client address of the request: with `trustProxy` (TRUST_PROXY), the last address of
 * `X-Forwarded-For` (the one the proxy added), else the TCP peer's.
 */
export function clientIp(
  req: IncomingMessage,
  trustProxy: boolean | undefined,
): string | undefined {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? ''))
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .at(-1);
    if (last) return last;
  }
  return req.socket.remoteAddress;
}

/**
 * An `Origin` is allowed when STREAM_ALLOWED_ORIGINS (`allowedOrigins`) has it (or `*`), when it
 * is PUBLIC_URL's (`publicUrl`), or when it names the host the request came to (`host`: a page the
 * engine served itself).
 */
export function originAllowed(
  origin: string,
  host: string | undefined,
  allowedOrigins: readonly string[],
  publicUrl: string | undefined,
): boolean {
  if (allowedOrigins.includes('*') || allowedOrigins.includes(origin)) return true;
  if (publicUrl && new URL(publicUrl).origin === origin) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Answer a refused upgrade with the API's JSON error model (`status`, `{code, message}`, extra
 * `headers` such as `Retry-After`) and close the socket; destroyed after a second if the client
 * does not close it.
 */
export function refuseUpgrade(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      'Connection: close\r\n\r\n' +
      body,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}
