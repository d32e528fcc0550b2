/**
 * One socket of the live stream, from its upgrade to its close (src/stream/server.ts opens it):
 * its credentials (given at the upgrade, or as a first message `{"type": "auth", "token": …}`
 * within `authTimeoutMs`; an operator token or an API key), `{"type": "stream.welcome", …}`, the
 * events in order (src/stream/feed.ts), the token's expiry and its renewals
 * (`{"type": "renew", "token": …}`), the client's pings and the server's, and the close with a
 * code of {@link STREAM_CLOSE}. Reference: docs/stream.md.
 */
import type { RawData, WebSocket } from 'ws';
import { isOperatorToken } from '../security/operator-tokens.ts';
import { STREAM_CLOSE } from './close-codes.ts';
import { SocketFeed } from './feed.ts';
import type { UpgradeCredential } from './handshake.ts';
import { CommitWaitTimeoutError } from './hub.ts';
import type { StreamMetrics } from './metrics.ts';
import type { StreamServerOptions } from './server.ts';

/** Default of {@link StreamServerOptions.authTimeoutMs}. */
export const DEFAULT_STREAM_AUTH_TIMEOUT_MS = 5000;

/** One socket: authentication, replay, live events, renewals, pings, the send buffer cap. */
export class StreamConnection {
  /** The operator extension, once an operator token authenticated it; undefined: admin. */
  private extension: string | undefined;
  private authenticated = false;
  private expiresAtMs: number | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  /** The events of the socket, once authenticated. */
  private feed: SocketFeed | undefined;
  private alive = true;
  private closing = false;
  /** Aborted when the socket goes: ends its wait for the store's commit. */
  private readonly leaving = new AbortController();

  constructor(
    private readonly ws: WebSocket,
    private readonly options: StreamServerOptions,
    private readonly metrics: Pick<StreamMetrics, 'messages' | 'closes'>,
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

  /**
   * Authenticate with the upgrade's `credential` (only an operator token in the URL), or wait
   * `authTimeoutMs` for a first message bringing it (else close with 4002).
   */
  start(credential: UpgradeCredential | undefined): void {
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

  /** Close with `code` ({@link STREAM_CLOSE}); terminated if the client does not answer in 5 s. */
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
    this.feed?.stop();
    this.leaving.abort();
    this.onGone();
  }

  private get open(): boolean {
    return !this.closing && this.ws.readyState === this.ws.OPEN;
  }

  private sendControl(message: Record<string, unknown>): void {
    if (this.open) this.ws.send(JSON.stringify(message));
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
    const { options } = this;
    this.feed = new SocketFeed(this.extension, {
      ws: this.ws,
      hub: options.hub,
      metrics: this.metrics,
      maxBufferedBytes: options.maxBufferedBytes,
      liveCalls: (extension) => options.liveCalls(extension),
      after: this.after,
      leaving: this.leaving.signal,
      isOpen: () => this.open,
      sendControl: (message) => this.sendControl(message),
      close: (code, reason) => this.close(code, reason),
      gone: () => this.gone(),
    });
    try {
      await this.feed.catchUp();
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
