/**
 * The delivery lanes of the webhook dispatcher (src/events/dispatcher.ts): one lane per call,
 * first in first out. A call's head event is sent when the call is woken and fewer than
 * `concurrency` requests are in flight; the next one only after it settled (delivered, rejected,
 * dead). A failed attempt waits for its retry (exponential backoff with full jitter, at least
 * `Retry-After`, never past `maxAgeMs` after the event was enqueued). Also the wait for an empty
 * queue (`drain`) and the stop (timers cancelled, requests in flight aborted).
 */
import { describeError } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import {
  attemptInfo,
  createAttempt,
  type AttemptOptions,
  type AttemptOutcome,
} from './delivery-attempt.ts';
import type { WebhookMetrics } from './delivery-metrics.ts';
import type { WebhookRetryOptions } from './dispatcher.ts';
import type { EventQueue, QueuedEvent, Settlement } from './queue.ts';

/** What {@link createDeliveryLanes} needs. */
export interface DeliveryLanesOptions {
  /** CRM_WEBHOOK_URL (or a connector's label); undefined: nothing is ever sent. */
  url: string | undefined;
  queue: EventQueue;
  /** Most requests in flight at once (each for a different call). */
  concurrency: number;
  retry: WebhookRetryOptions;
  /** Random source in [0, 1) for the backoff jitter. */
  random: () => number;
  /** How one attempt is made (the stop is the lanes' own). */
  transport: Omit<AttemptOptions, 'isStopped'>;
  metrics: WebhookMetrics;
  logger: Logger;
}

/** The per-call lanes of one dispatcher. */
export interface DeliveryLanes {
  /**
   * Send the call's head event as soon as a place is free; nothing when the call has no event or
   * its lane is already ready, in flight or waiting for a retry.
   */
  wake(callId: string): void;
  /** The dispatcher's `drain`: true once the queue is empty, false on timeout or stop. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Cancel retry timers, abort requests in flight, resolve drain waits with false. */
  stop(): void;
  /** True after {@link DeliveryLanes.stop}. */
  isStopped(): boolean;
}

/** Create the lanes; nothing is sent until a call is woken. */
export function createDeliveryLanes(options: DeliveryLanesOptions): DeliveryLanes {
  const { url, queue, concurrency, random, metrics, logger } = options;
  const { initialDelayMs, maxDelayMs, maxAgeMs } = options.retry;
  const send = options.transport.send;

  /** Calls whose head event may be sent now, oldest first. */
  const ready = new Set<string>();
  /** Calls with a request in flight, and how to abort it. */
  const inFlight = new Map<string, AbortController>();
  /** Calls waiting for a retry. */
  const retryTimers = new Map<string, NodeJS.Timeout>();
  const drainWaiters = new Set<(drained: boolean) => void>();
  let stopped = false;
  let pumpScheduled = false;
  const attempt = createAttempt({ ...options.transport, isStopped: () => stopped });

  const updateDepth = (): void => metrics.depth.set(queue.size());

  function schedulePump(): void {
    if (pumpScheduled || stopped) return;
    pumpScheduled = true;
    queueMicrotask(pump);
  }

  function pump(): void {
    pumpScheduled = false;
    while (!stopped && url && inFlight.size < concurrency && ready.size > 0) {
      const callId = ready.values().next().value as string;
      ready.delete(callId);
      void deliverHead(url, callId);
    }
  }

  function wake(callId: string): void {
    if (ready.has(callId) || inFlight.has(callId) || retryTimers.has(callId)) return;
    if (queue.head(callId) === undefined) return;
    ready.add(callId);
    schedulePump();
  }

  async function deliverHead(target: string, callId: string): Promise<void> {
    const entry = queue.head(callId);
    if (!entry) return;
    const controller = new AbortController();
    inFlight.set(callId, controller);
    entry.attempts++;
    const startedAtMs = Date.now();
    const startedAt = performance.now();
    let outcome: AttemptOutcome;
    try {
      outcome = await attempt(target, entry, controller);
    } catch (err) {
      outcome = { kind: 'retry', detail: describeError(err) };
    } finally {
      inFlight.delete(callId);
    }
    if (outcome.kind === 'aborted' || stopped) return;
    const durationMs = performance.now() - startedAt;
    metrics.duration.observe(durationMs / 1000);
    // A connector's event that needed no vendor request has no attempt to log.
    const nothingSent = send !== undefined && outcome.kind === 'delivered' && !outcome.url;
    try {
      if (!nothingSent) queue.recordAttempt?.(entry, attemptInfo(outcome, startedAtMs, durationMs));
    } catch (err) {
      logger.error('webhook delivery log write failed', { callId, eventId: entry.event.id, err });
    }
    try {
      settle(callId, entry, outcome);
    } catch (err) {
      // Bookkeeping must not kill the call's lane; retry the same event later.
      logger.error('webhook bookkeeping failed', { callId, eventId: entry.event.id, err });
      scheduleRetry(callId, initialDelayMs);
    }
    schedulePump();
  }

  function settle(
    callId: string,
    entry: QueuedEvent,
    outcome: Exclude<AttemptOutcome, { kind: 'aborted' }>,
  ): void {
    const { event } = entry;
    const fields = {
      callId,
      eventId: event.id,
      eventType: event.type,
      sequence: event.sequence,
      attempts: entry.attempts,
    };
    if (outcome.kind === 'delivered') {
      metrics.deliveries.inc({ outcome: 'delivered' });
      logger.debug('webhook delivered', { ...fields, status: outcome.status });
      finish(callId, event.id, { kind: 'delivered', status: outcome.status });
      return;
    }
    if (outcome.kind === 'rejected') {
      metrics.deliveries.inc({ outcome: 'rejected' });
      logger.warn('webhook rejected by the CRM, skipping the event', {
        ...fields,
        status: outcome.status,
        detail: outcome.detail,
      });
      finish(callId, event.id, {
        kind: 'rejected',
        status: outcome.status,
        error: outcome.detail,
      });
      return;
    }
    const now = Date.now();
    const remainingMs = entry.enqueuedAt + maxAgeMs - now;
    if (remainingMs <= 0) {
      metrics.deliveries.inc({ outcome: 'dead' });
      logger.error('webhook undeliverable, event is dead', {
        ...fields,
        ageMs: now - entry.enqueuedAt,
        detail: outcome.detail,
      });
      finish(callId, event.id, {
        kind: 'dead',
        reason: `undelivered after ${now - entry.enqueuedAt} ms and ${entry.attempts} attempts; last error: ${outcome.detail}`,
      });
      return;
    }
    const bound = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(entry.attempts - 1, 30));
    let delayMs = Math.floor(random() * bound);
    if (outcome.retryAfterMs !== undefined) delayMs = Math.max(delayMs, outcome.retryAfterMs);
    delayMs = Math.min(delayMs, remainingMs);
    metrics.deliveries.inc({ outcome: 'retried' });
    const log = entry.attempts === 1 ? logger.warn.bind(logger) : logger.debug.bind(logger);
    log('webhook delivery failed, will retry', {
      ...fields,
      detail: outcome.detail,
      retryInMs: delayMs,
    });
    queue.update(entry, {
      nextAttemptAt: now + delayMs,
      error: outcome.detail,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
    });
    scheduleRetry(callId, delayMs);
  }

  function scheduleRetry(callId: string, delayMs: number): void {
    if (stopped) return;
    if (delayMs <= 0) {
      wake(callId);
      return;
    }
    const timer = setTimeout(() => {
      retryTimers.delete(callId);
      wake(callId);
    }, delayMs);
    retryTimers.set(callId, timer);
  }

  function finish(callId: string, eventId: string, settlement: Settlement): void {
    queue.removeHead(callId, eventId, settlement);
    updateDepth();
    wake(callId);
    if (queue.size() === 0) {
      for (const resolve of drainWaiters) resolve(true);
      drainWaiters.clear();
    }
  }

  function drain(drainTimeoutMs: number): Promise<boolean> {
    if (queue.size() === 0) return Promise.resolve(true);
    if (stopped || !url) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        drainWaiters.delete(done);
        resolve(drained);
      };
      const timer = setTimeout(() => done(false), Math.max(0, drainTimeoutMs));
      drainWaiters.add(done);
    });
  }

  function stop(): void {
    if (stopped) return;
    stopped = true;
    for (const timer of retryTimers.values()) clearTimeout(timer);
    retryTimers.clear();
    ready.clear();
    for (const controller of inFlight.values()) controller.abort();
    for (const resolve of [...drainWaiters]) resolve(false);
    drainWaiters.clear();
  }

  return { wake, drain, stop, isStopped: () => stopped };
}
