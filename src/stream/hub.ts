/**
 * The live stream's hub: follows the outbox (the stored lifecycle events, the pull feed of
 * `GET /v1/events`) and hands each new event, in outbox order and with its feed cursor, to the
 * connected sockets it is for: every admin socket, and the sockets of the operators it involves
 * (src/stream/involvement.ts).
 *
 * How it learns of new events:
 * - SQLite: the engine numbers the outbox itself (src/store/outbox-positions.ts) and hands the
 *   hub each event, at its outbox position and in position order, the moment it is durable (in
 *   the journal log, or committed): the same moment the webhook dispatcher gets it, with no read
 *   of the store. A message's cursor is the event's outbox cursor.
 * - PostgreSQL: the store tells it after every commit that appended events
 *   (`Store.onEventsAppended`), and it then reads the feed on from the last position it handed
 *   out; it also reads every `pollIntervalMs` (events of another engine instance sharing the
 *   store).
 * It follows only while sockets are connected: the first subscriber starts it at the outbox's
 * end, the last one leaving stops it.
 *
 * Replay (`?after=`) and the snapshot of calls in progress read the store for one socket
 * ({@link StreamHub.replay}, {@link StreamHub.snapshot}); the socket subscribes first and keeps
 * what arrives meanwhile, then skips what the replay already sent (src/stream/feed.ts). On
 * SQLite they first wait until everything handed out live so far is committed, so the stored
 * events reach at least where the live ones start. While the store cannot commit (a full disk,
 * the journal retrying) that wait lasts: the socket's `signal` ends it when the socket goes
 * (nothing of the socket is kept until the store recovers), and past `commitWaitMs` it fails
 * with {@link CommitWaitTimeoutError}.
 */
import type { Logger } from '../logging/logger.ts';
import { feedCursor, feedPosition } from '../store/events.ts';
import type { EventRepository, FeedItem } from '../store/index.ts';
import type { LiveOutbox, PositionedEvent } from '../store/outbox-positions.ts';
import { Involvement, type StreamEvent } from './involvement.ts';

/** One event as the stream sends it. */
export interface StreamItem {
  /** Outbox position (the feed cursor's number); greater is later. */
  position: number;
  /** The feed cursor (resume with `?after=`). */
  cursor: string;
  event: StreamEvent;
  /** The message: `{"cursor": …, …the event's envelope}` as JSON text, made once per event. */
  text: string;
}

/** A connected socket as the hub sees it. */
export interface StreamSubscriber {
  /** The operator extension it is for; undefined: an admin socket (every event). */
  readonly extension: string | undefined;
  /** Takes one event (in outbox order). Must not throw. */
  deliver(item: StreamItem): void;
}

/** What the hub needs. */
export interface StreamHubDeps {
  events: Pick<EventRepository, 'feed' | 'head' | 'callEvents'>;
  /** Subscribe to "events were committed" (`Store.onEventsAppended`); returns the unsubscribe. */
  onAppended: (listener: () => void) => () => void;
  /**
   * SQLite: the engine's outbox numbering (`Store.outboxPositions`): events are taken from it as
   * they become durable instead of read after each commit. Absent (PostgreSQL): read.
   */
  live?: LiveOutbox;
  /**
   * The extensions a call involves (its legs' extensions, who answered, who placed it), from the
   * engine's memory or the store; undefined for an unknown call.
   */
  callExtensions: (callId: string) => Promise<readonly string[] | undefined>;
  /** Read the feed this often while sockets are connected, ms (STREAM_POLL_INTERVAL_MS). */
  pollIntervalMs: number;
  logger: Logger;
  /** Feed page size; default 500. */
  pageSize?: number;
  /**
   * SQLite: longest a replay or snapshot waits for the store to commit the events already sent
   * live, ms (STREAM_COMMIT_WAIT_MS); past it they throw {@link CommitWaitTimeoutError}.
   * Undefined: no bound.
   */
  commitWaitMs?: number;
}

/**
 * A replay or snapshot waited `commitWaitMs` for the store to commit the events already sent
 * live, and it did not (the store is failing or stalled): the socket should try again later.
 */
export class CommitWaitTimeoutError extends Error {
  override readonly name = 'CommitWaitTimeoutError';
  constructor(readonly waitedMs: number) {
    super(`the store did not commit the events sent live within ${waitedMs} ms`);
  }
}

/** Make the message text of a feed item. */
export function streamItem(item: Pick<FeedItem, 'cursor' | 'event'>): StreamItem {
  const envelope = JSON.stringify(item.event);
  return {
    position: feedPosition(item.cursor),
    cursor: item.cursor,
    event: item.event,
    text: `{"cursor":${JSON.stringify(item.cursor)},${envelope.slice(1)}`,
  };
}

/** Follows the outbox and fans events out to subscribers. */
export class StreamHub {
  private readonly admins = new Set<StreamSubscriber>();
  private readonly operators = new Map<string, Set<StreamSubscriber>>();
  private count = 0;
  /** The tracker of the events handed out (also consulted by replays). */
  private involvement = new Involvement();
  /** Last position handed out; undefined while not following. */
  private position: number | undefined;
  private starting: Promise<number> | undefined;
  /** Bumped at every start and stop: a read of an earlier run gives up. */
  private run = 0;
  private reading = false;
  private again = false;
  private unlisten: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** SQLite: events handed over and not yet fanned out (one waits for a call lookup). */
  private queue: PositionedEvent[] = [];
  /**
   * The run whose {@link drain} is going on, if any. Per run: a drain of a stopped run may still
   * wait for a call lookup when a new run starts, and must not keep the new run's events waiting.
   */
  private drainingRun: number | undefined;
  private readonly pageSize: number;

  constructor(private readonly deps: StreamHubDeps) {
    this.pageSize = deps.pageSize ?? 500;
  }

  /** Sockets subscribed. */
  get subscribers(): number {
    return this.count;
  }

  /**
   * Add a subscriber. Resolves with the outbox position from which it gets live events: every
   * event after it is delivered to it (when it is for it), none before.
   */
  async subscribe(subscriber: StreamSubscriber): Promise<number> {
    const { live } = this.deps;
    const position =
      this.position ?? (live ? this.startLive(live) : await (this.starting ??= this.start()));
    if (subscriber.extension === undefined) this.admins.add(subscriber);
    else {
      let set = this.operators.get(subscriber.extension);
      if (!set) this.operators.set(subscriber.extension, (set = new Set()));
      set.add(subscriber);
    }
    this.count++;
    // Events handed out while the start awaited were not for this subscriber yet.
    return Math.max(position, this.position ?? position);
  }

  /** Remove a subscriber (idempotent); the last one stops the hub. */
  unsubscribe(subscriber: StreamSubscriber): void {
    let removed = false;
    if (subscriber.extension === undefined) removed = this.admins.delete(subscriber);
    else {
      const set = this.operators.get(subscriber.extension);
      removed = set?.delete(subscriber) ?? false;
      if (set?.size === 0) this.operators.delete(subscriber.extension);
    }
    if (!removed) return;
    this.count--;
    if (this.count === 0) this.stop();
  }

  /** Read the feed now (the store committed events). */
  kick(): void {
    // SQLite: events come from the engine's numbering (offer), never from a read.
    if (this.position === undefined || this.deps.live) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.readOn();
  }

  /**
   * Send `send` every stored event after position `after` that is for `extension` (undefined:
   * every event), in outbox order, page by page. Resolves with the position read up to (the
   * outbox's end when it finished).
   *
   * @param send sends one event; false: stop (the socket closed)
   * @param drained after each page: resolves true once the socket took what was sent (false:
   *   stop), so a long replay never queues more than a page
   * @param signal aborted when the socket goes: a wait for the commit ends at once
   * @throws CommitWaitTimeoutError when the store did not commit within `commitWaitMs`
   * @throws `signal.reason` when `signal` is aborted during the wait for the commit
   */
  async replay(
    after: number,
    extension: string | undefined,
    send: (item: StreamItem) => boolean,
    drained: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<number> {
    await this.committedSoFar(signal);
    const tracker = new Involvement();
    let position = after;
    for (;;) {
      const page = await this.deps.events.feed({
        after: feedCursor(position),
        limit: this.pageSize,
      });
      for (const item of page.items) {
        const streamed = streamItem(item);
        position = streamed.position;
        if (extension !== undefined) {
          await this.seed(tracker, streamed.event);
          if (!tracker.recipients(streamed.event).includes(extension)) continue;
        }
        if (!send(streamed)) return position;
      }
      if (page.items.length < this.pageSize || !(await drained())) return position;
    }
  }

  /**
   * The stored events of calls in progress (`callIds`) that are for `extension` (undefined:
   * all), in outbox order: what a socket opened without `?after=` gets first (the card of a call
   * ringing when the page was refreshed). `signal` and errors as {@link replay}'s.
   */
  async snapshot(
    callIds: readonly string[],
    extension: string | undefined,
    signal?: AbortSignal,
  ): Promise<StreamItem[]> {
    if (callIds.length === 0) return [];
    await this.committedSoFar(signal);
    const items = await this.deps.events.callEvents(callIds.slice(0, 1000));
    const tracker = new Involvement();
    const out: StreamItem[] = [];
    for (const item of items) {
      const streamed = streamItem(item);
      if (extension !== undefined && !tracker.recipients(streamed.event).includes(extension))
        continue;
      out.push(streamed);
    }
    return out;
  }

  /** Stop following (every subscriber is dropped). */
  close(): void {
    this.admins.clear();
    this.operators.clear();
    this.count = 0;
    this.stop();
  }

  /**
   * SQLite: wait until every event handed out live so far is committed (the stored events then
   * reach at least where a new subscriber's live events start). Ends early when `signal` is
   * aborted (rejects with its reason), and fails past `commitWaitMs`.
   */
  private async committedSoFar(signal?: AbortSignal): Promise<void> {
    const { live, commitWaitMs } = this.deps;
    if (!live) return;
    const position = this.position ?? live.durableThrough;
    if (position <= live.committedThrough) return;
    if (commitWaitMs === undefined) return live.whenCommitted(position, signal);
    const stop = new AbortController();
    const timer = setTimeout(
      () => stop.abort(new CommitWaitTimeoutError(commitWaitMs)),
      commitWaitMs,
    );
    const gone = (): void => stop.abort(signal!.reason);
    if (signal?.aborted) gone();
    else signal?.addEventListener('abort', gone, { once: true });
    try {
      await live.whenCommitted(position, stop.signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', gone);
    }
  }

  private async start(): Promise<number> {
    const run = ++this.run;
    try {
      const position = feedPosition(await this.deps.events.head());
      if (run !== this.run) return position;
      this.position = position;
      this.involvement = new Involvement();
      this.unlisten = this.deps.onAppended(() => this.kick());
      this.poll = setInterval(() => this.kick(), this.deps.pollIntervalMs);
      this.poll.unref();
      // Committed between the head read and the listener: read on at once.
      this.kick();
      return position;
    } finally {
      this.starting = undefined;
    }
  }

  /** SQLite: follow the engine's numbering; every event after the position returned comes live. */
  private startLive(live: LiveOutbox): number {
    const run = ++this.run;
    // Not durableThrough: a position given up at the top may be numbered again after a restart,
    // and a fresh socket's `stream.synced` cursor is this position.
    this.position = live.lastEventThrough;
    this.involvement = new Involvement();
    this.queue = [];
    this.unlisten = live.onDurable((items) => this.offer(items, run));
    return this.position;
  }

  private stop(): void {
    this.run++;
    this.position = undefined;
    this.queue = [];
    this.unlisten?.();
    this.unlisten = undefined;
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
  }

  /** SQLite: events became durable (in position order): fan them out in that order. */
  private offer(items: readonly PositionedEvent[], run: number): void {
    if (run !== this.run) return;
    this.queue.push(...items);
    if (this.drainingRun !== run) void this.drain(run);
  }

  /**
   * Fan the queued events out in order. Synchronous unless an event's call must be looked up
   * (a call the hub has not seen yet that the engine no longer holds).
   */
  private async drain(run: number): Promise<void> {
    this.drainingRun = run;
    try {
      while (run === this.run && this.queue.length > 0) {
        const { position, event } = this.queue.shift()!;
        if (this.position === undefined || position <= this.position) continue;
        if (this.involvement.needsLookup(event)) await this.seed(this.involvement, event);
        if (run !== this.run) return;
        this.position = position;
        this.fanOut(streamItem({ cursor: feedCursor(position), event }));
      }
    } catch (err) {
      this.deps.logger.error('live stream could not hand an event out', { err });
    } finally {
      if (this.drainingRun === run) this.drainingRun = undefined;
    }
  }

  /** Read pages after the position until the outbox's end, handing each event out. */
  private async readOn(): Promise<void> {
    const run = this.run;
    this.reading = true;
    try {
      do {
        this.again = false;
        let full = true;
        while (full && run === this.run && this.position !== undefined) {
          const page = await this.deps.events.feed({
            after: feedCursor(this.position),
            limit: this.pageSize,
          });
          full = page.items.length === this.pageSize;
          for (const item of page.items) {
            if (run !== this.run) return;
            const streamed = streamItem(item);
            if (streamed.position <= this.position) continue;
            await this.seed(this.involvement, streamed.event);
            if (run !== this.run) return;
            this.position = streamed.position;
            this.fanOut(streamed);
          }
        }
      } while (this.again && run === this.run);
    } catch (err) {
      this.deps.logger.error('live stream could not read the stored events; retrying', { err });
    } finally {
      this.reading = false;
      // Asked again while a read of a stopped run was giving up: read for the current run.
      if (run !== this.run && this.again && this.position !== undefined) this.kick();
    }
  }

  /** Give `tracker` the extensions of a call it has not seen, when the event needs them. */
  private async seed(tracker: Involvement, event: StreamEvent): Promise<void> {
    if (!tracker.needsLookup(event)) return;
    const callId = event.callId!;
    if (tracker !== this.involvement && this.involvement.knows(callId)) {
      tracker.seed(callId, this.involvement.extensionsOf(callId));
      return;
    }
    try {
      tracker.seed(callId, (await this.deps.callExtensions(callId)) ?? []);
    } catch (err) {
      this.deps.logger.warn('live stream could not look a call up', { callId, err });
      tracker.seed(callId, []);
    }
  }

  private fanOut(item: StreamItem): void {
    const recipients = this.involvement.recipients(item.event);
    for (const admin of this.admins) admin.deliver(item);
    for (const extension of recipients) {
      const set = this.operators.get(extension);
      if (set) for (const subscriber of set) subscriber.deliver(item);
    }
  }
}
