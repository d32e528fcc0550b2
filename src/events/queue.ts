/**
 * The webhook outbox (never lost, never reordered within a call): undelivered events,
 * one FIFO per call. The dispatcher only talks to the {@link EventQueue} interface, so the
 * in-memory implementation here can be replaced by a durable store (undelivered events
 * survive a restart) without touching delivery logic. The interface is synchronous: a
 * durable implementation keeps this working set in memory, persists writes through, and reloads
 * it at start-up (the dispatcher resumes every call returned by {@link EventQueue.calls}).
 */
import type { LifecycleEvent } from './types.ts';

/** One undelivered event with its delivery bookkeeping. */
export interface QueuedEvent {
  event: LifecycleEvent;
  /** The JSON body, serialised once when enqueued so every attempt sends identical bytes. */
  body: string;
  /** When it was enqueued, epoch milliseconds; the retry age limit counts from here. */
  enqueuedAt: number;
  /** Delivery attempts made so far. */
  attempts: number;
  /**
   * Vendor requests of this event already answered (a CRM connector may turn one event into
   * several requests; a retry resumes after them). In memory only: after a restart the event's
   * requests are sent again from the first (at-least-once).
   */
  progress?: number;
}

/** How the head of a call's FIFO was settled. */
export type Settlement =
  | { kind: 'delivered'; /** HTTP status (2xx). */ status: number }
  | { kind: 'rejected'; /** HTTP status (4xx other than 408/429). */ status: number; error: string }
  | { kind: 'dead'; /** Why it was given up (last error, age). */ reason: string };

/** A scheduled retry of a queued event. */
export interface RetryInfo {
  /** When the event is due again, epoch milliseconds. */
  nextAttemptAt: number;
  /** The failed attempt's error (`HTTP 503: …`, `timeout after 5000 ms`, `ECONNREFUSED`). */
  error: string;
  /** HTTP status of the failed answer, if the CRM answered. */
  status?: number;
}

/** Outcome of one delivery attempt, as the delivery log records it. */
export type AttemptOutcomeKind = 'delivered' | 'failed' | 'rejected';

/** One finished delivery attempt (the per-endpoint delivery log). */
export interface AttemptInfo {
  /** When the attempt started, epoch milliseconds. */
  at: number;
  outcome: AttemptOutcomeKind;
  /** HTTP status, when the CRM answered. */
  statusCode?: number;
  /** Error text for a failed or rejected attempt. */
  error?: string;
  /** Duration of the attempt, ms. */
  durationMs: number;
  /**
   * Where the attempt went, when not the queue's own URL (a CRM connector's vendor endpoint,
   * e.g. `https://shop.retailcrm.ru/api/v5/telephony/call/event`).
   */
  url?: string;
}

/** Per-call FIFOs of undelivered events. Implementations must not throw for valid use. */
export interface EventQueue {
  /**
   * True when what the queue holds survives a restart: every event appended is (or, appended, will
   * be) pending in the store's outbox, and the next start reloads it (`DurableEventQueue`). The
   * dispatcher then leaves an event that arrives after its stop in the queue, for the next start;
   * absent or false (memory only), such an event is lost and counted dead.
   */
  readonly durable?: boolean;
  /** Add an event at the tail of its call's FIFO. */
  append(entry: QueuedEvent): void;
  /** The oldest undelivered event of a call, or undefined when the call has none. */
  head(callId: string): QueuedEvent | undefined;
  /**
   * Persist changed bookkeeping (`attempts`) of a queued entry and, when given, its retry
   * schedule and last error; a no-op in memory.
   */
  update(entry: QueuedEvent, retry?: RetryInfo): void;
  /**
   * Remove the head of a call's FIFO once it is settled (delivered, rejected or dead), recording
   * how. Does nothing unless the head's event id is `eventId`.
   */
  removeHead(callId: string, eventId: string, settlement?: Settlement): void;
  /** Log one delivery attempt of `entry` (attempt number = `entry.attempts`); optional. */
  recordAttempt?(entry: QueuedEvent, attempt: AttemptInfo): void;
  /** Resolves when every change made so far is persisted (never rejects); optional. */
  flush?(): Promise<void>;
  /** Calls that have undelivered events, in the order their oldest event was enqueued. */
  calls(): string[];
  /** Number of undelivered events over all calls (including those being sent now). */
  size(): number;
}

/** The default {@link EventQueue}: plain memory, lost on restart. */
export class MemoryEventQueue implements EventQueue {
  /** Memory only: what it holds is lost with the process. */
  readonly durable: boolean = false;
  private readonly fifos = new Map<string, QueuedEvent[]>();
  private count = 0;

  append(entry: QueuedEvent): void {
    const fifo = this.fifos.get(entry.event.callId);
    if (fifo) fifo.push(entry);
    else this.fifos.set(entry.event.callId, [entry]);
    this.count++;
  }

  head(callId: string): QueuedEvent | undefined {
    return this.fifos.get(callId)?.[0];
  }

  update(_entry: QueuedEvent): void {
    // Entries are live objects in memory: nothing to persist.
  }

  removeHead(callId: string, eventId: string): void {
    const fifo = this.fifos.get(callId);
    if (!fifo || fifo[0]?.event.id !== eventId) return;
    fifo.shift();
    this.count--;
    if (fifo.length === 0) this.fifos.delete(callId);
  }

  calls(): string[] {
    return [...this.fifos.keys()];
  }

  size(): number {
    return this.count;
  }
}
