/**
 * The gateway's event side, past the WebSocket (`connection.ts` hands every message to
 * {@link EventDispatcher.receive}):
 *
 * - Slicing: the messages of one socket read are handled as they come until `sliceMs` of
 *   handling is spent; the rest wait, in order, for the next turns of the event loop, so the HTTP
 *   API, REST answers and timers are served between slices.
 * - Parsing: a message that is not a JSON object with a `type` is dropped; a type outside
 *   {@link ARI_EVENT_TYPES} is logged (once per type, `ApplicationReplaced` always, as a warning)
 *   and counted, never dispatched.
 * - Dispatch: every `onEvent` listener, then the listeners of the event's channels
 *   (`listeners.ts`), synchronously, in order; a throwing or rejecting listener is logged,
 *   counted and reported to `onHandlerError`, and the others still get the event.
 */
import type WebSocket from 'ws';
import type { Logger } from '../logging/logger.ts';
import { ChannelListenerRegistry } from './listeners.ts';
import type { AriMetrics } from './metrics.ts';
import { ARI_EVENT_TYPES, type AriEvent, type AriEventListener } from './types.ts';

/** What {@link EventDispatcher} needs. */
export interface EventDispatcherOptions {
  /** The Stasis application, for the log. */
  app: string;
  log: Logger;
  metrics: AriMetrics;
  /** Longest run of event handling in one go, ms; `Infinity` handles every event as it arrives. */
  sliceMs: number;
  /** How long a channel's listeners outlive its StasisEnd when no ChannelDestroyed comes, ms. */
  channelListenerGraceMs: number;
  /** Called (after logging and counting) when a listener throws or rejects. */
  onHandlerError?: (err: unknown, event: AriEvent) => void;
}

const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set<string>(ARI_EVENT_TYPES);
/** Takes a handled message's place in the inbox, so its bytes can be collected. */
const EMPTY_MESSAGE: WebSocket.RawData = Buffer.alloc(0);

/** The listeners of the gateway's events and the messages on their way to them. */
export class EventDispatcher {
  private readonly log: Logger;
  private readonly metrics: AriMetrics;
  private readonly eventSliceMs: number;
  private readonly eventListeners = new Set<{ listener: AriEventListener }>();
  private readonly registry: ChannelListenerRegistry;
  private readonly loggedUnknownTypes = new Set<string>();
  /** Received WebSocket messages not handled yet, in order ({@link receive}). */
  private inbox: WebSocket.RawData[] = [];
  private inboxHead = 0;
  /** A slice of the inbox is due on the next turn (`setImmediate`). */
  private inboxScheduled: NodeJS.Immediate | undefined;
  /** Messages of the current socket read are being handled since `sliceStartedAt` (ms). */
  private sliceOpen = false;
  private sliceStartedAt = 0;

  constructor(private readonly options: EventDispatcherOptions) {
    this.log = options.log;
    this.metrics = options.metrics;
    this.eventSliceMs = options.sliceMs;
    this.registry = new ChannelListenerRegistry({
      graceMs: options.channelListenerGraceMs,
      onCountChange: (n) => this.metrics.channelListeners.set(n),
    });
  }

  /** `AriGateway.onEvent`: every event, until the returned function is called or stop(). */
  onEvent(listener: AriEventListener): () => void {
    const entry = { listener };
    this.eventListeners.add(entry);
    return () => void this.eventListeners.delete(entry);
  }

  /** `AriGateway.onChannel`: the events of one channel ({@link ChannelListenerRegistry}). */
  onChannel(channelId: string, listener: AriEventListener): () => void {
    return this.registry.add(channelId, listener);
  }

  /** Forget every listener (the gateway stopped). */
  clear(): void {
    this.eventListeners.clear();
    this.registry.clear();
  }

  /**
   * Take a WebSocket message. ws emits the messages of one socket read one after the other,
   * synchronously; they are handled as they come until `eventSliceMs` of this read's handling is
   * spent (the slice closes when control returns to the event loop), then they wait, in order,
   * for the next turns of the event loop (`setImmediate`: after the timers and the I/O that is
   * ready), a slice per turn.
   */
  receive(data: WebSocket.RawData): void {
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

  /**
   * Handle waiting messages in order for up to `budgetMs`; schedule the rest. `Infinity` handles
   * them all now (at stop, and when the WebSocket drops, before anyone hears of it).
   */
  drainInbox(budgetMs: number): void {
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
          app: this.options.app,
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
}

/** The id of the event's `channel` (or `peer`), for the log of a failed listener. */
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
