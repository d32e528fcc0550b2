/**
 * The event outbox (never lost, never reordered within a call): lifecycle events written in the
 * same transaction as the call change that caused
 * them, their delivery state, the per-attempt delivery log, and the pull feed.
 *
 * Event states: `pending` (to deliver) → `delivered` (2xx) | `rejected` (permanent 4xx) |
 * `dead` (too old); `skipped` from the start for events recorded while no webhook URL was
 * configured (never sent, also not when a URL is configured later; the pull feed has them).
 * Only pending events change. Times ISO 8601 UTC; durations milliseconds.
 *
 * Ordering: the global `events.id` is assigned in commit order (SQLite has one writer; on
 * PostgreSQL {@link EventRepository.appendEvents} serialises inserts with a transaction-level
 * advisory lock), so a feed reader that resumes `after` a cursor never misses a later commit.
 *
 * This file: the outbox's types, the repository's contract and {@link createEventRepository},
 * which composes its parts: event-append.ts (appending, outbox positions), event-delivery.ts
 * (claims under a lease, retries, settling, the delivery log's writes), event-feed.ts (the pull
 * feed, the live stream's snapshot, the delivery log's reads), event-rows.ts (feed row mapping
 * and what the parts share); outbox-rows.ts holds what it shares with the connectors' outboxes.
 */
import type { Kysely } from 'kysely';
import type { LifecycleEvent, LifecycleEventType } from '../events/types.ts';
import type { TimeInput } from './calls.ts';
import { eventAppender, type AppendHooks } from './event-append.ts';
import { DEFAULT_CLAIM_LEASE_MS, eventDelivery } from './event-delivery.ts';
import { eventFeed } from './event-feed.ts';
import { createEventContext, MAX_EVENTS_PAGE } from './event-rows.ts';
import type { StoreDialect } from './migrations.ts';
import type { Database } from './schema.ts';

export { DEFAULT_CLAIM_LEASE_MS, MAX_EVENTS_PAGE, type AppendHooks };
export { feedCursor, feedPosition } from './event-feed.ts';

/** Delivery state of an outbox event. */
export type OutboxStatus = 'pending' | 'delivered' | 'dead' | 'rejected' | 'skipped';

/**
 * A CRM connector's delivery target (src/connectors/): events of these types get a row of their
 * own in `connector_outbox`, written in the same transaction as the event (also when the webhook
 * is not configured), so the vendor gets them even after a crash right after the commit.
 */
export interface ConnectorOutboxTarget {
  /** The connector's name, e.g. `retailcrm`. */
  name: string;
  /** The event types it translates (others are never queued for it). */
  types: ReadonlySet<LifecycleEventType>;
}

/** Options of {@link EventRepository.appendEvents}. */
export interface AppendEventsOptions {
  /**
   * Store the events as `skipped` (settled at `now`), never to be sent: they were recorded while
   * no webhook URL was configured. Default false: `pending`.
   */
  skipDelivery?: boolean;
  /**
   * SQLite: the events' outbox positions (`events.id`), one per event, allocated by the caller
   * from `Store.livePositions` (the call journal, whose events are handed to the live stream
   * before they commit). Absent: the repository allocates them itself. Ignored on PostgreSQL.
   */
  positions?: readonly number[];
}

/** One outbox row. Times ISO 8601 UTC. */
export interface OutboxEvent {
  /** Global monotonic id (the feed position). */
  seq: number;
  event: LifecycleEvent;
  /** The exact JSON body to send (the envelope serialised once at append). */
  body: string;
  status: OutboxStatus;
  /** Delivery attempts made so far. */
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
  /** HTTP status of the last answer, if any. */
  lastStatus?: number;
  /** When it was appended to the outbox. */
  createdAt: string;
  deliveredAt?: string;
  /** When it left `pending` (delivered, rejected or dead). */
  settledAt?: string;
}

/** One item of the pull feed. */
export interface FeedItem {
  /** Resume the feed after this item with `after: cursor`. */
  cursor: string;
  event: LifecycleEvent;
  status: OutboxStatus;
}

/** A page of the pull feed; `nextCursor` is always set (the input cursor when nothing is new). */
export interface FeedPage {
  items: FeedItem[];
  nextCursor: string;
}

/** Outcome of one delivery attempt as logged. `failed` will be retried; the others settle. */
export type AttemptOutcome = 'delivered' | 'failed' | 'rejected';

/** One delivery attempt to log with {@link EventRepository.recordAttempt}. */
export interface AttemptInput {
  eventId: string;
  /** Attempt number, 1-based; the event's `attempts` becomes at least this (see `raiseAttempts`). */
  attempt: number;
  /**
   * Raise the event's `attempts` to `attempt` with the log row (default true). False when the
   * caller settles the event with its attempt count right after (`markDelivered(…, attempts)`).
   */
  raiseAttempts?: boolean;
  /** Target URL (per-endpoint log). Must not contain credentials. */
  url?: string;
  /** When the attempt started; default now. */
  at?: TimeInput;
  outcome: AttemptOutcome;
  /** HTTP status code, when the CRM answered. */
  statusCode?: number;
  /** Connection error, timeout or answer snippet. */
  error?: string;
  /** Attempt duration, ms. */
  durationMs: number;
}

/** One row of the delivery log. */
export interface DeliveryRecord {
  eventId: string;
  callId: string;
  eventType: LifecycleEventType;
  attempt: number;
  url?: string;
  at: string;
  outcome: AttemptOutcome;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/** A page of the delivery log, newest first. */
export interface DeliveryPage {
  items: DeliveryRecord[];
  nextCursor?: string;
}

/** The outbox, the delivery log and the pull feed. */
export interface EventRepository {
  /**
   * Append events (in the order given, which must be each call's sequence order), `pending`, or
   * `skipped` with `options.skipDelivery`. Idempotent on the event id: an id already stored is
   * skipped. Runs in the bound transaction, or its own.
   *
   * @throws StoreConflictError when a new event id reuses a stored (call id, sequence)
   */
  appendEvents(
    events: readonly LifecycleEvent[],
    now?: TimeInput,
    options?: AppendEventsOptions,
  ): Promise<void>;
  /**
   * Claim up to `limit` due events: pending, `next_attempt_at <= now`, and the lowest pending
   * sequence of their call (so a call's events never overtake each other). Claimed events are
   * leased: their `next_attempt_at` moves to `now + leaseMs`, so another claimer (another
   * instance on PostgreSQL, which also skips rows locked by concurrent claims) does not take them
   * until the lease expires. Settle or reschedule each with the `mark*` methods. Oldest first.
   *
   * @throws RangeError on a limit outside 1..MAX_EVENTS_PAGE or a negative lease
   */
  claimDue(now: TimeInput, limit: number, leaseMs?: number): Promise<OutboxEvent[]>;
  /** Pending events in outbox order (resume after restart). */
  loadPending(): Promise<OutboxEvent[]>;
  /** One event by its id, any status. */
  getEvent(eventId: string): Promise<OutboxEvent | undefined>;
  /**
   * pending → delivered with the HTTP status. `attempts`, when given, raises the stored attempt
   * count to it in the same statement (never lowers it; one write per delivered webhook instead
   * of two). False when not pending (already settled/unknown).
   */
  markDelivered(
    eventId: string,
    status?: number,
    now?: TimeInput,
    attempts?: number,
  ): Promise<boolean>;
  /**
   * Keep pending, due again at `nextAttemptAt`, remembering the error (and HTTP status).
   * `attempts`, when given, is stored as the attempt count. False when not pending.
   */
  markRetry(
    eventId: string,
    nextAttemptAt: TimeInput,
    error: string,
    status?: number,
    attempts?: number,
  ): Promise<boolean>;
  /** Raise a pending event's attempt count to `attempts` (never lowers it). False when not raised. */
  setAttempts(eventId: string, attempts: number): Promise<boolean>;
  /** pending → dead (undeliverable: too old). False when not pending. */
  markDead(eventId: string, reason: string, now?: TimeInput): Promise<boolean>;
  /** pending → rejected (the CRM refused it with a permanent 4xx). False when not pending. */
  markRejected(eventId: string, status: number, error: string, now?: TimeInput): Promise<boolean>;
  /**
   * Log one delivery attempt and raise the event's attempt count to `attempt`.
   *
   * @throws the driver's foreign-key error when the event does not exist
   */
  recordAttempt(attempt: AttemptInput): Promise<void>;
  /** Number of pending events (outbox depth). */
  pending(): Promise<number>;
  /**
   * The pull feed: every event (any delivery status) after `after`, in outbox order.
   *
   * @throws RangeError on a bad limit; InvalidCursorError on a cursor not issued here
   */
  feed(options: { after?: string; limit: number }): Promise<FeedPage>;
  /**
   * The cursor of the newest stored event (the feed's end): a reader that resumes `after` it
   * gets only events appended later. An empty outbox gives the cursor before the first event.
   */
  head(): Promise<string>;
  /**
   * Every stored event of the given calls, in outbox order, as feed items (the live stream's
   * snapshot of an operator's calls in progress). At most {@link MAX_EVENTS_PAGE} call ids.
   *
   * @throws RangeError on more call ids than that
   */
  callEvents(callIds: readonly string[]): Promise<FeedItem[]>;
  /**
   * The delivery log, newest attempt first. `failed`: attempts that did not deliver (retried or
   * rejected); `delivered`: 2xx attempts.
   *
   * @throws RangeError on a bad limit; InvalidCursorError on a cursor not issued here
   */
  deliveries(options: {
    status?: 'failed' | 'delivered';
    limit: number;
    cursor?: string;
  }): Promise<DeliveryPage>;
}

/** The outbox repository over `db` (a Kysely instance or a transaction). */
export function createEventRepository(
  db: Kysely<Database>,
  dialect: StoreDialect,
  connector?: ConnectorOutboxTarget,
  hooks: AppendHooks = {},
): EventRepository {
  const context = createEventContext(db, dialect, hooks.positions);
  return {
    ...eventAppender(context, connector, hooks),
    ...eventDelivery(context),
    ...eventFeed(context),
  };
}
