/**
 * Stasis applications and their event WebSockets. An app is active while a WebSocket is connected
 * for it; events for it are sent there, or dropped when none is (nothing is replayed on reconnect,
 * fixtures fact 13). A second WebSocket for the same app takes it over and the first one is told
 * `ApplicationReplaced` (Asterisk's behaviour).
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { SimEvent } from './types.ts';

interface AppState {
  name: string;
  socket: WebSocket | null;
  subscribeAll: boolean;
  /** Event sources subscribed with `POST /applications/{app}/subscription`: `endpoint:PJSIP/101`, `deviceState:PJSIP/101`. */
  sources: Set<string>;
  /** `PUT /applications/{app}/eventFilter`: the lists as given (`[{type}]`), see {@link EventFilter}. */
  filter: EventFilter;
}

/**
 * An application's event type filter (`PUT /applications/{app}/eventFilter`, Asterisk 13.26+):
 * an event is sent when its type is not in `disallowed` and `allowed` is empty or holds it.
 * Kept while the application exists (across WebSocket reconnects), lost when Asterisk forgets it.
 */
export interface EventFilter {
  allowed: Array<{ type: string }>;
  disallowed: Array<{ type: string }>;
}

export class AppRegistry {
  private readonly apps = new Map<string, AppState>();
  private readonly listeners = new Set<{
    listener: (event: SimEvent) => void;
    /** Only events of these types (all when undefined). */
    types: Set<string> | undefined;
  }>();
  /** The TCP connection under each app WebSocket (see {@link deliver}). */
  private readonly transports = new WeakMap<WebSocket, Duplex>();
  /** Connections corked until the end of the current tick. */
  private readonly corked = new WeakSet<Duplex>();
  /** WebSockets gone silent ({@link stall}): open, but whatever is written to them is lost. */
  private readonly stalled = new WeakSet<WebSocket>();

  /** Events addressed to a connected app since start, before its event filter. */
  offered = 0;
  /** Events written to app WebSockets since start (after each app's event filter). */
  delivered = 0;

  /** Names of the apps known (with a WebSocket, or without one but not yet forgotten). */
  names(): string[] {
    return [...this.apps.keys()];
  }

  /** Whether the app has a WebSocket (`Stasis(app)` only succeeds then). */
  isActive(app: string): boolean {
    return this.apps.get(app)?.socket != null;
  }

  /** Apps connected with `subscribeAll=true`: they get every event. */
  subscribeAllApps(): string[] {
    const out: string[] = [];
    for (const a of this.apps.values()) if (a.socket && a.subscribeAll) out.push(a.name);
    return out;
  }

  /** Apps with an explicit subscription to `source` (e.g. `endpoint:PJSIP/101`). */
  subscribersOf(source: string): string[] {
    return [...this.apps.values()].filter((a) => a.sources.has(source)).map((a) => a.name);
  }

  /** The app's explicit endpoint/device subscriptions (`endpoint:PJSIP/101`, `deviceState:PJSIP/101`). */
  sources(app: string): string[] {
    return [...(this.apps.get(app)?.sources ?? [])];
  }

  /** Subscribe the app to an endpoint or device event source. */
  addSource(app: string, source: string): void {
    this.state(app).sources.add(source);
  }

  /** The app's event filter (empty lists when none is set). */
  filter(app: string): EventFilter {
    const f = this.apps.get(app)?.filter;
    return { allowed: [...(f?.allowed ?? [])], disallowed: [...(f?.disallowed ?? [])] };
  }

  /** Replace one or both lists of the app's event filter. */
  setFilter(app: string, filter: Partial<EventFilter>): void {
    const state = this.state(app);
    if (filter.allowed) state.filter.allowed = filter.allowed;
    if (filter.disallowed) state.filter.disallowed = filter.disallowed;
  }

  /** Whether the app's filter lets an event type through. */
  private allows(state: AppState, type: string): boolean {
    const { allowed, disallowed } = state.filter;
    if (disallowed.length > 0 && disallowed.some((f) => f.type === type)) return false;
    return allowed.length === 0 || allowed.some((f) => f.type === type);
  }

  /** Unsubscribe; false when it was not subscribed. */
  removeSource(app: string, source: string): boolean {
    return this.apps.get(app)?.sources.delete(source) ?? false;
  }

  /**
   * Attach a WebSocket to `app`; a previous WebSocket of the app gets `ApplicationReplaced`.
   * `transport` is the TCP connection under it, when known.
   */
  attach(
    app: string,
    socket: WebSocket,
    subscribeAll: boolean,
    timestamp: string,
    transport?: Duplex,
  ): void {
    if (transport) this.transports.set(socket, transport);
    const state = this.state(app);
    const previous = state.socket;
    state.socket = socket;
    state.subscribeAll = subscribeAll;
    if (
      previous &&
      previous !== socket &&
      previous.readyState === previous.OPEN &&
      !this.stalled.has(previous)
    ) {
      previous.send(JSON.stringify({ type: 'ApplicationReplaced', timestamp, application: app }));
    }
  }

  /** Detach `socket` from every app it serves. Returns the apps that lost their WebSocket. */
  detach(socket: WebSocket): string[] {
    const lost: string[] = [];
    for (const state of this.apps.values()) {
      if (state.socket === socket) {
        state.socket = null;
        state.subscribeAll = false;
        lost.push(state.name);
      }
    }
    return lost;
  }

  /** Forget an app that has neither a WebSocket nor subscriptions left (fixtures fact 14). */
  forgetIfIdle(app: string, hasResources: boolean): void {
    const state = this.apps.get(app);
    if (state && !state.socket && !hasResources) {
      state.sources.clear();
      this.apps.delete(app);
    }
  }

  /**
   * Every app WebSocket open now goes silent without closing, as when the network between the
   * app and Asterisk starts dropping packets: the app stays active (`Stasis()` succeeds, a
   * StasisStart is sent) but every event written to those WebSockets is lost. A WebSocket
   * attached later is not affected; a stalled one stays open until closed (dropWebSockets).
   */
  stall(): void {
    for (const state of this.apps.values()) if (state.socket) this.stalled.add(state.socket);
  }

  /** Every open WebSocket (for dropWebSockets / close). */
  sockets(): WebSocket[] {
    return [
      ...new Set(
        [...this.apps.values()].map((a) => a.socket).filter((s): s is WebSocket => s !== null),
      ),
    ];
  }

  /**
   * Observe every event sent on an app WebSocket, or only those of `types`; returns the
   * unsubscribe function.
   */
  onEvent(listener: (event: SimEvent) => void, types?: readonly string[]): () => void {
    const entry = { listener, types: types ? new Set(types) : undefined };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /**
   * Send an event to the app's WebSocket; resolves once it is written to the socket. Dropped
   * (resolves at once) when the app has no WebSocket.
   */
  deliver(app: string, event: SimEvent): Promise<void> {
    const socket = this.admit(app, event.type);
    if (!socket) return Promise.resolve();
    return this.send(socket, event.type, JSON.stringify(event), () => event);
  }

  /**
   * The first half of {@link deliver}: counts an event of `type` offered to `app` (when it has an
   * open WebSocket) and, when the app's event filter lets it through, counts it delivered and
   * returns the WebSocket to {@link send} it on (which the caller must then do). Undefined when the
   * event is dropped: nothing of it needs to be built.
   */
  admit(app: string, type: string): WebSocket | undefined {
    const state = this.apps.get(app);
    const socket = state?.socket;
    if (!state || !socket || socket.readyState !== socket.OPEN) return undefined;
    this.offered++;
    if (this.stalled.has(socket)) return undefined;
    if (!this.allows(state, type)) return undefined;
    this.delivered++;
    return socket;
  }

  /**
   * The second half of {@link deliver}: hand the event (of `type`, JSON `text`) to the listeners
   * (as the object `event()` returns, built only when a listener wants it) and write it on
   * `socket`; resolves once it is written.
   */
  send(socket: WebSocket, type: string, text: string, event: () => SimEvent): Promise<void> {
    let object: SimEvent | undefined;
    for (const { listener, types } of this.listeners) {
      if (types && !types.has(type)) continue;
      object ??= event();
      try {
        listener(object);
      } catch {
        // a test listener's failure must not break delivery
      }
    }
    this.coalesce(socket);
    return new Promise((resolve) => socket.send(text, () => resolve()));
  }

  /** Whether any app has an explicit endpoint/device subscription (events.ts skips the lookups when none has). */
  hasSources(): boolean {
    for (const state of this.apps.values()) if (state.sources.size > 0) return true;
    return false;
  }

  /**
   * The events sent on a WebSocket in one tick go out in one TCP write (the connection is corked
   * until the tick ends): the same frames in the same order, one system call instead of one per
   * frame, and one wake-up of the app instead of one per event. TCP keeps no message boundaries,
   * so an app must already read several frames from one segment (a real Asterisk's writes
   * coalesce too when the network or the peer is slower than it).
   */
  private coalesce(socket: WebSocket): void {
    const transport = this.transports.get(socket);
    if (!transport || this.corked.has(transport) || transport.destroyed) return;
    this.corked.add(transport);
    transport.cork();
    process.nextTick(() => {
      this.corked.delete(transport);
      transport.uncork();
    });
  }

  private state(app: string): AppState {
    let state = this.apps.get(app);
    if (!state) {
      state = {
        name: app,
        socket: null,
        subscribeAll: false,
        sources: new Set(),
        filter: { allowed: [], disallowed: [] },
      };
      this.apps.set(app, state);
    }
    return state;
  }
}
