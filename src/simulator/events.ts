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

/** Keys the bus writes itself: an event whose fields hold one is serialised from its object. */
const RESERVED = ['type', 'timestamp', 'asterisk_id', 'application'];

/** `JSON.stringify(value)` without its braces (`''` for an empty object). */
function members(value: Record<string, unknown>): string {
  const json = JSON.stringify(value);
  return json.length > 2 ? json.slice(1, -1) : '';
}

/**
 * One emitted event: its object and its JSON for each app, built once (the same text for every
 * copy and app but for `application`). The JSON is exactly `JSON.stringify` of the object.
 */
class EventText {
  private head: string | undefined;
  private objects: Map<string, SimEvent> | undefined;

  constructor(
    private readonly type: string,
    private readonly fields: Record<string, unknown>,
    private readonly ms: number,
  ) {}

  /**
   * The event as sent to `app`. Key order as Asterisk writes it: ChannelVarset and
   * ChannelHangupRequest start with their own fields (`variable`/`value`, `cause`/`soft`), the
   * others with `type` and `timestamp`.
   */
  object(app: string, clock: SimClock): SimEvent {
    let event = this.objects?.get(app);
    if (event) return event;
    const { type, fields } = this;
    const timestamp = clock.timestamp(this.ms);
    if (BLOB_FIRST.has(type)) {
      const { channel, ...own } = fields;
      event = {
        ...own,
        type,
        timestamp,
        ...(channel === undefined ? {} : { channel }),
        asterisk_id: ASTERISK_ID,
        application: app,
      };
    } else event = { type, timestamp, ...fields, asterisk_id: ASTERISK_ID, application: app };
    (this.objects ??= new Map()).set(app, event);
    return event;
  }

  /** `JSON.stringify(this.object(app))`, without building the object. */
  text(app: string, clock: SimClock): string {
    if (this.head === undefined) {
      const { type, fields } = this;
      if (RESERVED.some((key) => key in fields)) return JSON.stringify(this.object(app, clock));
      const stamp = `"type":${JSON.stringify(type)},"timestamp":${JSON.stringify(clock.timestamp(this.ms))}`;
      if (BLOB_FIRST.has(type)) {
        const { channel, ...own } = fields;
        const lead = members(own);
        this.head = `{${lead}${lead ? ',' : ''}${stamp}${channel === undefined ? '' : `,"channel":${JSON.stringify(channel)}`}`;
      } else {
        const rest = members(fields);
        this.head = `{${stamp}${rest ? ',' : ''}${rest}`;
      }
      this.head += `,"asterisk_id":${JSON.stringify(ASTERISK_ID)},"application":`;
    }
    return `${this.head}${JSON.stringify(app)}}`;
  }
}

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

  /** Whether an event about `scope` reaches any app ({@link targets} is not empty). */
  reaches(scope: Scope): boolean {
    return this.copies('', scope).size > 0;
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
    const direct = type === 'StasisStart' || type === 'StasisEnd';
    // Endpoint and device topics are only looked up when some app subscribed to one.
    const sources = this.apps.hasSources();
    for (const ch of scope.channels ?? []) {
      // The channel's topic: its subscribers, then its Stasis app (once per app).
      for (const app of ch.subscribers) out.set(app, (out.get(app) ?? 0) + 1);
      const stasis = ch.stasis?.app;
      if (stasis !== undefined && !ch.subscribers.has(stasis))
        out.set(stasis, (out.get(stasis) ?? 0) + 1);
      if (scope.bridge || direct || !sources) continue;
      const tech = ch.endpoint.split('/')[0] ?? '';
      for (const app of new Set([
        ...this.apps.subscribersOf(`endpoint:${ch.endpoint}`),
        ...this.apps.subscribersOf(`endpoint:${tech}`),
      ]))
        out.set(app, (out.get(app) ?? 0) + 1);
    }
    if (scope.bridge) {
      for (const app of scope.bridge.subscribers) if (!out.has(app)) out.set(app, 1);
    }
    if (scope.endpoint && sources) {
      for (const app of this.apps.subscribersOf(`endpoint:${scope.endpoint}`)) out.set(app, 1);
      const tech = scope.endpoint.split('/')[0];
      for (const app of this.apps.subscribersOf(`endpoint:${tech}`)) out.set(app, 1);
    }
    if (scope.device && sources) {
      for (const app of this.apps.subscribersOf(`deviceState:${scope.device}`)) out.set(app, 1);
    }
    for (const app of this.apps.subscribeAllApps()) if (!out.has(app)) out.set(app, 1);
    return out;
  }

  /**
   * Emit an event to every app the scope reaches. `fields` are the event's own fields, a snapshot
   * taken now; pass a function returning them to have them built only when some app's WebSocket
   * and event filter let the event through (they are built at once when events are held back).
   * The JSON of an event is written once and shared by every copy and app (only `application`
   * differs); the event object is only built for {@link AppRegistry.onEvent} listeners.
   */
  emit(
    type: string,
    fields: Record<string, unknown> | (() => Record<string, unknown>),
    scope: Scope,
  ): void {
    const targets = this.copies(type, scope);
    if (this.log) this.log.debug('sim event', { type, apps: [...targets.keys()] });
    if (targets.size === 0) return;
    const ms = this.clock.nowMs();
    let event: EventText | undefined;
    if (this.sink) {
      const built = new EventText(type, typeof fields === 'function' ? fields() : fields, ms);
      for (const [app, count] of targets) {
        for (let i = 0; i < count; i++) {
          this.sink.push(() => {
            const socket = this.apps.admit(app, type);
            if (!socket) return Promise.resolve();
            return this.apps.send(socket, type, built.text(app, this.clock), () =>
              built.object(app, this.clock),
            );
          });
        }
      }
      return;
    }
    for (const [app, count] of targets) {
      for (let i = 0; i < count; i++) {
        const socket = this.apps.admit(app, type);
        if (!socket) continue;
        const built = (event ??= new EventText(
          type,
          typeof fields === 'function' ? fields() : fields,
          ms,
        ));
        void this.apps.send(socket, type, built.text(app, this.clock), () =>
          built.object(app, this.clock),
        );
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
