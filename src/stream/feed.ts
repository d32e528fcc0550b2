/**
 * The events of one authenticated socket of the live stream, in order (a part of the socket's
 * session, src/stream/connection.ts): subscribed to the hub first (live events are kept
 * meanwhile), then the replay after the `?after=` cursor or the snapshot of the calls in
 * progress, `{"type": "stream.synced", "cursor": …}`, then what was kept that is newer, then live
 * events, each sent once. The send buffer is capped: a client that does not read fast enough
 * (over STREAM_MAX_BUFFERED_BYTES, or more than {@link MAX_PENDING} events kept during the
 * replay) is closed with 4008.
 */
import type { WebSocket } from 'ws';
import { feedCursor } from '../store/events.ts';
import { STREAM_CLOSE } from './close-codes.ts';
import type { StreamHub, StreamItem, StreamSubscriber } from './hub.ts';
import type { StreamMetrics } from './metrics.ts';

/** Most events kept for a socket while its replay runs; past it the socket is slow (4008). */
const MAX_PENDING = 10_000;

/** What a socket's feed needs of its session and of the server. */
export interface SocketFeedDeps {
  ws: WebSocket;
  hub: StreamHub;
  metrics: Pick<StreamMetrics, 'messages'>;
  /** Send buffer cap, bytes (STREAM_MAX_BUFFERED_BYTES). */
  maxBufferedBytes: number;
  /** Ids of the calls in progress for the snapshot (see `StreamServerOptions.liveCalls`). */
  liveCalls: (extension: string | undefined) => string[];
  /** Position of the `?after=` cursor; undefined: the snapshot of the calls in progress. */
  after: number | undefined;
  /** Aborted when the socket goes: ends the wait for the store's commit. */
  leaving: AbortSignal;
  /** True while the socket is open and not closing. */
  isOpen: () => boolean;
  /** Send a control message (JSON) while the socket is open. */
  sendControl: (message: Record<string, unknown>) => void;
  /** Close the socket with a close code. */
  close: (code: number, reason: string) => void;
  /** The socket is gone (found closed once subscribed): the session lets go of it. */
  gone: () => void;
}

/** The hub's subscriber for one socket: catch-up, then live events, in order, each once. */
export class SocketFeed implements StreamSubscriber {
  /** Live events that arrived before the replay finished. */
  private pending: StreamItem[] | undefined = [];
  /** Last position sent (live events at or before it were replayed already). */
  private sentUpTo = 0;
  /** Positions of snapshot events sent (they are not contiguous). */
  private snapshotSent: Set<number> | undefined;
  private subscribed = false;

  /**
   * @param extension the operator extension of the socket; undefined: an admin socket (every
   *   event)
   */
  constructor(
    readonly extension: string | undefined,
    private readonly deps: SocketFeedDeps,
  ) {}

  deliver(item: StreamItem): void {
    if (this.pending) {
      this.pending.push(item);
      if (this.pending.length > MAX_PENDING)
        this.deps.close(STREAM_CLOSE.slowConsumer, 'too many events queued');
      return;
    }
    if (item.position <= this.sentUpTo) return;
    this.sendEvent(item);
    this.checkBuffer();
  }

  /** Stop: unsubscribe from the hub and drop what was kept. */
  stop(): void {
    if (this.subscribed) this.deps.hub.unsubscribe(this);
    this.subscribed = false;
    this.pending = undefined;
  }

  /**
   * Subscribe (live events are kept meanwhile), send the replay or the snapshot, then what was
   * kept that is newer, then go live. Rejects as the hub's replay or snapshot does (the store
   * could not be read, `CommitWaitTimeoutError`, or the `leaving` signal's reason).
   */
  async catchUp(): Promise<void> {
    const { hub, ws, metrics } = this.deps;
    if (!this.deps.isOpen()) return;
    const livePosition = await hub.subscribe(this);
    this.subscribed = true;
    if (!this.deps.isOpen()) {
      this.deps.gone();
      return;
    }
    let synced: number;
    if (this.deps.after !== undefined) {
      synced = await hub.replay(
        this.deps.after,
        this.extension,
        (item) => {
          if (!this.deps.isOpen()) return false;
          this.sendEvent(item);
          return true;
        },
        () => this.drained(),
        this.deps.leaving,
      );
    } else {
      const items = await hub.snapshot(
        this.deps.liveCalls(this.extension),
        this.extension,
        this.deps.leaving,
      );
      this.snapshotSent = new Set();
      for (const item of items) {
        if (!this.deps.isOpen()) return;
        this.snapshotSent.add(item.position);
        ws.send(item.text);
        metrics.messages.inc();
      }
      synced = livePosition;
      this.sentUpTo = livePosition;
    }
    if (!this.deps.isOpen()) return;
    this.sentUpTo = Math.max(this.sentUpTo, synced);
    const kept = this.pending ?? [];
    this.pending = undefined;
    const newer = kept.filter(
      (item) => item.position > this.sentUpTo && !this.snapshotSent?.has(item.position),
    );
    this.snapshotSent = undefined;
    this.deps.sendControl({ type: 'stream.synced', cursor: feedCursor(this.sentUpTo) });
    for (const item of newer) this.sendEvent(item);
    this.checkBuffer();
  }

  private sendEvent(item: StreamItem): void {
    this.sentUpTo = Math.max(this.sentUpTo, item.position);
    this.deps.ws.send(item.text);
    this.deps.metrics.messages.inc();
  }

  private checkBuffer(): void {
    if (this.deps.ws.bufferedAmount > this.deps.maxBufferedBytes)
      this.deps.close(STREAM_CLOSE.slowConsumer, 'the client does not read fast enough');
  }

  /** Resolves once what was sent so far left the engine (false: the socket closed). */
  private drained(): Promise<boolean> {
    if (!this.deps.isOpen()) return Promise.resolve(false);
    // A ping's callback runs once it (and everything sent before it) was written out.
    return new Promise((resolve) => {
      this.deps.ws.ping(undefined, undefined, (err) => resolve(!err && this.deps.isOpen()));
    });
  }
}
