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
 */
import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { LifecycleEvent, LifecycleEventType } from '../events/types.ts';
import { affectedRows, compiledStatement } from './compiled.ts';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.ts';
import { isUniqueViolation, StoreConflictError } from './errors.ts';
import type { StoreDialect } from './migrations.ts';
import type { Database, EventsTable, WebhookDeliveriesTable } from './schema.ts';
import { toIsoTime } from './schema.ts';
import type { TimeInput } from './calls.ts';
import type { OutboxPositions, PositionedEvent } from './outbox-positions.ts';

/** Largest page of the feed, the delivery log and {@link EventRepository.claimDue}. */
export const MAX_EVENTS_PAGE = 1000;

/** Default lease of {@link EventRepository.claimDue}, ms. */
export const DEFAULT_CLAIM_LEASE_MS = 60_000;

/** Key of the PostgreSQL advisory lock that serialises outbox inserts ("ARICRMEV"). */
const OUTBOX_LOCK_KEY = 0x415249434d4556n;

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

// Hot statements (throughput: run for every event of every call), compiled once per
// dialect instance (./compiled.ts). Each `build` passes its values to Kysely unchanged.

/** The columns of a new event row that its writer gives (status and attempts are the statement's). */
type NewEventRow = Pick<
  EventsTable,
  | 'event_id'
  | 'call_id'
  | 'type'
  | 'sequence'
  | 'occurred_at'
  | 'payload'
  | 'next_attempt_at'
  | 'created_at'
>;

/** Append one event, pending and due at `next_attempt_at`; an event id already stored is skipped. */
const insertEvent = compiledStatement('events.insert', (db, row: NewEventRow) =>
  db
    .insertInto('events')
    .values({ ...row, status: 'pending', attempts: 0 })
    .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** Insert an event not to be sent (no webhook URL configured), settled when stored. */
const insertSkippedEvent = compiledStatement(
  'events.insert-skipped',
  (db, row: NewEventRow & { settled_at: string }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'skipped', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** {@link insertEvent} at an outbox position the engine assigned (SQLite). */
const insertEventAt = compiledStatement(
  'events.insert-at',
  (db, row: NewEventRow & { id: number }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'pending', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

/** {@link insertSkippedEvent} at an outbox position the engine assigned (SQLite). */
const insertSkippedEventAt = compiledStatement(
  'events.insert-skipped-at',
  (db, row: NewEventRow & { settled_at: string; id: number }) =>
    db
      .insertInto('events')
      .values({ ...row, status: 'skipped', attempts: 0 })
      .onConflict((oc) => oc.column('event_id').doNothing()),
);

type RetryParams = {
  event_id: string;
  next_attempt_at: string;
  last_error: string;
  last_status: number | null;
};

/** Keep a pending event pending, due again at `next_attempt_at`, remembering the error. */
const markRetryStatement = compiledStatement('events.mark-retry', (db, p: RetryParams) =>
  db
    .updateTable('events')
    .set({
      next_attempt_at: p.next_attempt_at,
      last_error: p.last_error,
      last_status: p.last_status,
    })
    .where('event_id', '=', p.event_id)
    .where('status', '=', 'pending'),
);

/** {@link markRetryStatement} that also stores the attempt count. */
const markRetryWithAttemptsStatement = compiledStatement(
  'events.mark-retry-attempts',
  (db, p: RetryParams & { attempts: number }) =>
    db
      .updateTable('events')
      .set({
        next_attempt_at: p.next_attempt_at,
        last_error: p.last_error,
        last_status: p.last_status,
        attempts: p.attempts,
      })
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending'),
);

/**
 * pending → delivered at `at`, with the HTTP status, raising the attempt count to `attempts`
 * (never lowering it: 0 keeps it).
 */
const markDeliveredStatement = compiledStatement(
  'events.mark-delivered',
  (db, p: { event_id: string; last_status: number | null; at: string; attempts: number }) =>
    db
      .updateTable('events')
      .set((eb) => ({
        status: 'delivered',
        last_status: p.last_status,
        last_error: null,
        delivered_at: p.at,
        settled_at: p.at,
        attempts: eb
          .case()
          .when('attempts', '<', p.attempts)
          .then(eb.val(p.attempts))
          .else(eb.ref('attempts'))
          .end(),
      }))
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending'),
);

/** Raise a pending event's attempt count (never lowers it). */
const setAttemptsStatement = compiledStatement(
  'events.set-attempts',
  (db, p: { event_id: string; attempts: number }) =>
    db
      .updateTable('events')
      .set({ attempts: p.attempts })
      .where('event_id', '=', p.event_id)
      .where('status', '=', 'pending')
      .where('attempts', '<', p.attempts),
);

/** Log one delivery attempt. */
const insertDeliveryStatement = compiledStatement(
  'webhook_deliveries.insert',
  (db, row: Required<Omit<Insertable<WebhookDeliveriesTable>, 'id'>>) =>
    db.insertInto('webhook_deliveries').values(row),
);

/** Raise an event's attempt count, any status (never lowers it). */
const raiseAttemptsStatement = compiledStatement(
  'events.raise-attempts',
  (db, p: { event_id: string; attempts: number }) =>
    db
      .updateTable('events')
      .set({ attempts: p.attempts })
      .where('event_id', '=', p.event_id)
      .where('attempts', '<', p.attempts),
);

/**
 * How {@link EventRepository.appendEvents} numbers the events it writes and reports them
 * (src/store/store.ts binds the repositories with these).
 */
export interface AppendHooks {
  /** SQLite: the engine's outbox numbering (absent on PostgreSQL, where the database numbers). */
  positions?: OutboxPositions;
  /**
   * Transaction-bound repository: told of the positions `appendEvents` allocated itself, at once;
   * the owner of the transaction settles them (`committed` or `abandoned`) when it ends. A
   * store-bound repository settles its own.
   */
  allocated?: (positions: readonly number[]) => void;
  /**
   * Told after the statements of `appendEvents` ran, with the events at their positions
   * (undefined on PostgreSQL): on a store-bound repository they are committed then; on a
   * transaction-bound one, once the owner's transaction commits.
   */
  appended?: (items: readonly PositionedEvent[] | undefined) => void;
}

/** The outbox repository over `db` (a Kysely instance or a transaction). */
export function createEventRepository(
  db: Kysely<Database>,
  dialect: StoreDialect,
  connector?: ConnectorOutboxTarget,
  hooks: AppendHooks = {},
): EventRepository {
  /** The engine's numbering once started (the store was migrated); else the database numbers. */
  const numbering = (): OutboxPositions | undefined =>
    hooks.positions?.started ? hooks.positions : undefined;
  async function inTransaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return db.isTransaction ? fn(db) : db.transaction().execute(fn);
  }

  async function settle(
    eventId: string,
    set: {
      status: OutboxStatus;
      last_error?: string | null;
      last_status?: number | null;
      delivered_at?: string | null;
      settled_at: string;
    },
  ): Promise<boolean> {
    const result = await db
      .updateTable('events')
      .set(set)
      .where('event_id', '=', eventId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  return {
    async appendEvents(events, now, options) {
      if (events.length === 0) return;
      const createdAt = toIsoTime(now ?? Date.now());
      const skip = options?.skipDelivery === true;
      const own = !db.isTransaction;
      // SQLite: the positions given (the journal's), or allocated now; in the store's own
      // transaction below they are allocated while it holds the connection.
      let at: readonly number[] | undefined;
      let allocated: number[] = [];
      const positions = numbering();
      const place = (): readonly number[] | undefined => {
        if (!positions) return undefined;
        if (options?.positions) {
          if (options.positions.length !== events.length)
            throw new RangeError(
              `${options.positions.length} positions given for ${events.length} events`,
            );
          positions.observe(options.positions);
          return options.positions;
        }
        allocated = positions.allocate(events.length);
        if (!own) hooks.allocated?.(allocated);
        return allocated;
      };
      try {
        await inTransaction(async (trx) => {
          at = place();
          if (dialect === 'postgres') {
            await sql`select pg_advisory_xact_lock(${sql.lit(OUTBOX_LOCK_KEY.toString())}::bigint)`.execute(
              trx,
            );
          }
          for (let i = 0; i < events.length; i++) {
            const event = events[i]!;
            const row = {
              event_id: event.id,
              call_id: event.callId,
              type: event.type,
              sequence: event.sequence,
              occurred_at: toIsoTime(event.occurredAt),
              payload: JSON.stringify(event),
              next_attempt_at: createdAt,
              created_at: createdAt,
            };
            const id = at?.[i];
            if (id !== undefined) {
              if (skip) await insertSkippedEventAt.run(trx, { ...row, settled_at: createdAt, id });
              else await insertEventAt.run(trx, { ...row, id });
            } else if (skip) await insertSkippedEvent.run(trx, { ...row, settled_at: createdAt });
            else await insertEvent.run(trx, row);
            if (connector?.types.has(event.type))
              await trx
                .insertInto('connector_outbox')
                .values({
                  connector: connector.name,
                  event_id: event.id,
                  call_id: event.callId,
                  sequence: event.sequence,
                  status: 'pending',
                  attempts: 0,
                  next_attempt_at: createdAt,
                  created_at: createdAt,
                })
                .onConflict((oc) => oc.columns(['connector', 'event_id']).doNothing())
                .execute();
          }
        });
      } catch (err) {
        if (own && allocated.length > 0) positions?.abandoned(allocated);
        if (isUniqueViolation(err)) {
          throw new StoreConflictError(
            'an event with this call id and sequence is already stored under another event id',
            { cause: err },
          );
        }
        throw err;
      }
      const placed = at;
      const items = placed?.map((position, i) => ({ position, event: events[i]! }));
      if (own && items) positions?.committed(items);
      hooks.appended?.(items);
    },

    async claimDue(now, limit, leaseMs = DEFAULT_CLAIM_LEASE_MS) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      if (!Number.isFinite(leaseMs) || leaseMs < 0) {
        throw new RangeError(`leaseMs must be a non-negative number, got ${leaseMs}`);
      }
      const nowMs = new Date(toIsoTime(now)).getTime();
      const nowIso = toIsoTime(nowMs);
      return inTransaction(async (trx) => {
        let query = trx
          .selectFrom('events as e')
          .selectAll('e')
          .where('e.status', '=', 'pending')
          .where('e.next_attempt_at', '<=', nowIso)
          // Kysely's expression builder is documented to be destructured (its helpers are bound).
          // eslint-disable-next-line @typescript-eslint/unbound-method
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('events as p')
                  .select('p.id')
                  .whereRef('p.call_id', '=', 'e.call_id')
                  .where('p.status', '=', 'pending')
                  .whereRef('p.sequence', '<', 'e.sequence'),
              ),
            ),
          )
          .orderBy('e.id')
          .limit(limit);
        if (dialect === 'postgres') query = query.forUpdate().skipLocked();
        const rows = await query.execute();
        if (rows.length === 0) return [];
        const leasedUntil = toIsoTime(nowMs + leaseMs);
        await trx
          .updateTable('events')
          .set({ next_attempt_at: leasedUntil })
          .where(
            'event_id',
            'in',
            rows.map((row) => row.event_id),
          )
          .execute();
        return rows.map((row) => toOutboxEvent({ ...row, next_attempt_at: leasedUntil }));
      });
    },

    async loadPending() {
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('status', '=', 'pending')
        .orderBy('id')
        .execute();
      return rows.map(toOutboxEvent);
    },

    async getEvent(eventId) {
      const row = await db
        .selectFrom('events')
        .selectAll()
        .where('event_id', '=', eventId)
        .executeTakeFirst();
      return row && toOutboxEvent(row);
    },

    async markDelivered(eventId, status, now, attempts) {
      const delivered = {
        event_id: eventId,
        last_status: status ?? null,
        at: toIsoTime(now ?? Date.now()),
      };
      const result = await markDeliveredStatement.run(db, {
        ...delivered,
        attempts: attempts ?? 0,
      });
      return affectedRows(result) > 0;
    },

    async markRetry(eventId, nextAttemptAt, error, status, attempts) {
      const retry = {
        event_id: eventId,
        next_attempt_at: toIsoTime(nextAttemptAt),
        last_error: error,
        last_status: status ?? null,
      };
      const result = await (attempts === undefined
        ? markRetryStatement.run(db, retry)
        : markRetryWithAttemptsStatement.run(db, { ...retry, attempts }));
      return affectedRows(result) > 0;
    },

    async setAttempts(eventId, attempts) {
      const result = await setAttemptsStatement.run(db, { event_id: eventId, attempts });
      return affectedRows(result) > 0;
    },

    markDead(eventId, reason, now) {
      return settle(eventId, {
        status: 'dead',
        last_error: reason,
        settled_at: toIsoTime(now ?? Date.now()),
      });
    },

    markRejected(eventId, status, error, now) {
      return settle(eventId, {
        status: 'rejected',
        last_status: status,
        last_error: error,
        settled_at: toIsoTime(now ?? Date.now()),
      });
    },

    async recordAttempt(input) {
      if (!Number.isInteger(input.attempt) || input.attempt < 1) {
        throw new RangeError(`attempt must be a positive integer, got ${input.attempt}`);
      }
      await inTransaction(async (trx) => {
        await insertDeliveryStatement.run(trx, {
          event_id: input.eventId,
          attempt: input.attempt,
          url: input.url ?? null,
          at: toIsoTime(input.at ?? Date.now()),
          outcome: input.outcome,
          status_code: input.statusCode ?? null,
          error: input.error ?? null,
          duration_ms: Math.max(0, Math.round(input.durationMs)),
        });
        if (input.raiseAttempts !== false)
          await raiseAttemptsStatement.run(trx, {
            event_id: input.eventId,
            attempts: input.attempt,
          });
      });
    },

    async pending() {
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('status', '=', 'pending')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async feed({ after, limit }) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      const afterId = after === undefined ? 0 : decodeCursor('feed', after, ['number'] as const)[0];
      let query = db.selectFrom('events').selectAll().where('id', '>', afterId);
      // SQLite: nothing after a position that may still commit (positions commit out of order).
      const positions = numbering();
      if (positions) query = query.where('id', '<=', positions.committedThrough);
      const rows = await query.orderBy('id').limit(limit).execute();
      const items = rows.map((row) => ({
        cursor: encodeCursor('feed', [Number(row.id)]),
        event: JSON.parse(row.payload) as LifecycleEvent,
        status: row.status as OutboxStatus,
      }));
      const last = items[items.length - 1];
      return { items, nextCursor: last ? last.cursor : encodeCursor('feed', [afterId]) };
    },

    async head() {
      const positions = numbering();
      if (positions) return encodeCursor('feed', [positions.committedThrough]);
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('last'))
        .executeTakeFirst();
      return encodeCursor('feed', [Number(row?.last ?? 0)]);
    },

    async callEvents(callIds) {
      if (callIds.length > MAX_EVENTS_PAGE)
        throw new RangeError(`at most ${MAX_EVENTS_PAGE} call ids, got ${callIds.length}`);
      if (callIds.length === 0) return [];
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('call_id', 'in', [...callIds])
        .orderBy('id')
        .execute();
      return rows.map((row) => ({
        cursor: encodeCursor('feed', [Number(row.id)]),
        event: JSON.parse(row.payload) as LifecycleEvent,
        status: row.status as OutboxStatus,
      }));
    },

    async deliveries({ status, limit, cursor }) {
      checkLimit(limit, MAX_EVENTS_PAGE);
      let query = db
        .selectFrom('webhook_deliveries as d')
        .innerJoin('events as e', 'e.event_id', 'd.event_id')
        .select([
          'd.id',
          'd.event_id',
          'e.call_id',
          'e.type',
          'd.attempt',
          'd.url',
          'd.at',
          'd.outcome',
          'd.status_code',
          'd.error',
          'd.duration_ms',
        ]);
      if (status === 'delivered') query = query.where('d.outcome', '=', 'delivered');
      if (status === 'failed') query = query.where('d.outcome', 'in', ['failed', 'rejected']);
      if (cursor !== undefined) {
        const [beforeId] = decodeCursor('deliveries', cursor, ['number'] as const);
        query = query.where('d.id', '<', beforeId);
      }
      const rows = await query
        .orderBy('d.id', 'desc')
        .limit(limit + 1)
        .execute();
      const page = rows.slice(0, limit);
      const items = page.map((row) => {
        const item: DeliveryRecord = {
          eventId: row.event_id,
          callId: row.call_id,
          eventType: row.type as LifecycleEventType,
          attempt: Number(row.attempt),
          at: row.at,
          outcome: row.outcome as AttemptOutcome,
          durationMs: Number(row.duration_ms),
        };
        if (row.url !== null) item.url = row.url;
        if (row.status_code !== null) item.statusCode = Number(row.status_code);
        if (row.error !== null) item.error = row.error;
        return item;
      });
      const last = page[page.length - 1];
      return rows.length > limit && last
        ? { items, nextCursor: encodeCursor('deliveries', [Number(last.id)]) }
        : { items };
    },
  };
}

function toOutboxEvent(row: Selectable<EventsTable>): OutboxEvent {
  const out: OutboxEvent = {
    seq: Number(row.id),
    event: JSON.parse(row.payload) as LifecycleEvent,
    body: row.payload,
    status: row.status as OutboxStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
  };
  if (row.last_error !== null) out.lastError = row.last_error;
  if (row.last_status !== null) out.lastStatus = Number(row.last_status);
  if (row.delivered_at !== null) out.deliveredAt = row.delivered_at;
  if (row.settled_at !== null) out.settledAt = row.settled_at;
  return out;
}

/**
 * The outbox position (global event id) a feed cursor stands for: cursors of later events give
 * greater numbers (the live stream compares them to skip what it already sent).
 *
 * @throws InvalidCursorError on a cursor the feed did not issue
 */
export function feedPosition(cursor: string): number {
  return decodeCursor('feed', cursor, ['number'] as const)[0];
}

/** The feed cursor of outbox position `position` (inverse of {@link feedPosition}). */
export function feedCursor(position: number): string {
  return encodeCursor('feed', [position]);
}
