/**
 * The console's live stream: one WebSocket to the engine's `GET /v1/stream`, authenticated with
 * the operator token, that never misses an event. Every message carries its event cursor; the
 * client remembers the last one (the page keeps it in sessionStorage, so a refresh resumes too)
 * and every reconnection asks for what came after it (`?after=<cursor>`): the engine first sends
 * what the console missed, then live events.
 *
 * Reconnection: after a drop, again after 0.5 s, 1 s, 2 s, … up to 10 s (with jitter), and at
 * once when the browser comes back online. The delays start over once a connection has caught up
 * (`stream.synced`); a welcome alone does not count, so a console the engine welcomes but cannot
 * serve (a store outage: it closes with 1013 after a while) keeps spacing its tries. An expired token (close code 4001) does not
 * reconnect until {@link StreamClient.renew} gives a new one; a refused token (4003) stops. Every
 * other close (the engine restarting, 4008 for a client that read too slowly, a network drop)
 * reconnects. The close codes are those of the engine's stream (docs/stream.md).
 *
 * The engine's own messages: `stream.welcome` (credentials accepted: `extension`, `expiresAt`),
 * `stream.synced` (what was missed has been sent; its `cursor` is the position reached),
 * `stream.renewed` (`expiresAt` of the renewed token); they are handed on like events.
 */

/** One message of the stream: an event (with its cursor) or one of the engine's own. */
export interface StreamMessage {
  /** The event's cursor: resume after it with `?after=`. */
  cursor?: string;
  /** `call.ringing`, `call.answered`, `call.ended`, `call.transferred`, `operator.state`, … */
  type: string;
  /** The call the event belongs to (call events). */
  callId?: string;
  /** When it happened, ISO 8601 UTC. */
  occurredAt?: string;
  data?: Record<string, unknown>;
  /** `stream.welcome`: the token's extension. */
  extension?: string;
  /** `stream.welcome`, `stream.renewed`: when the token expires, ISO 8601 UTC. */
  expiresAt?: string;
}

/** Close code of an expired token: renew it (the page asks the CRM for a new one). */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** Close code of a refused token: reconnecting with it cannot help. */
export const CLOSE_FORBIDDEN = 4003;

/** What the connection is doing, for the page's status line. */
export type StreamStatus =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'waiting'; retryInMs: number }
  | { kind: 'offline' }
  | { kind: 'expired' }
  | { kind: 'refused'; code: number; reason: string };

/** What {@link StreamClient} needs. */
export interface StreamOptions {
  /** The stream's URL, e.g. `ws://engine:3000/v1/stream`. */
  url: string;
  /** The operator token in force. */
  token(): string;
  /** The last cursor received (undefined: only live events). */
  cursor(): string | undefined;
  onMessage(message: StreamMessage): void;
  onStatus(status: StreamStatus): void;
}

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/** The live stream, reconnecting until {@link StreamClient.stop}. */
export class StreamClient {
  private socket: WebSocket | undefined;
  private failures = 0;
  private timer: number | undefined;
  private halted = false;

  constructor(private readonly options: StreamOptions) {}

  /** Connect, and follow the browser's online/offline events. */
  start(): void {
    window.addEventListener('online', () => this.reconnectNow());
    window.addEventListener('offline', () => {
      this.drop();
      this.options.onStatus({ kind: 'offline' });
    });
    this.connect();
  }

  /**
   * A new token: sent on the open socket (`{type: "renew", token}`, the connection stays); a
   * socket still connecting authenticates with it ({@link StreamOptions.token}); after an
   * expiry, used to reconnect at once.
   */
  renew(token: string): void {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'renew', token }));
      return;
    }
    if (socket?.readyState === WebSocket.CONNECTING) return;
    this.halted = false;
    this.reconnectNow();
  }

  /** Close the socket and connect again now (the browser is back online, a new token). */
  reconnectNow(): void {
    if (this.halted) return;
    this.drop();
    this.failures = 0;
    this.connect();
  }

  private drop(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, 'reconnecting');
  }

  private connect(): void {
    if (this.halted || this.socket) return;
    this.options.onStatus({ kind: 'connecting' });
    const url = new URL(this.options.url);
    const after = this.options.cursor();
    if (after !== undefined) url.searchParams.set('after', after);
    // The token goes in the first message, not in the URL (proxies log URLs).
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      socket.send(JSON.stringify({ type: 'auth', token: this.options.token() }));
    });
    socket.addEventListener('message', (event: MessageEvent) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof message !== 'object' || message === null || !('type' in message)) return;
      const { type } = message as StreamMessage;
      // A connection that worked: caught up (welcomed alone is not enough: during a store outage
      // the engine welcomes, then closes with 1013 after a while, and the back-off must grow).
      if (type === 'stream.synced') this.failures = 0;
      this.options.onMessage(message as StreamMessage);
      // Caught up: what happened while the console was away has been shown.
      if (type === 'stream.synced') this.options.onStatus({ kind: 'live' });
    });
    socket.addEventListener('close', (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (event.code === CLOSE_TOKEN_EXPIRED) {
        this.halted = true;
        this.options.onStatus({ kind: 'expired' });
        return;
      }
      if (event.code === CLOSE_FORBIDDEN) {
        this.halted = true;
        this.options.onStatus({ kind: 'refused', code: event.code, reason: event.reason });
        return;
      }
      this.retryLater();
    });
  }

  private retryLater(): void {
    if (!navigator.onLine) {
      this.options.onStatus({ kind: 'offline' });
      return; // the `online` event reconnects
    }
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.failures);
    const retryInMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.failures += 1;
    this.options.onStatus({ kind: 'waiting', retryInMs });
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, retryInMs);
  }
}
