/**
 * A durable {@link EventQueue} over the store's outbox (delivery resumes after a
 * restart; nothing is lost). It keeps the dispatcher's working set (per-call FIFOs of
 * pending events) in memory, as the synchronous `EventQueue` contract requires, reloads it from
 * the outbox at {@link DurableEventQueue.open}, and persists every change write-behind, in call
 * order, through one promise chain ({@link DurableEventQueue.flush} waits for it).
 *
 * Why this is safe: the event itself is expected to be in the outbox already (appended in the
 * transaction of the call change, `Store.transaction`); `append` re-inserts it idempotently by
 * event id, so it is durable even when it was not. A settle that was not yet written when the
 * process died only causes a redelivery after the restart, which at-least-once allows (the
 * event id is the idempotency key). A failed write is logged at error and counted
 * ({@link DurableEventQueue.writeFailures}); delivery goes on from memory.
 *
 * The dispatcher passes each settlement (`removeHead`), retry schedule (`update`) and attempt
 * (`recordAttempt`), which become the event's status and the delivery log; a `removeHead`
 * without a settlement is recorded as `delivered` without a status code. Single process only:
 * several instances on one PostgreSQL must not each open a queue (they would all deliver every
 * pending event); they need a claim-based pump over `EventRepository.claimDue` (docs/store.md).
 */
import type {
  AttemptInfo,
  EventQueue,
  QueuedEvent,
  RetryInfo,
  Settlement,
} from '../events/queue.ts';
import type { Logger } from '../logging/logger.ts';
import type { EventRepository } from './events.ts';

export type { AttemptInfo, RetryInfo, Settlement } from '../events/queue.ts';

/**
 * What the queue reads and writes: the webhook outbox (`EventRepository`) or a CRM connector's
 * outbox (`createConnectorOutbox`, src/store/connector-outbox.ts).
 */
export type OutboxRepository = Pick<
  EventRepository,
  | 'appendEvents'
  | 'loadPending'
  | 'markDelivered'
  | 'markRetry'
  | 'setAttempts'
  | 'markDead'
  | 'markRejected'
  | 'recordAttempt'
>;

/** The queue contract with every optional part implemented. */
export interface SettlingEventQueue extends EventQueue {
  recordAttempt(entry: QueuedEvent, attempt: AttemptInfo): void;
  flush(): Promise<void>;
}

/** Options of {@link DurableEventQueue.open}. */
export interface DurableEventQueueOptions {
  logger: Logger;
  /** Webhook URL written into the delivery log (credentials are stripped). */
  url?: string;
  /**
   * Whether `append` writes the event (idempotently by event id). Default true. False when
   * every event is already in the outbox before it is queued (the call journal commits it with
   * the call's state change first), which saves one write per event.
   */
  persistAppends?: boolean;
  /**
   * Run writes in one transaction (`(fn) => store.writeBatch((repos) => fn(repos.events))`);
   * without it every write commits on its own.
   */
  transaction?: (fn: (events: OutboxRepository) => Promise<void>) => Promise<void>;
}

/** The durable queue (see the module comment). */
export class DurableEventQueue implements SettlingEventQueue {
  /** Its events are pending in the outbox until settled: the next start resumes them. */
  readonly durable = true;
  private readonly fifos = new Map<string, QueuedEvent[]>();
  private count = 0;
  private tail: Promise<void> = Promise.resolve();
  private pendingWrites: Array<{
    op: string;
    eventId: string;
    write: (events: OutboxRepository) => Promise<unknown>;
  }> = [];
  private batchScheduled = false;
  /** Attempt numbers already written by `recordAttempt`, per event still queued. */
  private readonly recordedAttempts = new Map<string, number>();
  private failures = 0;
  private readonly url: string | undefined;

  private constructor(
    private readonly events: OutboxRepository,
    private readonly logger: Logger,
    url: string | undefined,
    private readonly persistAppends: boolean,
    private readonly transaction: DurableEventQueueOptions['transaction'],
  ) {
    this.url = url === undefined ? undefined : stripCredentials(url);
  }

  /**
   * Load the pending events of the outbox, each call's FIFO in sequence order, calls in the
   * order of their oldest event. Pass the result as `queue` to `createWebhookDispatcher`, which
   * resumes them.
   *
   * @throws the store's error when the outbox cannot be read (start-up must fail)
   */
  static async open(
    events: OutboxRepository,
    options: DurableEventQueueOptions,
  ): Promise<DurableEventQueue> {
    const queue = new DurableEventQueue(
      events,
      options.logger,
      options.url,
      options.persistAppends ?? true,
      options.transaction,
    );
    for (const row of await events.loadPending()) {
      queue.push({
        event: row.event,
        body: row.body,
        enqueuedAt: Date.parse(row.createdAt),
        attempts: row.attempts,
      });
    }
    for (const fifo of queue.fifos.values())
      fifo.sort((a, b) => a.event.sequence - b.event.sequence);
    return queue;
  }

  /** Writes that failed since the queue was opened (each was logged at error). */
  get writeFailures(): number {
    return this.failures;
  }

  append(entry: QueuedEvent): void {
    this.push(entry);
    if (!this.persistAppends) return;
    const ms = entry.enqueuedAt;
    this.persist('append', entry.event.id, (events) => events.appendEvents([entry.event], ms));
  }

  head(callId: string): QueuedEvent | undefined {
    return this.fifos.get(callId)?.[0];
  }

  update(entry: QueuedEvent, retry?: RetryInfo): void {
    const { id } = entry.event;
    const attempts = entry.attempts;
    if (retry) {
      this.persist('retry', id, (events) =>
        events.markRetry(id, retry.nextAttemptAt, retry.error, retry.status, attempts),
      );
    } else {
      this.persist('update', id, (events) => events.setAttempts(id, attempts));
    }
  }

  removeHead(callId: string, eventId: string, settlement?: Settlement): void {
    const fifo = this.fifos.get(callId);
    const head = fifo?.[0];
    if (!fifo || !head || head.event.id !== eventId) return;
    fifo.shift();
    this.count--;
    if (fifo.length === 0) this.fifos.delete(callId);
    const attempts = head.attempts;
    const recorded = this.recordedAttempts.get(eventId) ?? 0;
    this.recordedAttempts.delete(eventId);
    this.persist('settle', eventId, async (events) => {
      if (settlement === undefined || settlement.kind === 'delivered') {
        // The attempt count is written by the settling statement itself.
        await events.markDelivered(eventId, settlement?.status, undefined, attempts);
        return;
      }
      if (attempts > recorded) await events.setAttempts(eventId, attempts);
      if (settlement.kind === 'rejected')
        await events.markRejected(eventId, settlement.status, settlement.error);
      else await events.markDead(eventId, settlement.reason);
    });
  }

  recordAttempt(entry: QueuedEvent, attempt: AttemptInfo): void {
    const input = {
      eventId: entry.event.id,
      attempt: Math.max(1, entry.attempts),
      at: attempt.at,
      outcome: attempt.outcome,
      durationMs: attempt.durationMs,
      ...(attempt.url !== undefined
        ? { url: stripCredentials(attempt.url) }
        : this.url === undefined
          ? {}
          : { url: this.url }),
      ...(attempt.statusCode === undefined ? {} : { statusCode: attempt.statusCode }),
      ...(attempt.error === undefined ? {} : { error: attempt.error }),
    };
    // A delivered attempt settles the event next, with its attempt count: no separate raise.
    const raiseAttempts = attempt.outcome !== 'delivered';
    if (raiseAttempts && this.fifos.get(entry.event.callId)?.[0] === entry)
      this.recordedAttempts.set(entry.event.id, input.attempt);
    this.persist('attempt', entry.event.id, (events) =>
      events.recordAttempt({ ...input, raiseAttempts }),
    );
  }

  calls(): string[] {
    return [...this.fifos.keys()];
  }

  size(): number {
    return this.count;
  }

  flush(): Promise<void> {
    return this.tail;
  }

  private push(entry: QueuedEvent): void {
    const fifo = this.fifos.get(entry.event.callId);
    if (fifo) fifo.push(entry);
    else this.fifos.set(entry.event.callId, [entry]);
    this.count++;
  }

  /**
   * Queue a write. The writes queued during one turn of the event loop run together, in order,
   * in one transaction when the queue has one (one commit instead of one per statement); if that
   * transaction fails they are retried one by one, so one bad write costs only itself.
   */
  private persist(
    op: string,
    eventId: string,
    write: (events: OutboxRepository) => Promise<unknown>,
  ): void {
    this.pendingWrites.push({ op, eventId, write });
    if (this.batchScheduled) return;
    this.batchScheduled = true;
    this.tail = this.tail
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.runBatch());
  }

  private async runBatch(): Promise<void> {
    this.batchScheduled = false;
    const writes = this.pendingWrites;
    this.pendingWrites = [];
    if (writes.length === 0) return;
    if (this.transaction && writes.length > 1) {
      try {
        await this.transaction(async (events) => {
          for (const w of writes) await w.write(events);
        });
        return;
      } catch (err) {
        this.logger.warn('event outbox batch failed; writing its changes one by one', {
          writes: writes.length,
          err,
        });
      }
    }
    for (const { op, eventId, write } of writes) {
      try {
        await write(this.events);
      } catch (err) {
        this.failures++;
        this.logger.error('event outbox write failed', { op, eventId, err });
      }
    }
  }
}

function stripCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
