/**
 * `GET /v1/stream`: the live stream to browsers and other clients over a WebSocket (the `ws`
 * package, on the engine's HTTP server). Reference: docs/stream.md.
 *
 * Opening: the HTTP upgrade is refused with a JSON `{code, message}` answer for an origin not
 * allowed (403 `origin_not_allowed`), a client address outside HTTP_ALLOWED_CIDRS (403
 * `ip_not_allowed`), a bad `after` (400 `invalid_cursor`), while the engine shuts down (503
 * `shutting_down`) and while `maxSockets` sockets are open (503 `stream_full` with `Retry-After`).
 * An upgraded socket does not count against HTTP_MAX_CONNECTIONS (the stream has its own cap, so
 * operators' consoles cannot take the connections of the API). Credentials are checked after the
 * upgrade, so a browser sees why in the close code: `?token=` (operator tokens only) or
 * `Authorization: Bearer` (operator token or API key), or a first message
 * `{"type": "auth", "token": "…"}` within `authTimeoutMs`.
 *
 * Places kept for admin streams (`adminReserve`, STREAM_ADMIN_RESERVE): operator sockets hold at
 * most `maxSockets - adminReserve` places, so consoles cannot lock out the API key streams (the
 * CRM's server, wallboards). A socket is an operator's from the moment its credential is known to
 * be an operator token: at the upgrade when it is in the URL or the `Authorization` header (past
 * the operators' places the upgrade is refused with 503 `stream_full`), else at its first message
 * (past them the socket is closed with 1013, try again later). Until then a socket holds a place
 * of the whole cap only, which is all an admin socket ever holds.
 *
 * Then: `{"type": "stream.welcome", …}`, the replay (`?after=`) or the snapshot of calls in
 * progress, `{"type": "stream.synced", "cursor": …}`, then live events, each `{cursor, …envelope}`.
 *
 * On SQLite the replay or snapshot first waits for the store to commit the events already sent
 * live (src/stream/hub.ts). During a store outage a socket is welcomed and then waits: a socket
 * closed meanwhile stops waiting at once (nothing of it is kept), and one still waiting after
 * STREAM_COMMIT_WAIT_MS is closed with 1013 (try again later).
 *
 * Close codes ({@link STREAM_CLOSE}): 4000 bad message, 4001 token expired, 4002 no credentials in
 * time, 4003 credentials refused, 4008 the client does not read fast enough, 1001 the engine
 * stops, 1011 the engine could not read its stored events, 1013 an operator past the places not
 * kept for admin streams, or the store not committing (an outage).
 *
 * This file holds the server: the upgrade's checks in order, and the sockets open. Its parts:
 * `handshake.ts` (client address, origin, credential of the upgrade; the refusal answer),
 * `places.ts` (the socket cap and the places kept for admin streams), `connection.ts` (one
 * socket's session: authentication, renewals, pings, close), `feed.ts` (its events in order:
 * replay or snapshot, then live; the send buffer cap), `close-codes.ts`, `metrics.ts`.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logging/logger.ts';
import { exemptFromConnectionLimit } from '../http/server.ts';
import type { ApiKeyRing } from '../security/api-keys.ts';
import { canonicalIp } from '../security/ip.ts';
import { isOperatorToken, type OperatorTokens } from '../security/operator-tokens.ts';
import { feedPosition } from '../store/events.ts';
import { STREAM_CLOSE } from './close-codes.ts';
import { StreamConnection } from './connection.ts';
import {
  clientIp,
  originAllowed,
  refuseUpgrade,
  type StreamRefusalCode,
  upgradeCredential,
} from './handshake.ts';
import type { StreamHub } from './hub.ts';
import { createStreamMetrics, type StreamMetrics } from './metrics.ts';
import { PingWheel } from './ping-wheel.ts';
import { StreamPlaces } from './places.ts';

/** Path of the stream. */
export const STREAM_PATH = '/v1/stream';

/** Options of {@link StreamServer}. */
export interface StreamServerOptions {
  hub: StreamHub;
  tokens: OperatorTokens;
  apiKeys: ApiKeyRing;
  /** STREAM_ALLOWED_ORIGINS (`*` allows any). */
  allowedOrigins: readonly string[];
  /** PUBLIC_URL: its origin is always allowed (the console the engine serves). */
  publicUrl?: string;
  /** Ping interval, ms (STREAM_PING_INTERVAL_MS). */
  pingIntervalMs: number;
  /** Send buffer cap per socket, bytes (STREAM_MAX_BUFFERED_BYTES). */
  maxBufferedBytes: number;
  /**
   * Sockets open at once (STREAM_MAX_SOCKETS), authenticated or not, from the upgrade until the
   * TCP connection is closed; past it the upgrade is refused with 503 `stream_full`.
   */
  maxSockets: number;
  /**
   * Places of `maxSockets` operator sockets may not take, kept for admin (API key) streams
   * (STREAM_ADMIN_RESERVE); 0 (the default) keeps none. Must be below `maxSockets` (else the
   * constructor throws a RangeError).
   */
  adminReserve?: number;
  /** Time to authenticate with a first message, ms. Default 5000 (`DEFAULT_STREAM_AUTH_TIMEOUT_MS`). */
  authTimeoutMs?: number;
  /**
   * Ids of the calls in progress (ringing or talking) that involve `extension`, or of every call
   * in progress when undefined: the snapshot of a socket opened without `?after=`.
   */
  liveCalls: (extension: string | undefined) => string[];
  /** HTTP_ALLOWED_CIDRS, when set: the upgrade is refused to other addresses. */
  allowsIp?: (ip: string | undefined) => boolean;
  /** True once the engine is shutting down. */
  isShuttingDown?: () => boolean;
  /** Trust `X-Forwarded-For` from one proxy (TRUST_PROXY), for the address check. */
  trustProxy?: boolean;
  logger: Logger;
  registry: Registry;
}

/** Largest message a client may send, bytes. */
const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

/** `Retry-After` of a 503 `stream_full`, seconds. */
export const STREAM_FULL_RETRY_AFTER_SEC = 5;

/** The WebSocket side of the live stream. */
export class StreamServer {
  private readonly wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
  });
  private readonly connections = new Set<StreamConnection>();
  /** Pings every socket once per STREAM_PING_INTERVAL_MS, a few at a time. */
  private readonly pinger: PingWheel<StreamConnection>;
  private readonly metrics: StreamMetrics;
  /** The sockets open against `maxSockets`, and the operators' places. */
  private readonly places: StreamPlaces;
  private closed = false;
  /** The HTTP server attached (its connection limit does not count stream sockets). */
  private server: Server | undefined;

  constructor(private readonly options: StreamServerOptions) {
    const adminReserve = options.adminReserve ?? 0;
    if (!Number.isInteger(adminReserve) || adminReserve < 0 || adminReserve >= options.maxSockets)
      throw new RangeError(
        `adminReserve (${adminReserve}) must be an integer from 0 to maxSockets - 1 (${options.maxSockets - 1})`,
      );
    this.metrics = createStreamMetrics(options.registry, options.maxSockets, adminReserve);
    this.places = new StreamPlaces(options.maxSockets, adminReserve, this.metrics, options.logger);
    this.pinger = new PingWheel(options.pingIntervalMs);
  }

  /** Sockets open (upgraded, TCP connection not closed yet). */
  get size(): number {
    return this.places.size;
  }

  /**
   * Take over WebSocket upgrades of `server` (`GET /v1/stream`; others are answered 404). Its
   * connection limit stops counting a stream socket once upgraded.
   */
  attach(server: Server): void {
    this.server = server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
  }

  /** Close every socket with 1001 and refuse new ones. */
  close(): void {
    this.closed = true;
    this.pinger.stop();
    for (const connection of [...this.connections])
      connection.close(STREAM_CLOSE.goingAway, 'the engine is stopping');
    this.options.hub.close();
  }

  /**
   * An upgrade request: refused (404, 503 `shutting_down`, 403 `ip_not_allowed` /
   * `origin_not_allowed`, 400 `invalid_cursor`, 503 `stream_full`), else a socket holding its
   * place until its TCP connection is closed, whose session starts with the upgrade's credential.
   */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://stream.invalid');
    if (url.pathname !== STREAM_PATH && url.pathname !== `${STREAM_PATH}/`) {
      this.refuse(
        socket,
        404,
        'not_found',
        'no WebSocket endpoint here (the stream is /v1/stream)',
      );
      return;
    }
    if (this.closed || this.options.isShuttingDown?.()) {
      this.refuse(socket, 503, 'shutting_down', 'the engine is shutting down');
      return;
    }
    const ip = clientIp(req, this.options.trustProxy);
    if (this.options.allowsIp && !this.options.allowsIp(ip)) {
      this.options.logger.warn('live stream refused: address not allowed', {
        ip: canonicalIp(ip) ?? ip,
      });
      this.refuse(socket, 403, 'ip_not_allowed', 'this client address is not allowed');
      return;
    }
    const origin = req.headers.origin;
    if (
      origin !== undefined &&
      !originAllowed(origin, req.headers.host, this.options.allowedOrigins, this.options.publicUrl)
    ) {
      this.options.logger.warn('live stream refused: origin not allowed', { origin });
      this.refuse(
        socket,
        403,
        'origin_not_allowed',
        `pages of ${origin} may not open the stream (STREAM_ALLOWED_ORIGINS)`,
      );
      return;
    }
    let after: number | undefined;
    const afterText = url.searchParams.get('after');
    if (afterText !== null) {
      try {
        after = feedPosition(afterText);
      } catch {
        this.refuse(socket, 400, 'invalid_cursor', 'after: not a cursor of this stream');
        return;
      }
    }
    const credential = upgradeCredential(req, url);
    const operator = credential !== undefined && isOperatorToken(credential.text);
    const full = this.places.refusal(operator);
    if (full !== undefined) {
      this.refuse(socket, 503, 'stream_full', full, {
        'Retry-After': String(STREAM_FULL_RETRY_AFTER_SEC),
      });
      return;
    }
    // The places are taken until the TCP connection is gone (a socket closing still holds them).
    const takeOperatorPlace = this.places.hold(socket, operator);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.server) exemptFromConnectionLimit(this.server, socket);
      const connection = new StreamConnection(
        ws,
        this.options,
        this.metrics,
        after,
        takeOperatorPlace,
        () => this.forget(connection),
      );
      this.connections.add(connection);
      this.pinger.add(connection);
      connection.start(credential);
    });
  }

  /** Answer a refused upgrade (counted by code) with the API's JSON error model. */
  private refuse(
    socket: Duplex,
    status: number,
    code: StreamRefusalCode,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.metrics.refusals.inc({ code });
    refuseUpgrade(socket, status, code, message, headers);
  }

  private forget(connection: StreamConnection): void {
    this.connections.delete(connection);
    this.pinger.delete(connection);
  }
}
