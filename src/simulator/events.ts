/**
 * The Stasis event bus: finds the apps an event reaches (Stasis membership and explicit
 * subscriptions, see `pbx.ts`) and sends it on their WebSockets, stamped with `timestamp` (simulated
 * clock), `asterisk_id` and `application`. Events can be held back and sent later (race (a)).
 */
import type { Logger } from 'winston';
import type { AppRegistry } from './apps.ts';
import type { SimClock } from './clock.ts';
import type { SimBridge, SimChannel } from './model.ts';
import type { SimEvent } from './types.ts';

/** `asterisk_id` (entity id) of the recorded Asterisk. */
export const ASTERISK_ID = '02:fc:00:00:00:01';

/** What an event is about, to find the apps that receive it. */
export interface Scope {
  channels?: SimChannel[];
  bridge?: SimBridge;
  /** `PJSIP/<resource>` */
  endpoint?: string;
  /** Device name, e.g. `PJSIP/101`. */
  device?: string;
}

/** Event types whose own fields come before `type` in Asterisk's JSON. */
const BLOB_FIRST = new Set(['ChannelVarset', 'ChannelHangupRequest']);

/** A pending event delivery (see {@link EventBus.collect}). */
export type Delivery = () => Promise<void>;

export class EventBus {
  private sink: Delivery[] | null = null;

  constructor(
    private readonly apps: AppRegistry,
    private readonly clock: SimClock,
    private readonly log: Logger | undefined,
  ) {}

  /**
   * Run `fn`, holding back the events it emits instead of sending them; returns its result and
   * the held deliveries (send them with {@link flush}).
   */
  collect<T>(fn: () => T): { result: T; deliveries: Delivery[] } {
    const previous = this.sink;
    const deliveries: Delivery[] = [];
    this.sink = deliveries;
    try {
      return { result: fn(), deliveries };
    } finally {
      this.sink = previous;
    }
  }

  /** Send held deliveries in order; resolves when all are written to their sockets. */
  async flush(deliveries: Delivery[]): Promise<void> {
    await Promise.all(deliveries.map((d) => d()));
  }

  /** Apps an event about `scope` reaches. */
  targets(scope: Scope): Set<string> {
    return new Set(this.copies('', scope).keys());
  }

  /**
   * How many copies of an event each app gets. Asterisk forwards a channel's topic into its
   * endpoint's topic, so an app subscribed to a channel (in Stasis, created, originated) *and*
   * to its endpoint (`endpoint:PJSIP/101`) receives each channel event twice, except StasisStart
   * and StasisEnd, which are sent to the app directly (device-endpoint-state trace). Bridge
   * events travel on the bridge's topic only.
   */
  private copies(type: string, scope: Scope): Map<string, number> {
    const out = new Map<string, number>();
    const add = (app: string, n = 1) => out.set(app, (out.get(app) ?? 0) + n);
    const direct = type === 'StasisStart' || type === 'StasisEnd';
    for (const ch of scope.channels ?? []) {
      const viaChannel = new Set(ch.subscribers);
      if (ch.stasis) viaChannel.add(ch.stasis.app);
      for (const app of viaChannel) add(app);
      if (scope.bridge || direct) continue;
      const tech = ch.endpoint.split('/')[0] ?? '';
      for (const app of new Set([
        ...this.apps.subscribersOf(`endpoint:${ch.endpoint}`),
        ...this.apps.subscribersOf(`endpoint:${tech}`),
      ]))
        add(app);
    }
    if (scope.bridge) for (const app of scope.bridge.subscribers) if (!out.has(app)) add(app);
    if (scope.endpoint) {
      for (const app of this.apps.subscribersOf(`endpoint:${scope.endpoint}`)) out.set(app, 1);
      const tech = scope.endpoint.split('/')[0];
      for (const app of this.apps.subscribersOf(`endpoint:${tech}`)) out.set(app, 1);
    }
    if (scope.device) {
      for (const app of this.apps.subscribersOf(`deviceState:${scope.device}`)) out.set(app, 1);
    }
    for (const app of this.apps.subscribeAllApps()) if (!out.has(app)) add(app);
    return out;
  }

  /** Emit an event to every app the scope reaches (payload snapshots are taken by the caller, now). */
  emit(type: string, fields: Record<string, unknown>, scope: Scope): void {
    const targets = this.copies(type, scope);
    this.log?.debug('sim event', { type, apps: [...targets.keys()] });
    if (targets.size === 0) return;
    const timestamp = this.clock.timestamp();
    // Key order as Asterisk writes it: ChannelVarset and ChannelHangupRequest start with their
    // own fields (`variable`/`value`, `cause`/`soft`), the others with `type` and `timestamp`.
    const { channel, ...own } = fields;
    const leading = BLOB_FIRST.has(type);
    for (const [app, count] of targets) {
      const event: SimEvent = leading
        ? {
            ...own,
            type,
            timestamp,
            ...(channel === undefined ? {} : { channel }),
            asterisk_id: ASTERISK_ID,
            application: app,
          }
        : { type, timestamp, ...fields, asterisk_id: ASTERISK_ID, application: app };
      for (let i = 0; i < count; i++) {
        const delivery = () => this.apps.deliver(app, event);
        if (this.sink) this.sink.push(delivery);
        else void delivery();
      }
    }
  }

  /** Send an arbitrary event to an app (`timestamp`/`application` filled in when missing). */
  emitRaw(app: string, event: Record<string, unknown>): void {
    const full: Record<string, unknown> = {
      timestamp: this.clock.timestamp(),
      ...event,
      application: event.application ?? app,
    };
    void this.apps.deliver(app, { ...full, type: String(full.type ?? '') });
  }
}
