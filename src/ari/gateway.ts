/**
 * The ARI gateway: the only module that imports ari-client (through `swagger-patch.ts`).
 *
 * - REST: ari-client loads the API (`/ari/api-docs/*.json`) once; every {@link AriGateway} method
 *   then runs the operation named by Asterisk's Swagger nickname, with the parameter names of the
 *   API docs, through the lean executor of `rest.ts` (keep-alive connections, each operation
 *   compiled once: the same requests swagger-client would send, at a fraction of its CPU), and
 *   returns plain JSON. Failures are typed ({@link classifyAriError}); a 409 "Channel not in
 *   Stasis application" (common right after StasisStart, fixtures fact 2) is retried a few times
 *   with a doubling delay, nothing else is; a command without an answer for `commandTimeoutMs`
 *   fails with AriConnectionError.
 * - Events: ari-client's `start()` is never called (it throws on event types missing from its
 *   events.json and gives up reconnecting after ~10 tries). The gateway opens
 *   `ws(s)://host/ari/events?app=<app>&api_key=<user>:<pass>&subscribeAll=false` with `ws`,
 *   pings it, reconnects forever with capped exponential backoff plus jitter, and dispatches the
 *   event types of {@link ARI_EVENT_TYPES}; other types are logged and counted.
 * - Nothing is replayed after a reconnect (fixtures fact 13): the engine lists channels and
 *   bridges itself when `onConnectionChange` reports `connected` again.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { computeBackoffDelay, notInStasisRetryDelay } from './backoff.ts';
import { classifyAriError } from './classify.ts';
import { AriConflictError, AriConnectionError, AriError } from './errors.ts';
import { ChannelListenerRegistry } from './listeners.ts';
import { createAriMetrics, type AriMetrics } from './metrics.ts';
import { AriRestClient, operationsFromSwagger, type AriRestOperation } from './rest.ts';
import { connectAriClient, setInternalErrorSink, setSwaggerLogSink } from './swagger-patch.ts';
import {
  ARI_EVENT_TYPES,
  type AriApplication,
  type AriBridge,
  type AriChannel,
  type AriConnectionState,
  type AriDeviceState,
  type AriEndpoint,
  type AriEvent,
  type AriEventFilter,
  type AriEventListener,
  type AriGateway,
  type AriLiveRecording,
  type AriPlayback,
  type AriStoredRecording,
  type ContinueParams,
  type CreateBridgeParams,
  type CreateChannelParams,
  type DialParams,
  type HangupParams,
  type OriginateParams,
  type PlayParams,
  type RecordParams,
} from './types.ts';

/** Options of {@link createAriGateway}. Durations are in milliseconds unless named otherwise. */
export interface AriGatewayOptions {
  /** Asterisk HTTP base URL, e.g. `http://127.0.0.1:8088` (no `/ari`; a trailing `/ari` is dropped). */
  url: string;
  /** ARI user (ari.conf). */
  username: string;
  /** ARI password (ari.conf). Never logged. */
  password: string;
  /** Stasis application name, e.g. `crm-app`. */
  app: string;
  logger: Logger;
  /** Where the `aricrm_ari_*` metrics are registered. */
  registry: Registry;
  /** Reconnect backoff: first delay 500 ms, doubling, capped at 10 000 ms, 20 % jitter. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; jitter?: number };
  /** "Channel not in Stasis application" retry: 6 tries in all, 25 ms before the 2nd, doubling. */
  notInStasisRetry?: { attempts?: number; delayMs?: number };
  /** How long a channel's listeners outlive its StasisEnd when no ChannelDestroyed comes (2000). */
  channelListenerGraceMs?: number;
  /** Called (after logging and counting) when a listener throws or rejects. */
  onHandlerError?: (err: unknown, event: AriEvent) => void;
  /** A REST command without an answer after this long fails with AriConnectionError (15 000). */
  commandTimeoutMs?: number;
  /** Loading the API docs (one connect attempt) gives up after this long (10 000). */
  apiLoadTimeoutMs?: number;
  /** WebSocket ping period; a peer that answered no ping for a whole period is dropped (10 000). */
  pingIntervalMs?: number;
  /**
   * Longest run of event handling in one go, ms ({@link DEFAULT_EVENT_SLICE_MS}). Events that
   * arrive while it is spent wait, in order, for the next turn of the event loop, so the HTTP
   * API, REST answers and timers are served between slices; 0 handles every event as it
   * arrives.
   */
  eventSliceMs?: number;
  /**
   * The application event filter set at every connect ({@link ENGINE_EVENT_FILTER} by default;
   * `null`: none is set and Asterisk sends every event).
   */
  eventFilter?: AriEventFilter | null;
}

/**
 * The event types the engine never reads, which Asterisk is asked not to send (application
 * `eventFilter`, set at every connect). ChannelVarset alone is more than half of a call's events
 * (36 of 62 for an answered inbound call: BRIDGEPEER, BRIDGEPVTCALLID, RTPAUDIOQOS*, …); the
 * engine reads no channel variable from events (it asks with `GET /channels/{id}/variable` when
 * it needs one). What it does read (Stasis, state, dial, hang-up, bridge, playback, recording,
 * DTMF, device and endpoint events) stays allowed.
 */
export const ENGINE_EVENT_FILTER: AriEventFilter = {
  disallowed: ['ChannelVarset', 'ChannelDialplan', 'ChannelCallerId', 'ChannelConnectedLine'],
};

/**
 * Default {@link AriGatewayOptions.eventSliceMs}. The events of many calls changing at once (a
 * wave of calls ending together) arrive in one WebSocket read; handled in one go they hold the
 * event loop for as long as they take, and no API request, timer or REST answer is served
 * meanwhile (the API benchmark saw the engine's loop stall 10-30 ms at such waves).
 */
export const DEFAULT_EVENT_SLICE_MS = 2;

const ID_PREFIX = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * A client-generated channel id (fixtures fact 15): `<prefix>-<uuid v4>`, e.g.
 * `ch-3f0c…`. Asterisk keeps it in every event, so listeners can be registered before the
 * channel exists. `prefix` must be 1–32 of `[A-Za-z0-9_-]` (default `ch`); throws TypeError.
 */
export function newChannelId(prefix = 'ch'): string {
  if (!ID_PREFIX.test(prefix))
    throw new TypeError(`invalid channel id prefix: ${JSON.stringify(prefix)}`);
  return `${prefix}-${randomUUID()}`;
}

/** A client-generated bridge id, `br-<uuid v4>` (for `POST /bridges/{bridgeId}`). */
export function newBridgeId(): string {
  return `br-${randomUUID()}`;
}

/** A client-generated playback id, `pb-<uuid v4>` (ARI `playbackId`). */
export function newPlaybackId(): string {
  return `pb-${randomUUID()}`;
}

/**
 * Create the ARI gateway (nothing happens until {@link AriGateway.start}). The `url` must be an
 * http(s) URL; throws TypeError otherwise.
 *
 * Lifetime: `start()` connects (and reconnects); `stop()` disconnects the event WebSocket, but
 * REST commands still reach Asterisk, so the call steps under way while the engine stops finish
 * their commands; `seal()` is the point of no return, called at the very end of the engine's
 * stop (after its call steps settled and its call journal closed): from then on every command
 * rejects with {@link AriConnectionError} "the engine has stopped" and nothing more is sent to
 * Asterisk, whatever timer or late answer of the stopped engine asks for it.
 */
export function createAriGateway(options: AriGatewayOptions): AriGateway {
  return new Gateway(options);
}

const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set<string>(ARI_EVENT_TYPES);
/** Takes a handled message's place in the inbox, so its bytes can be collected. */
const EMPTY_MESSAGE: WebSocket.RawData = Buffer.alloc(0);
/** `{origin, prefix}` of the ARI base URL: prefix is the path before `/ari`, without trailing `/`. */
function normaliseBaseUrl(url: string): { protocol: string; host: string; prefix: string } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`ARI url must be http(s): got ${parsed.protocol}`);
  }
  const prefix = parsed.pathname.replace(/\/+$/, '').replace(/\/ari$/, '');
  return { protocol: parsed.protocol, host: parsed.host, prefix };
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

function eventChannelId(event: AriEvent): string | undefined {
  const e = event as unknown as Record<string, unknown>;
  for (const key of ['channel', 'peer']) {
    const v = e[key];
    if (typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string') {
      return (v as { id: string }).id;
    }
  }
  return undefined;
}

class Gateway implements AriGateway {
  readonly app: string;
  private readonly log: Logger;
  private readonly metrics: AriMetrics;
  private readonly restUrl: string;
  private readonly wsUrl: string;
  private readonly host: string;
  private readonly reconnectOpts: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  private readonly retryOpts: { attempts: number; delayMs: number };
  private readonly commandTimeoutMs: number;
  private readonly apiLoadTimeoutMs: number;
  private readonly pingIntervalMs: number;

  private readonly eventListeners = new Set<{ listener: AriEventListener }>();
  private readonly connectionListeners = new Set<{
    listener: (state: AriConnectionState) => void;
  }>();
  private readonly registry: ChannelListenerRegistry;
  private readonly loggedUnknownTypes = new Set<string>();

  /** The ARI operations by `<resource>.<nickname>`, once the API docs are loaded. */
  private operations: Map<string, AriRestOperation> | undefined;
  private readonly rest: AriRestClient;
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
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly eventSliceMs: number;
  /** Received WebSocket messages not handled yet, in order ({@link receive}). */
  private inbox: WebSocket.RawData[] = [];
  private inboxHead = 0;
  /** A slice of the inbox is due on the next turn (`setImmediate`). */
  private inboxScheduled: NodeJS.Immediate | undefined;
  /** Messages of the current socket read are being handled since `sliceStartedAt` (ms). */
  private sliceOpen = false;
  private sliceStartedAt = 0;

  constructor(private readonly options: AriGatewayOptions) {
    this.app = options.app;
    this.log = options.logger.child({ component: 'ari' });
    this.metrics = createAriMetrics(options.registry);
    const base = normaliseBaseUrl(options.url);
    this.host = base.host;
    this.restUrl = `${base.protocol}//${base.host}${base.prefix}`;
    const wsProtocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = new URLSearchParams({
      app: options.app,
      api_key: `${options.username}:${options.password}`,
      subscribeAll: 'false',
    });
    this.wsUrl = `${wsProtocol}//${base.host}${base.prefix}/ari/events?${query.toString()}`;
    this.rest = new AriRestClient({
      baseUrl: this.restUrl,
      username: options.username,
      password: options.password,
    });
    this.reconnectOpts = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 500,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      jitter: options.reconnect?.jitter ?? 0.2,
    };
    this.retryOpts = {
      attempts: Math.max(1, options.notInStasisRetry?.attempts ?? 6),
      delayMs: options.notInStasisRetry?.delayMs ?? 25,
    };
    this.commandTimeoutMs = options.commandTimeoutMs ?? 15_000;
    this.apiLoadTimeoutMs = options.apiLoadTimeoutMs ?? 10_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 10_000;
    const sliceMs = options.eventSliceMs ?? DEFAULT_EVENT_SLICE_MS;
    this.eventSliceMs = sliceMs > 0 ? sliceMs : Infinity;
    this.registry = new ChannelListenerRegistry({
      graceMs: options.channelListenerGraceMs ?? 2_000,
      onCountChange: (n) => this.metrics.channelListeners.set(n),
    });
    this.metrics.connected.set(0);
    this.metrics.channelListeners.set(0);
    const swaggerLog = this.log.child({ source: 'swagger-client' });
    setSwaggerLogSink((message) => swaggerLog.debug(message));
    setInternalErrorSink((message, err) => this.log.error(message, { err }));
  }

  // ------------------------------------------------------------------------------------------
  // Connection
  // ------------------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.sealed) return Promise.reject(this.sealedError('start'));
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

  async stop(): Promise<void> {
    // Events already received are handled, as they were before the gateway sliced them.
    this.drainInbox(Infinity);
    const wasActive = this.running || this.startPromise !== undefined;
    this.running = false;
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.sleepers.clear();
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
    this.eventListeners.clear();
    this.connectionListeners.clear();
    this.registry.clear();
    if (wasActive) this.log.info('ARI gateway stopped', { app: this.app });
  }

  async seal(): Promise<void> {
    if (this.sealed) return;
    await this.stop();
    this.sealed = true;
  }

  /** The error of a command (or start) after {@link seal}. */
  private sealedError(operation: string): AriConnectionError {
    return new AriConnectionError(operation, 'the engine has stopped');
  }

  isConnected(): boolean {
    return this.state === 'connected' && this.ws?.readyState === WebSocket.OPEN;
  }

  onEvent(listener: AriEventListener): () => void {
    const entry = { listener };
    this.eventListeners.add(entry);
    return () => void this.eventListeners.delete(entry);
  }

  onChannel(channelId: string, listener: AriEventListener): () => void {
    return this.registry.add(channelId, listener);
  }

  onConnectionChange(listener: (state: AriConnectionState) => void): () => void {
    const entry = { listener };
    this.connectionListeners.add(entry);
    return () => void this.connectionListeners.delete(entry);
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
          if (!this.operations) this.operations = await this.loadApi();
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

  /**
   * Check that Asterisk answers `GET /ari/api-docs/resources.json` with our credentials (its
   * own errors are clearer than swagger-client's and a 401 is reported as such), then let
   * ari-client load the API and compile its operations.
   */
  private async loadApi(): Promise<Map<string, AriRestOperation>> {
    const docsUrl = `${this.restUrl}/ari/api-docs/resources.json`;
    const auth = Buffer.from(`${this.options.username}:${this.options.password}`).toString(
      'base64',
    );
    let response: Response;
    try {
      response = await fetch(docsUrl, {
        headers: { authorization: `Basic ${auth}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.apiLoadTimeoutMs),
      });
      await response.arrayBuffer();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new AriConnectionError('connect', cause?.code ?? cause?.message ?? errorMessage(err), {
        cause: err,
      });
    }
    if (response.status === 401 || response.status === 403) {
      throw new AriError(
        'unknown',
        response.status,
        'connect',
        'ARI authentication failed: check username and password',
      );
    }
    if (!response.ok) {
      throw new AriError(
        'unknown',
        response.status,
        'connect',
        `ARI API docs answered HTTP ${response.status}`,
      );
    }
    const client = await withTimeout(
      connectAriClient(this.restUrl, this.options.username, this.options.password),
      this.apiLoadTimeoutMs,
      () =>
        new AriConnectionError(
          'connect',
          `ARI API docs not loaded within ${this.apiLoadTimeoutMs} ms`,
        ),
    ).catch((err: unknown) => {
      throw err instanceof AriError
        ? err
        : new AriConnectionError('connect', errorMessage(err), { cause: err });
    });
    let operations: Map<string, AriRestOperation>;
    try {
      operations = operationsFromSwagger(
        (client as { _swagger?: { apis?: unknown } })._swagger?.apis,
      );
    } catch (err) {
      throw new AriError('unknown', undefined, 'connect', errorMessage(err), { cause: err });
    }
    this.log.debug('ARI API loaded', { host: this.host, operations: operations.size });
    return operations;
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
        this.receive(data);
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

  private handleDrop(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return; // replaced or stopped
    // What arrived before the drop is handled before anyone hears of it.
    this.drainInbox(Infinity);
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

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Events
  // ------------------------------------------------------------------------------------------

  /**
   * Take a WebSocket message. ws emits the messages of one socket read one after the other,
   * synchronously; they are handled as they come until `eventSliceMs` of this read's handling is
   * spent (the slice closes when control returns to the event loop), then they wait, in order,
   * for the next turns of the event loop (`setImmediate`: after the timers and the I/O that is
   * ready), a slice per turn.
   */
  private receive(data: WebSocket.RawData): void {
    if (this.inboxScheduled !== undefined) {
      this.inbox.push(data);
      return;
    }
    const now = performance.now();
    if (!this.sliceOpen) {
      this.sliceOpen = true;
      this.sliceStartedAt = now;
      queueMicrotask(this.closeSlice);
    }
    if (now - this.sliceStartedAt < this.eventSliceMs) {
      this.handleMessage(data);
      return;
    }
    this.inbox.push(data);
    this.scheduleDrain();
  }

  private readonly closeSlice = (): void => {
    this.sliceOpen = false;
  };

  private scheduleDrain(): void {
    this.inboxScheduled = setImmediate(() => {
      this.inboxScheduled = undefined;
      this.drainInbox(this.eventSliceMs);
    });
  }

  /** Handle waiting messages in order for up to `budgetMs`; schedule the rest. */
  private drainInbox(budgetMs: number): void {
    if (this.inboxScheduled !== undefined) {
      clearImmediate(this.inboxScheduled);
      this.inboxScheduled = undefined;
    }
    const started = performance.now();
    const inbox = this.inbox;
    while (this.inboxHead < inbox.length) {
      const data = inbox[this.inboxHead]!;
      inbox[this.inboxHead++] = EMPTY_MESSAGE;
      this.handleMessage(data);
      if (this.inboxHead < inbox.length && performance.now() - started >= budgetMs) {
        this.scheduleDrain();
        return;
      }
    }
    this.inbox = [];
    this.inboxHead = 0;
  }

  private handleMessage(data: WebSocket.RawData): void {
    let text: string;
    if (Buffer.isBuffer(data)) text = data.toString('utf8');
    else if (Array.isArray(data)) text = Buffer.concat(data).toString('utf8');
    else text = Buffer.from(data).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.metrics.eventsUnknown.inc();
      this.log.warn('ARI WebSocket message is not JSON; dropped', { bytes: text.length });
      return;
    }
    const type = (parsed as { type?: unknown } | null)?.type;
    if (
      typeof parsed !== 'object' ||
      parsed === null ||
      Array.isArray(parsed) ||
      typeof type !== 'string'
    ) {
      this.metrics.eventsUnknown.inc();
      this.log.warn('ARI WebSocket message without an event type; dropped');
      return;
    }
    if (!KNOWN_EVENT_TYPES.has(type)) {
      this.metrics.eventsUnknown.inc();
      this.logUnknownType(type);
      return;
    }
    const event = parsed as AriEvent;
    this.metrics.events.inc({ type: type });
    this.dispatch(event);
  }

  private logUnknownType(type: string): void {
    if (type === 'ApplicationReplaced') {
      this.log.warn(
        'another client connected to the same Stasis app: this connection no longer gets events',
        {
          app: this.app,
        },
      );
      return;
    }
    const first = !this.loggedUnknownTypes.has(type) && this.loggedUnknownTypes.size < 100;
    if (first) this.loggedUnknownTypes.add(type);
    this.log[first ? 'info' : 'debug']('unhandled ARI event type; dropped', {
      eventType: type.slice(0, 64),
    });
  }

  /** Deliver to every onEvent listener, then to the channel listeners, synchronously, in order. */
  private dispatch(event: AriEvent): void {
    const targets: AriEventListener[] = [];
    for (const { listener } of this.eventListeners) targets.push(listener);
    targets.push(...this.registry.listenersFor(event));
    for (const listener of targets) this.invoke(listener, event);
    this.registry.afterDelivery(event);
  }

  private invoke(listener: AriEventListener, event: AriEvent): void {
    try {
      const result = listener(event);
      if (result && typeof (result as PromiseLike<void>).then === 'function') {
        (result as PromiseLike<void>).then(undefined, (err: unknown) =>
          this.handlerFailed(err, event),
        );
      }
    } catch (err) {
      this.handlerFailed(err, event);
    }
  }

  private handlerFailed(err: unknown, event: AriEvent): void {
    this.metrics.handlerErrors.inc();
    this.log.error('ARI event listener failed', {
      err,
      eventType: event.type,
      channelId: eventChannelId(event),
    });
    if (!this.options.onHandlerError) return;
    try {
      this.options.onHandlerError(err, event);
    } catch (hookErr) {
      this.log.error('onHandlerError threw', { err: hookErr, eventType: event.type });
    }
  }

  // ------------------------------------------------------------------------------------------
  // REST
  // ------------------------------------------------------------------------------------------

  /**
   * Run one ARI operation: typed errors, timeout, the not-in-Stasis retry, metrics.
   * `operation` is `<resource>.<gateway method>` (metrics label and error field).
   */
  private async command(
    operation: string,
    resource: string,
    nickname: string,
    params: Record<string, unknown> | undefined,
  ): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      // Sealed (the engine stopped): nothing goes out, not even the retry of a command sent before.
      if (this.sealed) throw this.sealedError(operation);
      try {
        const op = this.operation(operation, resource, nickname);
        return await this.rest.execute(op, params, {
          timeoutMs: this.commandTimeoutMs,
          operation,
        });
      } catch (err) {
        const error = classifyAriError(operation, err);
        if (error.kind === 'not_in_stasis' && attempt < this.retryOpts.attempts && this.running) {
          this.metrics.commandRetries.inc({ operation });
          const delayMs = notInStasisRetryDelay(attempt, this.retryOpts);
          this.log.debug('ARI command retried: channel not in Stasis yet', {
            operation,
            attempt,
            delayMs,
          });
          await this.sleep(delayMs);
          continue;
        }
        this.metrics.commandErrors.inc({ operation, kind: error.kind });
        this.log.debug('ARI command failed', {
          operation,
          kind: error.kind,
          status: error.status,
          error: error.asteriskMessage,
        });
        throw error;
      }
    }
  }

  private operation(operation: string, resource: string, nickname: string): AriRestOperation {
    const operations = this.operations;
    if (!operations)
      throw new AriConnectionError(operation, 'ARI API not loaded (start() has not connected yet)');
    const op = operations.get(`${resource}.${nickname}`);
    if (!op) {
      throw new AriError(
        'unknown',
        undefined,
        operation,
        `this Asterisk has no ARI operation ${resource}.${nickname}`,
      );
    }
    return op;
  }

  private async json<T>(
    operation: string,
    resource: string,
    nickname: string,
    params?: Record<string, unknown>,
  ): Promise<T> {
    // The executor parses the JSON body itself: already plain data.
    return (await this.command(operation, resource, nickname, params)) as T;
  }

  private async void(
    operation: string,
    resource: string,
    nickname: string,
    params?: Record<string, unknown>,
  ): Promise<void> {
    await this.command(operation, resource, nickname, params);
  }

  /**
   * The answer of a create or originate with the engine's own `channelId` (a fresh UUID). A 409
   * "Channel with given unique ID already exists" means an earlier try of this very request
   * reached Asterisk and only its answer was lost (the connection was cut, and the HTTP client
   * sent the request again on a new one): the channel is ours, answered with
   * `GET /channels/{id}` instead of an error (like `bridges.create`).
   */
  private async ownChannel(
    channelId: string | undefined,
    request: Promise<AriChannel>,
  ): Promise<AriChannel> {
    try {
      return await request;
    } catch (err) {
      if (channelId && err instanceof AriConflictError && /already exists/i.test(err.message))
        return this.channels.get(channelId);
      throw err;
    }
  }

  readonly channels: AriGateway['channels'] = {
    list: () => this.json<AriChannel[]>('channels.list', 'channels', 'list'),
    get: (channelId) => this.json<AriChannel>('channels.get', 'channels', 'get', { channelId }),
    create: (p: CreateChannelParams) =>
      this.ownChannel(
        p.channelId,
        this.json<AriChannel>('channels.create', 'channels', 'create', {
          endpoint: p.endpoint,
          app: this.app,
          appArgs: p.appArgs.join(','),
          channelId: p.channelId,
          originator: p.originator,
          variables: p.variables,
        }),
      ),
    originate: (p: OriginateParams) =>
      this.ownChannel(
        p.channelId,
        this.json<AriChannel>('channels.originate', 'channels', 'originate', {
          endpoint: p.endpoint,
          app: this.app,
          appArgs: p.appArgs.join(','),
          channelId: p.channelId,
          callerId: p.callerId,
          timeout: p.timeoutSec,
          originator: p.originator,
          variables: p.variables,
        }),
      ),
    dial: (channelId, p?: DialParams) =>
      this.void('channels.dial', 'channels', 'dial', {
        channelId,
        caller: p?.caller,
        timeout: p?.timeoutSec,
      }),
    answer: (channelId) => this.void('channels.answer', 'channels', 'answer', { channelId }),
    ring: (channelId) => this.void('channels.ring', 'channels', 'ring', { channelId }),
    ringStop: (channelId) => this.void('channels.ringStop', 'channels', 'ringStop', { channelId }),
    hangup: (channelId, p?: HangupParams) =>
      this.void('channels.hangup', 'channels', 'hangup', { channelId, reason: p?.reason }),
    continueInDialplan: (channelId, p: ContinueParams) =>
      this.void('channels.continueInDialplan', 'channels', 'continueInDialplan', {
        channelId,
        context: p.context,
        extension: p.extension,
        priority: p.priority,
        label: p.label,
      }),
    play: (channelId, p: PlayParams) =>
      this.json<AriPlayback>('channels.play', 'channels', 'play', {
        channelId,
        media: p.media.join(','),
        lang: p.lang,
        playbackId: p.playbackId,
      }),
    record: (channelId, p: RecordParams) =>
      this.json<AriLiveRecording>('channels.record', 'channels', 'record', {
        channelId,
        ...recordParams(p),
      }),
    setVariable: (channelId, variable, value) =>
      this.void('channels.setVariable', 'channels', 'setChannelVar', {
        channelId,
        variable,
        value,
      }),
    getVariable: async (channelId, variable) => {
      const result = await this.json<{ value?: unknown }>(
        'channels.getVariable',
        'channels',
        'getChannelVar',
        {
          channelId,
          variable,
        },
      );
      return typeof result?.value === 'string' ? result.value : '';
    },
  };

  readonly bridges: AriGateway['bridges'] = {
    list: () => this.json<AriBridge[]>('bridges.list', 'bridges', 'list'),
    get: (bridgeId) => this.json<AriBridge>('bridges.get', 'bridges', 'get', { bridgeId }),
    create: async (p: CreateBridgeParams) => {
      try {
        return await this.json<AriBridge>('bridges.create', 'bridges', 'createWithId', {
          bridgeId: p.bridgeId,
          type: p.type?.join(','),
          name: p.name,
        });
      } catch (err) {
        // The id is the engine's own (a fresh UUID): "already exists" means an earlier try of
        // this very create reached Asterisk and only its answer was lost (a connection cut); the
        // request is retried after a reconnect. The bridge is ours: answer it.
        if (p.bridgeId && err instanceof AriConflictError && /already exists/i.test(err.message))
          return this.bridges.get(p.bridgeId);
        throw err;
      }
    },
    destroy: (bridgeId) => this.void('bridges.destroy', 'bridges', 'destroy', { bridgeId }),
    addChannel: (bridgeId, channelIds) =>
      this.void('bridges.addChannel', 'bridges', 'addChannel', {
        bridgeId,
        channel: channelIds.join(','),
      }),
    removeChannel: (bridgeId, channelIds) =>
      this.void('bridges.removeChannel', 'bridges', 'removeChannel', {
        bridgeId,
        channel: channelIds.join(','),
      }),
    record: (bridgeId, p: RecordParams) =>
      this.json<AriLiveRecording>('bridges.record', 'bridges', 'record', {
        bridgeId,
        ...recordParams(p),
      }),
    play: (bridgeId, p: PlayParams) =>
      this.json<AriPlayback>('bridges.play', 'bridges', 'play', {
        bridgeId,
        media: p.media.join(','),
        lang: p.lang,
        playbackId: p.playbackId,
      }),
  };

  readonly playbacks: AriGateway['playbacks'] = {
    get: (playbackId) =>
      this.json<AriPlayback>('playbacks.get', 'playbacks', 'get', { playbackId }),
    stop: (playbackId) => this.void('playbacks.stop', 'playbacks', 'stop', { playbackId }),
  };

  readonly recordings: AriGateway['recordings'] = {
    listStored: () =>
      this.json<AriStoredRecording[]>('recordings.listStored', 'recordings', 'listStored'),
    getStored: (name) =>
      this.json<AriStoredRecording>('recordings.getStored', 'recordings', 'getStored', {
        recordingName: name,
      }),
    getStoredFile: async (name) => {
      const raw = await this.command('recordings.getStoredFile', 'recordings', 'getStoredFile', {
        recordingName: name,
      });
      if (Buffer.isBuffer(raw)) return raw;
      if (raw instanceof Uint8Array) return Buffer.from(raw);
      if (typeof raw === 'string') return Buffer.from(raw, 'binary');
      throw new AriError(
        'unknown',
        200,
        'recordings.getStoredFile',
        'the recording file was not returned as bytes',
      );
    },
    deleteStored: (name) =>
      this.void('recordings.deleteStored', 'recordings', 'deleteStored', { recordingName: name }),
    getLive: (name) =>
      this.json<AriLiveRecording>('recordings.getLive', 'recordings', 'getLive', {
        recordingName: name,
      }),
    stopLive: (name) =>
      this.void('recordings.stopLive', 'recordings', 'stop', { recordingName: name }),
  };

  readonly endpoints: AriGateway['endpoints'] = {
    list: () => this.json<AriEndpoint[]>('endpoints.list', 'endpoints', 'list'),
    get: (technology, resource) =>
      this.json<AriEndpoint>('endpoints.get', 'endpoints', 'get', { tech: technology, resource }),
  };

  readonly deviceStates: AriGateway['deviceStates'] = {
    list: () => this.json<AriDeviceState[]>('deviceStates.list', 'deviceStates', 'list'),
    get: (deviceName) =>
      this.json<AriDeviceState>('deviceStates.get', 'deviceStates', 'get', { deviceName }),
  };

  readonly applications: AriGateway['applications'] = {
    list: () => this.json<AriApplication[]>('applications.list', 'applications', 'list'),
    get: (name) =>
      this.json<AriApplication>('applications.get', 'applications', 'get', {
        applicationName: name,
      }),
    setEventFilter: (filter) =>
      this.json<AriApplication>('applications.setEventFilter', 'applications', 'filter', {
        applicationName: this.app,
        filter: {
          ...(filter.allowed ? { allowed: filter.allowed.map((type) => ({ type })) } : {}),
          ...(filter.disallowed ? { disallowed: filter.disallowed.map((type) => ({ type })) } : {}),
        },
      }),
    subscribe: (eventSources) =>
      this.json<AriApplication>('applications.subscribe', 'applications', 'subscribe', {
        applicationName: this.app,
        eventSource: eventSources.join(','),
      }),
  };

  /**
   * The event filter to set at connect: the configured one, unless it is `null` or this Asterisk
   * has no `applications.filter` operation (older than 13.26: logged, every event is received).
   */
  private eventFilterToSet(): AriEventFilter | undefined {
    const filter =
      this.options.eventFilter === undefined ? ENGINE_EVENT_FILTER : this.options.eventFilter;
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
        this.applications.setEventFilter(filter),
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
}

function recordParams(p: RecordParams): Record<string, unknown> {
  return {
    name: p.name,
    format: p.format,
    maxDurationSeconds: p.maxDurationSec,
    maxSilenceSeconds: p.maxSilenceSec,
    ifExists: p.ifExists,
    beep: p.beep,
    terminateOn: p.terminateOn,
  };
}

/** Race `promise` against a timer; the timer's error wins after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
