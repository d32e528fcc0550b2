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
 */
import type { IncomingMessage, Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../logging/logger.ts';
import { exemptFromConnectionLimit } from '../http/server.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { ApiKeyRing } from '../security/api-keys.ts';
import { canonicalIp } from '../security/ip.ts';
import { isOperatorToken, type OperatorTokens } from '../security/operator-tokens.ts';
import { feedCursor, feedPosition } from '../store/events.ts';
import {
  CommitWaitTimeoutError,
  type StreamHub,
  type StreamItem,
  type StreamSubscriber,
} from './hub.ts';
import { PingWheel } from './ping-wheel.ts';

/** Path of the stream. */
export const STREAM_PATH = '/v1/stream';

/** Close codes of the stream. */
export const STREAM_CLOSE = {
  /** The engine stops (reconnect to another instance or later). */
  goingAway: 1001,
  /** The engine could not read its stored events (reconnect with `?after=`). */
  internalError: 1011,
  /**
   * An operator token authenticated (first message) while the operators' places are all taken
   * (the rest are kept for admin streams, STREAM_ADMIN_RESERVE), or the store did not commit
   * within STREAM_COMMIT_WAIT_MS before the replay (an outage): reconnect later, with a back-off.
   * The WebSocket registry's "Try Again Later".
   */
  tryAgainLater: 1013,
  /** A message that is not JSON, or of an unknown type. */
  badMessage: 4000,
  /** The operator token expired (renew before it does, or reconnect with a new token). */
  tokenExpired: 4001,
  /** No credentials within the time allowed after opening. */
  authTimeout: 4002,
  /** The token or API key is not valid (or a renewal is for another extension). */
  forbidden: 4003,
  /** The client did not read fast enough: its send buffer went over STREAM_MAX_BUFFERED_BYTES. */
  slowConsumer: 4008,
} as const;

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
  /** Time to authenticate with a first message, ms. Default 5000. */
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

/** Default of {@link StreamServerOptions.authTimeoutMs}. */
export const DEFAULT_STREAM_AUTH_TIMEOUT_MS = 5000;

/** Most events kept for a socket while its replay runs; past it the socket is slow (4008). */
const MAX_PENDING = 10_000;

/** Largest message a client may send, bytes. */
const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

/** `Retry-After` of a 503 `stream_full`, seconds. */
export const STREAM_FULL_RETRY_AFTER_SEC = 5;

/** Least time between two warnings that upgrades are refused at the cap, ms. */
const FULL_WARNING_INTERVAL_MS = 60_000;

/** `code` of an upgrade the stream refused (the JSON answer's `code`). */
export type StreamRefusalCode =
  | 'not_found'
  | 'shutting_down'
  | 'ip_not_allowed'
  | 'origin_not_allowed'
  | 'invalid_cursor'
  | 'stream_full';

interface StreamMetrics {
  connections: ReturnType<typeof gauge>;
  operatorConnections: ReturnType<typeof gauge>;
  messages: ReturnType<typeof counter>;
  closes: ReturnType<typeof counter<'code'>>;
  refusals: ReturnType<typeof counter<'code'>>;
}

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
  private closed = false;
  /** Upgraded sockets whose TCP connection is not closed yet (what `maxSockets` caps). */
  private sockets = 0;
  /** Of {@link sockets}, those known to be operators' (what {@link operatorPlaces} caps). */
  private operatorSockets = 0;
  /** Places operator sockets may hold: `maxSockets` less the admin reserve. */
  private readonly operatorPlaces: number;
  /** The HTTP server attached (its connection limit does not count stream sockets). */
  private server: Server | undefined;
  /**
   * Sockets turned away at the cap since the last warning (`refused`: 503 `stream_full` at the
   * upgrade; `closed`: operators closed with 1013 at their first message), and when that warning
   * was.
   */
  private turnedAway = { refused: 0, closed: 0 };
  private lastFullWarningMs = -Infinity;

  constructor(private readonly options: StreamServerOptions) {
    const adminReserve = options.adminReserve ?? 0;
    if (!Number.isInteger(adminReserve) || adminReserve < 0 || adminReserve >= options.maxSockets)
      throw new RangeError(
        `adminReserve (${adminReserve}) must be an integer from 0 to maxSockets - 1 (${options.maxSockets - 1})`,
      );
    this.operatorPlaces = options.maxSockets - adminReserve;
    this.metrics = {
      connections: gauge(options.registry, {
        name: 'aricrm_stream_connections',
        help: 'Live stream sockets open (GET /v1/stream), authenticated or not, until their TCP connection is closed.',
      }),
      operatorConnections: gauge(options.registry, {
        name: 'aricrm_stream_operator_connections',
        help: 'Of aricrm_stream_connections, the sockets of operator tokens; at most STREAM_MAX_SOCKETS - STREAM_ADMIN_RESERVE (the rest is kept for API key streams).',
      }),
      messages: counter(options.registry, {
        name: 'aricrm_stream_messages_total',
        help: 'Event messages sent on live stream sockets (replayed and live).',
      }),
      closes: counter(options.registry, {
        name: 'aricrm_stream_closes_total',
        help: 'Live stream sockets the engine closed, by close code (4001 token expired, 4003 refused, 4008 slow client, 1013 operator past the places not kept for admin streams, …; see docs/stream.md).',
        labelNames: ['code'] as const,
      }),
      refusals: counter(options.registry, {
        name: 'aricrm_stream_refusals_total',
        help: 'Live stream upgrades refused before the WebSocket opened, by code: stream_full (503: STREAM_MAX_SOCKETS open, or an operator token past STREAM_MAX_SOCKETS - STREAM_ADMIN_RESERVE), shutting_down (503), origin_not_allowed, ip_not_allowed (403), invalid_cursor (400), not_found (404).',
        labelNames: ['code'] as const,
      }),
    };
    gauge(options.registry, {
      name: 'aricrm_stream_max_sockets',
      help: 'Live stream sockets allowed open at once (STREAM_MAX_SOCKETS); more are refused with 503 stream_full.',
    }).set(options.maxSockets);
    gauge(options.registry, {
      name: 'aricrm_stream_admin_reserve',
      help: 'Live stream places kept for API key (admin) streams (STREAM_ADMIN_RESERVE): operator sockets are refused past STREAM_MAX_SOCKETS minus it.',
    }).set(adminReserve);
    this.pinger = new PingWheel(options.pingIntervalMs);
  }

  /** Sockets open (upgraded, TCP connection not closed yet). */
  get size(): number {
    return this.sockets;
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
    const ip = this.clientIp(req);
    if (this.options.allowsIp && !this.options.allowsIp(ip)) {
      this.options.logger.warn('live stream refused: address not allowed', {
        ip: canonicalIp(ip) ?? ip,
      });
      this.refuse(socket, 403, 'ip_not_allowed', 'this client address is not allowed');
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin, req.headers.host)) {
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
    const header = /^Bearer +([^\s]+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    const query = url.searchParams.get('token') ?? undefined;
    // An API key never travels in a URL (proxies log URLs): in the query only operator tokens.
    const credential =
      query !== undefined ? { text: query, fromUrl: true } : header ? { text: header } : undefined;
    const operator = credential !== undefined && isOperatorToken(credential.text);
    if (this.sockets >= this.options.maxSockets || (operator && !this.operatorPlaceFree())) {
      const message =
        this.sockets >= this.options.maxSockets
          ? `the live stream has its ${this.options.maxSockets} sockets open (STREAM_MAX_SOCKETS): retry later`
          : `the live stream has its ${this.operatorPlaces} places for operators taken (STREAM_MAX_SOCKETS less STREAM_ADMIN_RESERVE): retry later`;
      this.warnFull('refused');
      this.refuse(socket, 503, 'stream_full', message, {
        'Retry-After': String(STREAM_FULL_RETRY_AFTER_SEC),
      });
      return;
    }
    // The places are taken until the TCP connection is gone (a socket closing still holds them).
    this.sockets += 1;
    this.metrics.connections.set(this.sockets);
    let operatorPlace = false;
    const takeOperatorPlace = (): boolean => {
      if (operatorPlace) return true;
      if (!this.operatorPlaceFree()) {
        this.warnFull('closed');
        return false;
      }
      operatorPlace = true;
      this.operatorSockets += 1;
      this.metrics.operatorConnections.set(this.operatorSockets);
      return true;
    };
    if (operator) takeOperatorPlace();
    socket.once('close', () => {
      this.sockets -= 1;
      this.metrics.connections.set(this.sockets);
      if (!operatorPlace) return;
      this.operatorSockets -= 1;
      this.metrics.operatorConnections.set(this.operatorSockets);
    });
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
    refuse(socket, status, code, message, headers);
  }

  /** True while operator sockets hold fewer than their places (the cap less the admin reserve). */
  private operatorPlaceFree(): boolean {
    return this.operatorSockets < this.operatorPlaces;
  }

  /**
   * Log that sockets are turned away at the cap (`refused` at the upgrade, or an operator
   * `closed` at its first message), at most once a minute, with how many of each.
   */
  private warnFull(how: 'refused' | 'closed'): void {
    this.turnedAway[how] += 1;
    const now = Date.now();
    if (now - this.lastFullWarningMs < FULL_WARNING_INTERVAL_MS) return;
    this.options.logger.warn(
      'live stream full: upgrades refused with 503 stream_full, operators past their places closed with 1013',
      {
        maxSockets: this.options.maxSockets,
        adminReserve: this.options.maxSockets - this.operatorPlaces,
        sockets: this.sockets,
        operatorSockets: this.operatorSockets,
        refused: this.turnedAway.refused,
        closed: this.turnedAway.closed,
      },
    );
    this.turnedAway = { refused: 0, closed: 0 };
    this.lastFullWarningMs = now;
  }

  private forget(connection: StreamConnection): void {
    this.connections.delete(connection);
    this.pinger.delete(connection);
  }

  private clientIp(req: IncomingMessage): string | undefined {
    if (this.options.trustProxy) {
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
   * An `Origin` is allowed when STREAM_ALLOWED_ORIGINS has it (or `*`), when it is PUBLIC_URL's,
   * or when it names the host the request came to (a page the engine served itself).
   */
  private originAllowed(origin: string, host: string | undefined): boolean {
    const allowed = this.options.allowedOrigins;
    if (allowed.includes('*') || allowed.includes(origin)) return true;
    if (this.options.publicUrl && new URL(this.options.publicUrl).origin === origin) return true;
    try {
      return host !== undefined && new URL(origin).host === host;
    } catch {
      return false;
    }
  }
}

/** Answer a refused upgrade with the API's JSON error model and close the socket. */
function refuse(
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

/** One socket: authentication, replay, live events, renewals, pings, the send buffer cap. */
class StreamConnection implements StreamSubscriber {
  extension: string | undefined;
  private authenticated = false;
  private expiresAtMs: number | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  /** Live events that arrived before the replay finished. */
  private pending: StreamItem[] | undefined = [];
  /** Last position sent (live events at or before it were replayed already). */
  private sentUpTo = 0;
  /** Positions of snapshot events sent (they are not contiguous). */
  private snapshotSent: Set<number> | undefined;
  private alive = true;
  private closing = false;
  private subscribed = false;
  /** Aborted when the socket goes: ends its wait for the store's commit. */
  private readonly leaving = new AbortController();

  constructor(
    private readonly ws: WebSocket,
    private readonly options: StreamServerOptions,
    private readonly metrics: StreamMetrics,
    private readonly after: number | undefined,
    /**
     * Take a place of the operators' for this socket (true), or false when they are all taken;
     * true again when it holds one already (taken at the upgrade).
     */
    private readonly takeOperatorPlace: () => boolean,
    private readonly onGone: () => void,
  ) {
    ws.on('pong', () => (this.alive = true));
    ws.on('message', (data: RawData, isBinary: boolean) => this.message(data, isBinary));
    ws.on('close', () => this.gone());
    ws.on('error', () => this.gone());
  }

  start(credential: { text: string; fromUrl?: boolean } | undefined): void {
    if (credential !== undefined) {
      if (credential.fromUrl && !isOperatorToken(credential.text)) {
        this.close(STREAM_CLOSE.forbidden, 'only operator tokens may be given in the URL');
        return;
      }
      void this.authenticate(credential.text);
      return;
    }
    this.authTimer = setTimeout(
      () => this.close(STREAM_CLOSE.authTimeout, 'no credentials received'),
      this.options.authTimeoutMs ?? DEFAULT_STREAM_AUTH_TIMEOUT_MS,
    );
  }

  /** Ping it; close it when it did not answer the previous ping. */
  ping(): void {
    if (!this.alive) {
      this.metrics.closes.inc({ code: 'dead' });
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  deliver(item: StreamItem): void {
    if (this.pending) {
      this.pending.push(item);
      if (this.pending.length > MAX_PENDING)
        this.close(STREAM_CLOSE.slowConsumer, 'too many events queued');
      return;
    }
    if (item.position <= this.sentUpTo) return;
    this.sendEvent(item);
    this.checkBuffer();
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.metrics.closes.inc({ code: String(code) });
    this.ws.close(code, reason);
    // A client that does not read does not answer the close either.
    setTimeout(() => this.ws.terminate(), 5000).unref();
    this.gone();
  }

  private gone(): void {
    clearTimeout(this.expiry);
    clearTimeout(this.authTimer);
    if (this.subscribed) this.options.hub.unsubscribe(this);
    this.subscribed = false;
    this.pending = undefined;
    this.leaving.abort();
    this.onGone();
  }

  private get open(): boolean {
    return !this.closing && this.ws.readyState === this.ws.OPEN;
  }

  private sendEvent(item: StreamItem): void {
    this.sentUpTo = Math.max(this.sentUpTo, item.position);
    this.ws.send(item.text);
    this.metrics.messages.inc();
  }

  private sendControl(message: Record<string, unknown>): void {
    if (this.open) this.ws.send(JSON.stringify(message));
  }

  private checkBuffer(): void {
    if (this.ws.bufferedAmount > this.options.maxBufferedBytes)
      this.close(STREAM_CLOSE.slowConsumer, 'the client does not read fast enough');
  }

  private message(data: RawData, isBinary: boolean): void {
    if (this.closing) return;
    let message: { type?: unknown; token?: unknown } | undefined;
    try {
      message = isBinary
        ? undefined
        : (JSON.parse(rawText(data)) as { type?: unknown; token?: unknown });
    } catch {
      message = undefined;
    }
    const token = typeof message?.token === 'string' ? message.token : undefined;
    if (message?.type === 'auth' && token !== undefined && !this.authenticated) {
      clearTimeout(this.authTimer);
      void this.authenticate(token);
    } else if (message?.type === 'renew' && token !== undefined && this.authenticated) {
      this.renew(token);
    } else if (message?.type === 'ping') {
      this.sendControl({ type: 'pong' });
    } else {
      this.close(
        STREAM_CLOSE.badMessage,
        'expected {"type":"auth"|"renew","token":…} or {"type":"ping"}',
      );
    }
  }

  /** Check the credential (operator token or API key); then subscribe and catch up. */
  private async authenticate(credential: string): Promise<void> {
    this.authenticated = true;
    if (isOperatorToken(credential)) {
      const verdict = this.options.tokens.verify(credential);
      if (!verdict.ok) {
        this.close(
          verdict.reason === 'expired' ? STREAM_CLOSE.tokenExpired : STREAM_CLOSE.forbidden,
          verdict.reason === 'expired' ? 'token expired' : 'invalid token',
        );
        return;
      }
      if (!this.takeOperatorPlace()) {
        this.close(
          STREAM_CLOSE.tryAgainLater,
          'the places for operators are taken (the rest are kept for admin streams): retry later',
        );
        return;
      }
      this.extension = verdict.principal.extension;
      this.scheduleExpiry(verdict.principal.expiresAtMs);
    } else {
      const keyName = this.options.apiKeys.verify(credential);
      if (keyName === undefined) {
        this.close(STREAM_CLOSE.forbidden, 'invalid token or API key');
        return;
      }
    }
    this.sendControl({
      type: 'stream.welcome',
      ...(this.extension === undefined ? { admin: true } : { extension: this.extension }),
      ...(this.expiresAtMs === undefined
        ? {}
        : { expiresAt: new Date(this.expiresAtMs).toISOString() }),
    });
    try {
      await this.catchUp();
    } catch (err) {
      // Closed while waiting for the store: nothing to tell anyone (a failed read is still
      // logged below, socket or not).
      if (this.leaving.signal.aborted && err === this.leaving.signal.reason) return;
      if (err instanceof CommitWaitTimeoutError) {
        this.close(
          STREAM_CLOSE.tryAgainLater,
          'the store is not committing events (an outage): retry later',
        );
        return;
      }
      this.options.logger.error('live stream could not replay stored events', { err });
      this.close(STREAM_CLOSE.internalError, 'could not read stored events');
    }
  }

  /**
   * Subscribe (live events are kept meanwhile), send the replay or the snapshot, then what was
   * kept that is newer, then go live.
   */
  private async catchUp(): Promise<void> {
    const { hub } = this.options;
    if (!this.open) return;
    const livePosition = await hub.subscribe(this);
    this.subscribed = true;
    if (!this.open) {
      this.gone();
      return;
    }
    let synced: number;
    if (this.after !== undefined) {
      synced = await hub.replay(
        this.after,
        this.extension,
        (item) => {
          if (!this.open) return false;
          this.sendEvent(item);
          return true;
        },
        () => this.drained(),
        this.leaving.signal,
      );
    } else {
      const items = await hub.snapshot(
        this.options.liveCalls(this.extension),
        this.extension,
        this.leaving.signal,
      );
      this.snapshotSent = new Set();
      for (const item of items) {
        if (!this.open) return;
        this.snapshotSent.add(item.position);
        this.ws.send(item.text);
        this.metrics.messages.inc();
      }
      synced = livePosition;
      this.sentUpTo = livePosition;
    }
    if (!this.open) return;
    this.sentUpTo = Math.max(this.sentUpTo, synced);
    const kept = this.pending ?? [];
    this.pending = undefined;
    const newer = kept.filter(
      (item) => item.position > this.sentUpTo && !this.snapshotSent?.has(item.position),
    );
    this.snapshotSent = undefined;
    this.sendControl({ type: 'stream.synced', cursor: feedCursor(this.sentUpTo) });
    for (const item of newer) this.sendEvent(item);
    this.checkBuffer();
  }

  /** Resolves once what was sent so far left the engine (false: the socket closed). */
  private drained(): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    // A ping's callback runs once it (and everything sent before it) was written out.
    return new Promise((resolve) => {
      this.ws.ping(undefined, undefined, (err) => resolve(!err && this.open));
    });
  }

  private scheduleExpiry(expiresAtMs: number): void {
    clearTimeout(this.expiry);
    this.expiresAtMs = expiresAtMs;
    this.expiry = setTimeout(
      () => this.close(STREAM_CLOSE.tokenExpired, 'token expired'),
      Math.max(0, Math.min(expiresAtMs - Date.now(), 2 ** 31 - 1)),
    );
  }

  /** `{"type": "renew", "token"}`: a newer token of the same extension extends the socket. */
  private renew(token: string): void {
    if (this.extension === undefined) {
      this.sendControl({
        type: 'error',
        code: 'not_renewable',
        message: 'an API key stream does not expire',
      });
      return;
    }
    const verdict = this.options.tokens.verify(token);
    if (!verdict.ok) {
      this.close(
        verdict.reason === 'expired' ? STREAM_CLOSE.tokenExpired : STREAM_CLOSE.forbidden,
        verdict.reason === 'expired' ? 'renewal token expired' : 'invalid renewal token',
      );
      return;
    }
    if (verdict.principal.extension !== this.extension) {
      this.close(STREAM_CLOSE.forbidden, 'the renewal token is for another extension');
      return;
    }
    this.scheduleExpiry(verdict.principal.expiresAtMs);
    this.sendControl({
      type: 'stream.renewed',
      expiresAt: new Date(verdict.principal.expiresAtMs).toISOString(),
    });
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as Buffer).toString('utf8');
}
