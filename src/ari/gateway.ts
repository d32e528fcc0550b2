/**
 * The ARI gateway: the only module that imports ari-client (through `swagger-patch.ts`). This
 * file is its entry: the options, {@link createAriGateway}, and the `Gateway` that puts the parts
 * together behind the {@link AriGateway} interface (`types.ts`).
 *
 * - REST: ari-client loads the API (`/ari/api-docs/*.json`) once; every {@link AriGateway} method
 *   then runs the operation named by Asterisk's Swagger nickname, with the parameter names of the
 *   API docs, through the lean executor of `rest.ts` (keep-alive connections, each operation
 *   compiled once: the same requests swagger-client would send, at a fraction of its CPU), and
 *   returns plain JSON. Failures are typed (`classifyAriError`); a 409 "Channel not in
 *   Stasis application" (common right after StasisStart, fixtures fact 2) is retried a few times
 *   with a doubling delay, nothing else is; a command without an answer for `commandTimeoutMs`
 *   fails with AriConnectionError.
 * - Events: ari-client's `start()` is never called (it throws on event types missing from its
 *   events.json and gives up reconnecting after ~10 tries). The gateway opens
 *   `ws(s)://host/ari/events?app=<app>&api_key=<user>:<pass>&subscribeAll=false` with `ws`,
 *   pings it, reconnects forever with capped exponential backoff plus jitter, and dispatches the
 *   event types of `ARI_EVENT_TYPES`; other types are logged and counted.
 * - Nothing is replayed after a reconnect (fixtures fact 13): the engine lists channels and
 *   bridges itself when `onConnectionChange` reports `connected` again.
 *
 * The parts, each read top to bottom:
 *
 * - `connection.ts` ({@link AriConnection}): the lifetime (`start`, `stop`, `seal`), the connect
 *   loop, the WebSocket and its pings, the reconnect after a drop, the event filter set at every
 *   connect, the connection state.
 * - `api-docs.ts` (`loadApi`): loading the REST API description at the first connect.
 * - `events.ts` ({@link EventDispatcher}): the received messages, handled in slices, parsed and
 *   dispatched to the `onEvent` and `onChannel` listeners (`listeners.ts`).
 * - `commands.ts` ({@link AriCommands}): the REST command surface (`channels`, `bridges`,
 *   `playbacks`, `recordings`, `endpoints`, `deviceStates`, `applications`) over one runner:
 *   timeout, typed errors (`classify.ts`, `errors.ts`), the not-in-Stasis retry (`backoff.ts`),
 *   metrics (`metrics.ts`), the seal.
 * - `rest.ts`: the executor the commands run on; `ids.ts`: the client-generated ids;
 *   `helpers.ts`: small shared helpers.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { AriCommands } from './commands.ts';
import { AriConnection } from './connection.ts';
import { EventDispatcher } from './events.ts';
import { normaliseBaseUrl } from './helpers.ts';
import { createAriMetrics } from './metrics.ts';
import { AriRestClient } from './rest.ts';
import { setInternalErrorSink, setSwaggerLogSink } from './swagger-patch.ts';
import type {
  AriConnectionState,
  AriEvent,
  AriEventFilter,
  AriEventListener,
  AriGateway,
} from './types.ts';

export { newBridgeId, newChannelId, newPlaybackId } from './ids.ts';

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

/**
 * Create the ARI gateway (nothing happens until {@link AriGateway.start}). The `url` must be an
 * http(s) URL; throws TypeError otherwise.
 *
 * Lifetime: `start()` connects (and reconnects); `stop()` disconnects the event WebSocket, but
 * REST commands still reach Asterisk, so the call steps under way while the engine stops finish
 * their commands; `seal()` is the point of no return, called at the very end of the engine's
 * stop (after its call steps settled and its call journal closed): from then on every command
 * rejects with `AriConnectionError` "the engine has stopped" and nothing more is sent to
 * Asterisk, whatever timer or late answer of the stopped engine asks for it.
 */
export function createAriGateway(options: AriGatewayOptions): AriGateway {
  return new Gateway(options);
}

/**
 * The {@link AriGateway}: reads the options (their defaults are here), builds the parts and
 * hands each method to the part that does it.
 */
class Gateway implements AriGateway {
  readonly app: string;
  readonly channels: AriGateway['channels'];
  readonly bridges: AriGateway['bridges'];
  readonly playbacks: AriGateway['playbacks'];
  readonly recordings: AriGateway['recordings'];
  readonly endpoints: AriGateway['endpoints'];
  readonly deviceStates: AriGateway['deviceStates'];
  readonly applications: AriGateway['applications'];
  private readonly connection: AriConnection;
  private readonly events: EventDispatcher;

  constructor(options: AriGatewayOptions) {
    this.app = options.app;
    const log = options.logger.child({ component: 'ari' });
    const metrics = createAriMetrics(options.registry);
    const base = normaliseBaseUrl(options.url);
    const restUrl = `${base.protocol}//${base.host}${base.prefix}`;
    const wsProtocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = new URLSearchParams({
      app: options.app,
      api_key: `${options.username}:${options.password}`,
      subscribeAll: 'false',
    });
    const rest = new AriRestClient({
      baseUrl: restUrl,
      username: options.username,
      password: options.password,
    });
    const apiLoadTimeoutMs = options.apiLoadTimeoutMs ?? 10_000;
    const sliceMs = options.eventSliceMs ?? DEFAULT_EVENT_SLICE_MS;
    this.events = new EventDispatcher({
      app: options.app,
      log,
      metrics,
      sliceMs: sliceMs > 0 ? sliceMs : Infinity,
      channelListenerGraceMs: options.channelListenerGraceMs ?? 2_000,
      onHandlerError: options.onHandlerError,
    });
    this.connection = new AriConnection({
      app: options.app,
      log,
      metrics,
      apiDocs: {
        restUrl,
        host: base.host,
        username: options.username,
        password: options.password,
        timeoutMs: apiLoadTimeoutMs,
        log,
      },
      wsUrl: `${wsProtocol}//${base.host}${base.prefix}/ari/events?${query.toString()}`,
      rest,
      events: this.events,
      reconnect: {
        initialDelayMs: options.reconnect?.initialDelayMs ?? 500,
        maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
        jitter: options.reconnect?.jitter ?? 0.2,
      },
      apiLoadTimeoutMs,
      pingIntervalMs: options.pingIntervalMs ?? 10_000,
      eventFilter: options.eventFilter === undefined ? ENGINE_EVENT_FILTER : options.eventFilter,
      setEventFilter: (filter) => this.applications.setEventFilter(filter),
    });
    const commands = new AriCommands({
      app: options.app,
      log,
      metrics,
      rest,
      connection: this.connection,
      retry: {
        attempts: Math.max(1, options.notInStasisRetry?.attempts ?? 6),
        delayMs: options.notInStasisRetry?.delayMs ?? 25,
      },
      commandTimeoutMs: options.commandTimeoutMs ?? 15_000,
    });
    this.channels = commands.channels;
    this.bridges = commands.bridges;
    this.playbacks = commands.playbacks;
    this.recordings = commands.recordings;
    this.endpoints = commands.endpoints;
    this.deviceStates = commands.deviceStates;
    this.applications = commands.applications;
    metrics.connected.set(0);
    metrics.channelListeners.set(0);
    const swaggerLog = log.child({ source: 'swagger-client' });
    setSwaggerLogSink((message) => swaggerLog.debug(message));
    setInternalErrorSink((message, err) => log.error(message, { err }));
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  seal(): Promise<void> {
    return this.connection.seal();
  }

  isConnected(): boolean {
    return this.connection.isConnected();
  }

  onEvent(listener: AriEventListener): () => void {
    return this.events.onEvent(listener);
  }

  onChannel(channelId: string, listener: AriEventListener): () => void {
    return this.events.onChannel(channelId, listener);
  }

  onConnectionChange(listener: (state: AriConnectionState) => void): () => void {
    return this.connection.onConnectionChange(listener);
  }
}
