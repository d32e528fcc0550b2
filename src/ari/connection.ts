/**
 * The gateway's connection and lifetime: `start()`, the connect loop (load the REST API
 * description once, `api-docs.ts`; open the event WebSocket), the event filter set at every
 * connect, the pings, the reconnect after a drop, `stop()` and `seal()`, and the connection
 * state reported to `onConnectionChange` listeners.
 *
 * - Connect: `ws(s)://host/ari/events?app=<app>&api_key=<user>:<pass>&subscribeAll=false`. Once
 *   the WebSocket is open the application exists, and its event filter is set (never throws: a
 *   failure leaves the engine unfiltered) before `connected` is reported, so that what follows
 *   (listing calls after a reconnect, the first call) runs filtered.
 * - A failed attempt is retried forever with capped exponential backoff plus jitter (warned on
 *   the first failure and every 10th); a connection that drops right after opening backs off
 *   like a failing one.
 * - Pings every `pingIntervalMs`: a peer that showed no sign of life (pong or message) for a
 *   whole period is dropped, and reconnected.
 * - Every message goes to the {@link EventDispatcher} (`events.ts`); what arrived before a drop
 *   or a stop is handled before anyone hears of it.
 */
import WebSocket from 'ws';
import type { Logger } from '../logging/logger.ts';
import { loadApi, type ApiDocsSource } from './api-docs.ts';
import { CancellableSleeps, computeBackoffDelay } from './backoff.ts';
import type { CommandConnection } from './commands.ts';
import { AriConnectionError } from './errors.ts';
import type { EventDispatcher } from './events.ts';
import { errorMessage, sealedError, withTimeout } from './helpers.ts';
import type { AriMetrics } from './metrics.ts';
import type { AriRestClient, AriRestOperation } from './rest.ts';
import type { AriApplication, AriConnectionState, AriEventFilter } from './types.ts';

/** What {@link AriConnection} needs. Durations in milliseconds. */
export interface AriConnectionOptions {
  /** The Stasis application. */
  app: string;
  log: Logger;
  metrics: AriMetrics;
  /** Where and how the REST API description is loaded (`api-docs.ts`). */
  apiDocs: ApiDocsSource;
  /** The event WebSocket's URL (credentials in its query: never logged). */
  wsUrl: string;
  /** The REST executor, whose connections stop() closes. */
  rest: AriRestClient;
  /** Where the WebSocket's messages go. */
  events: EventDispatcher;
  /** Reconnect backoff: first delay, cap, jitter (a fraction of the delay). */
  reconnect: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  /** The WebSocket handshake and the event filter each give up after this long. */
  apiLoadTimeoutMs: number;
  /** WebSocket ping period. */
  pingIntervalMs: number;
  /** The event filter set at every connect; `null`: none. */
  eventFilter: AriEventFilter | null;
  /** Set the application's event filter (`applications.setEventFilter` of the commands). */
  setEventFilter: (filter: AriEventFilter) => Promise<AriApplication>;
}

/** The connection side of the gateway; the commands run over it ({@link CommandConnection}). */
export class AriConnection implements CommandConnection {
  private readonly app: string;
  private readonly log: Logger;
  private readonly metrics: AriMetrics;
  private readonly apiDocs: ApiDocsSource;
  private readonly host: string;
  private readonly wsUrl: string;
  private readonly rest: AriRestClient;
  private readonly events: EventDispatcher;
  private readonly reconnectOpts: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  private readonly apiLoadTimeoutMs: number;
  private readonly pingIntervalMs: number;

  private readonly connectionListeners = new Set<{
    listener: (state: AriConnectionState) => void;
  }>();

  /** The ARI operations by `<resource>.<nickname>`, once the API docs are loaded. */
  private operations: Map<string, AriRestOperation> | undefined;
  private ws: WebSocket | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private state: AriConnectionState = 'disconnected';
  private running = false;
  /** Closed for good ({@link seal}): no command reaches Asterisk any more. */
  private sealed = false;
  private everConnected = false;
  /** When the current socket opened (ms) and how many short-lived connections in a row dropped. */
  private openedAt = 0;
  private dropStreak = 0;
  private loopActive = false;
  private startPromise: Promise<void> | undefined;
  private settleStart: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private readonly sleeps = new CancellableSleeps();

  constructor(private readonly options: AriConnectionOptions) {
    this.app = options.app;
    this.log = options.log;
    this.metrics = options.metrics;
    this.apiDocs = options.apiDocs;
    this.host = options.apiDocs.host;
    this.wsUrl = options.wsUrl;
    this.rest = options.rest;
    this.events = options.events;
    this.reconnectOpts = options.reconnect;
    this.apiLoadTimeoutMs = options.apiLoadTimeoutMs;
    this.pingIntervalMs = options.pingIntervalMs;
  }

  /**
   * `AriGateway.start`: starts the connect loop; resolves at the first connect, rejects if
   * stop() comes first or after seal(). A second call answers the same promise.
   */
  start(): Promise<void> {
    if (this.sealed) return Promise.reject(sealedError('start'));
    if (this.startPromise) return this.startPromise;
    this.running = true;
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.settleStart = { resolve, reject };
    });
    // A rejected start() that nobody awaits must not become an unhandled rejection.
    this.startPromise.catch(() => undefined);
    this.setState('connecting');
    void this.connectLoop();
    return this.startPromise;
  }

  /**
   * `AriGateway.stop`: handles the events already received, cancels every wait (reconnect
   * backoff, command retries), closes the WebSocket (1 s at most) and the REST connections, and
   * drops every listener. REST commands still work afterwards.
   */
  async stop(): Promise<void> {
    // Events already received are handled, as they were before the gateway sliced them.
    this.events.drainInbox(Infinity);
    const wasActive = this.running || this.startPromise !== undefined;
    this.running = false;
    this.sleeps.wakeAll();
    this.stopPing();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) await this.closeSocket(ws);
    this.rest.closeConnections();
    this.metrics.connected.set(0);
    if (this.settleStart) {
      this.settleStart.reject(
        new AriConnectionError('start', 'the gateway was stopped before it connected'),
      );
      this.settleStart = undefined;
    }
    this.startPromise = undefined;
    this.everConnected = false;
    this.dropStreak = 0;
    this.setState('stopped');
    this.events.clear();
    this.connectionListeners.clear();
    if (wasActive) this.log.info('ARI gateway stopped', { app: this.app });
  }

  /** `AriGateway.seal`: stop(), then no command nor start() reaches Asterisk any more. */
  async seal(): Promise<void> {
    if (this.sealed) return;
    await this.stop();
    this.sealed = true;
  }

  /** `AriGateway.isConnected`: connected and the WebSocket open. */
  isConnected(): boolean {
    return this.state === 'connected' && this.ws?.readyState === WebSocket.OPEN;
  }

  /** `AriGateway.onConnectionChange`; the listeners are dropped at stop(). */
  onConnectionChange(listener: (state: AriConnectionState) => void): () => void {
    const entry = { listener };
    this.connectionListeners.add(entry);
    return () => void this.connectionListeners.delete(entry);
  }

  /** Between start() and stop() ({@link CommandConnection.isRunning}). */
  isRunning(): boolean {
    return this.running;
  }

  /** After seal() ({@link CommandConnection.isSealed}). */
  isSealed(): boolean {
    return this.sealed;
  }

  /** The operations loaded at the first connect ({@link CommandConnection.loadedOperations}). */
  loadedOperations(): ReadonlyMap<string, AriRestOperation> | undefined {
    return this.operations;
  }

  private setState(state: AriConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const { listener } of [...this.connectionListeners]) {
      try {
        listener(state);
      } catch (err) {
        this.log.error('ARI connection listener threw', { err, state });
      }
    }
  }

  /** Load the API (once) and open the WebSocket, retrying with backoff until it works or stop(). */
  private async connectLoop(): Promise<void> {
    if (this.loopActive) return;
    this.loopActive = true;
    try {
      let attempt = 0;
      while (this.running) {
        try {
          if (!this.operations) this.operations = await loadApi(this.apiDocs);
          if (!this.running) return;
          await this.openSocket();
          return;
        } catch (err) {
          if (!this.running) return;
          const delayMs = computeBackoffDelay(attempt, this.reconnectOpts);
          const fields = {
            host: this.host,
            app: this.app,
            attempt: attempt + 1,
            delayMs,
            error: errorMessage(err),
          };
          // warn on the first failure and every 10th, so a long outage stays visible but quiet
          this.log[attempt % 10 === 0 ? 'warn' : 'debug'](
            'ARI connection failed; retrying',
            fields,
          );
          attempt += 1;
          await this.sleep(delayMs);
        }
      }
    } finally {
      this.loopActive = false;
    }
  }

  /** Open the event WebSocket; resolves once open, rejects if it fails or closes before. */
  private openSocket(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.wsUrl, {
        handshakeTimeout: this.apiLoadTimeoutMs,
        perMessageDeflate: false,
      });
      this.ws = ws;
      let opened = false;
      const liveness = { alive: true };
      ws.on('open', () => {
        if (!this.running || this.ws !== ws) {
          ws.terminate();
          reject(new AriConnectionError('connect', 'stopped'));
          return;
        }
        const connected = (): void => {
          if (!this.running || this.ws !== ws || ws.readyState !== WebSocket.OPEN) {
            // Closed or stopped while the filter was set (the close handler rejected already).
            reject(new AriConnectionError('connect', 'WebSocket closed while connecting'));
            return;
          }
          opened = true;
          const reconnected = this.everConnected;
          this.everConnected = true;
          this.openedAt = Date.now();
          this.metrics.connected.set(1);
          if (reconnected) this.metrics.reconnects.inc();
          this.startPing(ws, liveness);
          this.log.info(reconnected ? 'ARI reconnected' : 'ARI connected', {
            host: this.host,
            app: this.app,
          });
          this.setState('connected');
          if (this.settleStart) {
            this.settleStart.resolve();
            this.settleStart = undefined;
          }
          resolve();
        };
        // The application exists now: its event filter is set before the connection is
        // reported, so that what follows (listing calls after a reconnect, the first call) runs
        // filtered.
        const filter = this.eventFilterToSet();
        if (filter) void this.applyEventFilter(filter).then(connected);
        else connected();
      });
      ws.on('message', (data: WebSocket.RawData) => {
        liveness.alive = true;
        this.events.receive(data);
      });
      ws.on('pong', () => {
        liveness.alive = true;
      });
      ws.on('error', (err: Error) => {
        if (!opened) reject(new AriConnectionError('connect', err.message, { cause: err }));
        else this.log.warn('ARI WebSocket error', { host: this.host, error: err.message });
      });
      ws.on('close', (code: number, reason: Buffer) => {
        if (!opened) {
          reject(new AriConnectionError('connect', `WebSocket closed before opening (${code})`));
          return;
        }
        this.handleDrop(ws, code, reason.toString('utf8'));
      });
    });
  }

  /**
   * The event filter to set at connect: the configured one, unless it is `null` or this Asterisk
   * has no `applications.filter` operation (older than 13.26: logged, every event is received).
   */
  private eventFilterToSet(): AriEventFilter | undefined {
    const filter = this.options.eventFilter;
    if (filter === null) return undefined;
    if (!this.operations?.has('applications.filter')) {
      this.log.info('ARI has no application eventFilter; every event type is received', {
        app: this.app,
      });
      return undefined;
    }
    return filter;
  }

  /**
   * Set the configured event filter once the WebSocket is open (the application exists from
   * then on; Asterisk forgets it, filter included, when it has no WebSocket and nothing in it, so
   * it is set again at every connect). Never throws: a failure or no answer within
   * `apiLoadTimeoutMs` is logged and the engine runs unfiltered (an Asterisk older than 13.26 has
   * no such operation).
   */
  private async applyEventFilter(filter: AriEventFilter): Promise<void> {
    try {
      const app = await withTimeout(
        this.options.setEventFilter(filter),
        this.apiLoadTimeoutMs,
        () => new AriConnectionError('applications.setEventFilter', 'no answer'),
      );
      this.log.debug('ARI event filter set', {
        app: this.app,
        allowed: app.events_allowed?.map((e) => e.type),
        disallowed: app.events_disallowed?.map((e) => e.type),
      });
    } catch (err) {
      this.log.warn('ARI event filter not set; every event type is received', {
        app: this.app,
        error: errorMessage(err),
      });
    }
  }

  private handleDrop(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return; // replaced or stopped
    // What arrived before the drop is handled before anyone hears of it.
    this.events.drainInbox(Infinity);
    this.ws = undefined;
    this.stopPing();
    this.metrics.connected.set(0);
    if (!this.running) return;
    // A connection that keeps dropping right after opening backs off like a failing one.
    const lived = Date.now() - this.openedAt;
    this.dropStreak =
      lived < Math.max(5_000, this.reconnectOpts.maxDelayMs) ? this.dropStreak + 1 : 0;
    const delayMs = computeBackoffDelay(Math.max(0, this.dropStreak - 1), this.reconnectOpts);
    this.log.warn('ARI WebSocket closed; reconnecting', {
      host: this.host,
      app: this.app,
      code,
      reason,
      delayMs,
    });
    this.setState('disconnected');
    void this.reconnectAfterDrop(delayMs);
  }

  private async reconnectAfterDrop(delayMs: number): Promise<void> {
    await this.sleep(delayMs);
    if (!this.running) return;
    this.setState('connecting');
    await this.connectLoop();
  }

  /** Ping every period; a socket that showed no sign of life (pong or message) for a period is dropped. */
  private startPing(ws: WebSocket, liveness: { alive: boolean }): void {
    this.stopPing();
    liveness.alive = true;
    this.pingTimer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!liveness.alive) {
        this.log.warn('ARI WebSocket peer did not answer ping; dropping the connection', {
          host: this.host,
        });
        ws.terminate();
        return;
      }
      liveness.alive = false;
      try {
        ws.ping();
      } catch (err) {
        this.log.debug('ARI WebSocket ping failed', { error: errorMessage(err) });
      }
    }, this.pingIntervalMs);
    this.pingTimer.unref();
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private closeSocket(ws: WebSocket): Promise<void> {
    return new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1_000);
      timer.unref();
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'gateway stopped');
    });
  }

  /** Wait `ms`; stop() cuts every wait short (resolves at once when not running). */
  sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return this.sleeps.sleep(ms);
  }
}
