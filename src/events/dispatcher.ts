/**
 * Webhook delivery of lifecycle events to the CRM: signed, retried, never lost, never reordered
 * within a call.
 *
 * - Each event is a `POST <CRM_WEBHOOK_URL>` with the event JSON as body and the headers
 *   `Content-Type: application/json`, `X-Signature` (see `signature.ts`), `X-Event-Id`,
 *   `X-Event-Type`, `User-Agent: ari-crm/<version>`.
 * - Events of one call go strictly in enqueue (= sequence) order: the next is sent only after
 *   the previous one got a 2xx, was rejected, or went dead. Different calls are independent and
 *   run concurrently, at most `concurrency` requests at a time.
 * - Retry on connection errors, timeouts, 408, 429, 5xx (and any other non-2xx except the 4xx
 *   below): exponential backoff with full jitter, at least `Retry-After` when the CRM sends one.
 *   A 4xx other than 408/429 is permanent: the event is logged, counted as `rejected` and
 *   skipped. An event still undelivered `maxAgeMs` after it was enqueued is `dead`: logged at
 *   error, counted, skipped.
 * - After {@link WebhookDispatcher.stop} nothing is sent. An event enqueued then (one the engine
 *   committed while it was closing) stays pending in a durable queue's outbox for the next start
 *   (logged at info, not dead); only a queue in memory loses it (logged at error, counted dead).
 * - At-least-once: an event may arrive twice (e.g. the CRM's 2xx got lost); the event id
 *   (`X-Event-Id`, body `id`) is the idempotency key.
 * - Sent with the engine's outbound client (`src/http/outbound.ts`: undici `request` over a
 *   keep-alive pool, not `fetch`, which costs several times the CPU per POST); redirects are
 *   never followed (a 3xx is a retryable failure).
 *
 * Receiver guide: docs/webhooks.md.
 *
 * The parts: `delivery-lanes.ts` (the per-call lanes: scheduling, settling, retries, drain,
 * stop), `delivery-attempt.ts` (one request: signing, timeout, what the answer means) and
 * `delivery-metrics.ts`. This file holds the contract, the option checks and the enqueue.
 */
import type { Registry } from 'prom-client';
import { sharedOutboundPost, type OutboundPost } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import { createDeliveryLanes } from './delivery-lanes.ts';
import { webhookMetrics } from './delivery-metrics.ts';
import { MemoryEventQueue, type EventQueue, type QueuedEvent } from './queue.ts';
import type { WebhookSecret } from './signature.ts';
import type { LifecycleEvent } from './types.ts';

export { parseRetryAfter } from './delivery-attempt.ts';

/** Backoff and give-up policy of webhook retries. */
export interface WebhookRetryOptions {
  /** Upper bound of the first retry delay, ms (the delay is random in [0, bound)). Default 500 in main. */
  initialDelayMs: number;
  /** Largest backoff bound, ms (the bound doubles per attempt up to this). Default 30 000 in main. */
  maxDelayMs: number;
  /** WEBHOOK_MAX_AGE_MS: an event undelivered this long after it was enqueued is dead, ms. */
  maxAgeMs: number;
}

/** Options of {@link createWebhookDispatcher}; normally filled from the configuration. */
export interface WebhookDispatcherOptions {
  /** CRM_WEBHOOK_URL. Undefined: events are only logged at debug level and dropped. */
  url?: string;
  /** WEBHOOK_SECRET (several during a rotation). Required when `url` is set. Never logged. */
  secret: WebhookSecret;
  /** WEBHOOK_TIMEOUT_MS: timeout of one attempt (connect + answer), ms. Default 5000 in main. */
  timeoutMs: number;
  retry: WebhookRetryOptions;
  /** Most requests in flight at once (each for a different call). Default 16. */
  concurrency?: number;
  logger: Logger;
  /** Registry the `aricrm_webhook_*` metrics are registered on (reused if already there). */
  registry: Registry;
  /**
   * How to POST (`src/http/outbound.ts`): the engine passes the `post` of its outbound client;
   * default the process-wide shared client (tests).
   */
  post?: OutboundPost;
  /** Where undelivered events wait; default in memory. Events it already holds are resumed. */
  queue?: EventQueue;
  /** Random source in [0, 1) for the backoff jitter (tests); default Math.random. */
  random?: () => number;
  /**
   * Deliver with this instead of the signed JSON POST to `url` (a CRM connector's vendor
   * requests, src/connectors/delivery.ts). `url` is then only the target's label (set: events are
   * delivered) and no secret is needed. Ordering, retries, backoff, `Retry-After`, the age limit
   * and the delivery log stay the dispatcher's. A throw counts as a retryable failure.
   */
  send?: (entry: QueuedEvent, signal: AbortSignal) => Promise<DeliveryResult>;
  /**
   * Metric name part: `aricrm_<name>_deliveries_total`, `aricrm_<name>_delivery_duration_seconds`,
   * `aricrm_<name>_queue_depth`. Default `webhook`.
   */
  metricsName?: 'webhook' | 'connector';
}

/**
 * The result of one attempt of a custom transport ({@link WebhookDispatcherOptions.send}):
 * `delivered` settles the event; `rejected` settles it as refused (a permanent error, e.g. the
 * vendor's validation message); `retry` schedules another attempt (backoff, at least
 * `retryAfterMs`). `url` is the endpoint the attempt went to (the delivery log).
 */
export type DeliveryResult =
  | { kind: 'delivered'; status: number; url?: string }
  | { kind: 'rejected'; status: number; detail: string; url?: string }
  | { kind: 'retry'; detail: string; retryAfterMs?: number; status?: number; url?: string };

/** Sends lifecycle events to the CRM. */
export interface WebhookDispatcher {
  /**
   * Queue an event for delivery. Synchronous, never throws, never waits for the network: call
   * handling must not depend on the CRM. Events of a call must be enqueued in sequence order.
   */
  enqueue(event: LifecycleEvent): void;
  /**
   * Wait until every queued event is settled (delivered, rejected or dead). Resolves true when
   * the queue is empty, false when `timeoutMs` passed first or the dispatcher was stopped.
   */
  drain(timeoutMs: number): Promise<boolean>;
  /**
   * Stop delivering: cancel retry timers and abort requests in flight. Undelivered events stay
   * in the queue (a durable queue keeps them for the next start). Later `enqueue` calls: with a
   * durable queue ({@link EventQueue.durable}) the event is queued without being sent and logged
   * at info (left in the outbox for the next start); with a queue in memory only it is lost,
   * logged at error and counted as dead.
   */
  stop(): void;
  /** Events not yet settled, including those being sent right now. */
  pending(): number;
  /**
   * Resolves when the queue has persisted every settlement, retry and attempt recorded so far
   * (a durable queue writes them behind delivery). Never rejects.
   */
  flush(): Promise<void>;
}

const DEFAULT_CONCURRENCY = 16;

/**
 * Create the dispatcher. Metrics (on `options.registry`): `aricrm_webhook_deliveries_total{outcome}`
 * (delivered | retried | rejected | dead; `retried` counts scheduled retries),
 * `aricrm_webhook_delivery_duration_seconds` (one observation per attempt),
 * `aricrm_webhook_queue_depth` (events not yet settled).
 *
 * @throws Error when `url` is set but no non-empty secret is given; RangeError on unusable
 *   timeouts, retry bounds or concurrency.
 */
export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { url, logger } = options;
  const { initialDelayMs, maxDelayMs, maxAgeMs } = options.retry;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const timeoutMs = options.timeoutMs;
  positive('timeoutMs', timeoutMs);
  positive('retry.initialDelayMs', initialDelayMs);
  positive('retry.maxDelayMs', maxDelayMs);
  positive('retry.maxAgeMs', maxAgeMs);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const secrets = (
    typeof options.secret === 'string' ? [options.secret] : [...options.secret]
  ).filter(Boolean);
  if (url && secrets.length === 0 && !options.send)
    throw new Error('a webhook secret is required when the webhook URL is set');
  const send = options.send;
  const post = options.post ?? sharedOutboundPost();
  const random = options.random ?? Math.random;
  const queue: EventQueue = options.queue ?? new MemoryEventQueue();
  const metrics = webhookMetrics(options.registry, options.metricsName ?? 'webhook');
  const updateDepth = (): void => metrics.depth.set(queue.size());
  const lanes = createDeliveryLanes({
    url,
    queue,
    concurrency,
    retry: options.retry,
    random,
    transport: { ...(send ? { send } : {}), post, secrets, timeoutMs },
    metrics,
    logger,
  });

  function enqueue(event: LifecycleEvent): void {
    try {
      if (!url) {
        logger.debug('webhook URL not set, event not sent', { event });
        return;
      }
      if (lanes.isStopped() && !queue.durable) {
        metrics.deliveries.inc({ outcome: 'dead' });
        logger.error('webhook dispatcher stopped, event is dead', {
          callId: event.callId,
          eventId: event.id,
          eventType: event.type,
          sequence: event.sequence,
        });
        return;
      }
      const body = JSON.stringify(event);
      queue.append({ event, body, enqueuedAt: Date.now(), attempts: 0 });
      updateDepth();
      if (lanes.isStopped()) {
        // Pending in the store's outbox (the engine's events are committed before they are
        // queued; a queue that writes its appends writes it now): the next start delivers it.
        logger.info('webhook dispatcher stopped, event left in the outbox for the next start', {
          callId: event.callId,
          eventId: event.id,
          eventType: event.type,
          sequence: event.sequence,
        });
        return;
      }
      lanes.wake(event.callId);
    } catch (err) {
      try {
        metrics.deliveries.inc({ outcome: 'dead' });
        logger.error('webhook event could not be queued, event is dead', {
          callId: event?.callId,
          eventId: event?.id,
          err,
        });
      } catch {
        // nothing left to report to; call handling must go on
      }
    }
  }

  // Resume events a durable queue already held at start-up.
  updateDepth();
  for (const callId of queue.calls()) lanes.wake(callId);

  return {
    enqueue,
    drain: (drainTimeoutMs) => lanes.drain(drainTimeoutMs),
    stop: () => lanes.stop(),
    pending: () => queue.size(),
    flush: async () => {
      await queue.flush?.();
    },
  };
}

function positive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be > 0, got ${value}`);
}
