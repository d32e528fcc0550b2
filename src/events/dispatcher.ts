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
 */
import { createRequire } from 'node:module';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  describeError,
  sharedOutboundPost,
  type OutboundPost,
  type OutboundResponse,
} from '../http/outbound.ts';
import { counter, gauge, histogram } from '../metrics/registry.ts';
import type { Logger } from '../logging/logger.ts';
import {
  MemoryEventQueue,
  type AttemptInfo,
  type EventQueue,
  type QueuedEvent,
  type Settlement,
} from './queue.ts';
import { signWebhook, type WebhookSecret } from './signature.ts';
import type { LifecycleEvent } from './types.ts';

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

/** Most bytes of an error answer read (for the log). */
const MAX_ERROR_BODY_BYTES = 1024;
const DEFAULT_CONCURRENCY = 16;
const OUTCOMES = ['delivered', 'retried', 'rejected', 'dead'] as const;

type AttemptOutcome = DeliveryResult | { kind: 'aborted' };

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
  const userAgent = `ari-crm/${PACKAGE_VERSION}`;

  /** Calls whose head event may be sent now, oldest first. */
  const ready = new Set<string>();
  /** Calls with a request in flight, and how to abort it. */
  const inFlight = new Map<string, AbortController>();
  /** Calls waiting for a retry. */
  const retryTimers = new Map<string, NodeJS.Timeout>();
  const drainWaiters = new Set<(drained: boolean) => void>();
  let stopped = false;
  let pumpScheduled = false;

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

  async function attempt(
    target: string,
    entry: QueuedEvent,
    controller: AbortController,
  ): Promise<AttemptOutcome> {
    let timer: NodeJS.Timeout | undefined;
    if (send) {
      const deadline = new Promise<AttemptOutcome>((resolve) => {
        timer = setTimeout(() => {
          resolve({ kind: 'retry', detail: `timeout after ${timeoutMs} ms` });
          controller.abort();
        }, timeoutMs);
      });
      const work = async (): Promise<AttemptOutcome> => {
        try {
          return await send(entry, controller.signal);
        } catch (err) {
          if (stopped) return { kind: 'aborted' };
          return { kind: 'retry', detail: describeError(err) };
        }
      };
      try {
        return await Promise.race([work(), deadline]);
      } finally {
        clearTimeout(timer);
      }
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': userAgent,
      'x-event-id': entry.event.id,
      'x-event-type': entry.event.type,
      // Signed per attempt, so a retry hours later still passes the receiver's replay window.
      'x-signature': signWebhook(secrets, entry.body, Date.now() / 1000),
    };
    const deadline = new Promise<AttemptOutcome>((resolve) => {
      timer = setTimeout(() => {
        resolve({ kind: 'retry', detail: `timeout after ${timeoutMs} ms` });
        controller.abort();
      }, timeoutMs);
    });
    const work = async (): Promise<AttemptOutcome> => {
      let response: OutboundResponse;
      try {
        response = await post(target, { headers, body: entry.body, signal: controller.signal });
      } catch (err) {
        if (stopped) return { kind: 'aborted' };
        return { kind: 'retry', detail: describeError(err) };
      }
      const status = response.status;
      if (status >= 200 && status <= 299) {
        response.discard();
        return { kind: 'delivered', status };
      }
      const snippet = await readSnippet(response, MAX_ERROR_BODY_BYTES);
      const detail = snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`;
      if (status >= 400 && status <= 499 && status !== 408 && status !== 429) {
        return { kind: 'rejected', status, detail };
      }
      const retryAfterMs = parseRetryAfter(response.header('retry-after'), Date.now());
      return retryAfterMs === undefined
        ? { kind: 'retry', detail, status }
        : { kind: 'retry', detail, retryAfterMs, status };
    };
    try {
      return await Promise.race([work(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  function enqueue(event: LifecycleEvent): void {
    try {
      if (!url) {
        logger.debug('webhook URL not set, event not sent', { event });
        return;
      }
      if (stopped && !queue.durable) {
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
      if (stopped) {
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
      wake(event.callId);
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

  // Resume events a durable queue already held at start-up.
  updateDepth();
  for (const callId of queue.calls()) wake(callId);

  return {
    enqueue,
    drain,
    stop,
    pending: () => queue.size(),
    flush: async () => {
      await queue.flush?.();
    },
  };
}

/** The delivery-log row of one finished attempt. */
function attemptInfo(
  outcome: Exclude<AttemptOutcome, { kind: 'aborted' }>,
  at: number,
  durationMs: number,
): AttemptInfo {
  const ms = Math.round(durationMs);
  const target = outcome.url === undefined ? {} : { url: outcome.url };
  switch (outcome.kind) {
    case 'delivered':
      return { at, outcome: 'delivered', statusCode: outcome.status, durationMs: ms, ...target };
    case 'rejected':
      return {
        at,
        outcome: 'rejected',
        statusCode: outcome.status,
        error: outcome.detail,
        durationMs: ms,
        ...target,
      };
    case 'retry':
      return {
        at,
        outcome: 'failed',
        ...(outcome.status === undefined ? {} : { statusCode: outcome.status }),
        error: outcome.detail,
        durationMs: ms,
        ...target,
      };
  }
}

interface WebhookMetrics {
  deliveries: Counter<'outcome'>;
  duration: Histogram;
  depth: Gauge;
}

/** The metric names of each delivery target (spelt out: docs/operations.md lists them). */
const METRIC_NAMES = {
  webhook: {
    deliveries: 'aricrm_webhook_deliveries_total',
    duration: 'aricrm_webhook_delivery_duration_seconds',
    depth: 'aricrm_webhook_queue_depth',
  },
  connector: {
    deliveries: 'aricrm_connector_deliveries_total',
    duration: 'aricrm_connector_delivery_duration_seconds',
    depth: 'aricrm_connector_queue_depth',
  },
} as const;

function webhookMetrics(registry: Registry, name: 'webhook' | 'connector'): WebhookMetrics {
  const what = name === 'webhook' ? 'Webhook' : 'CRM connector';
  const names = METRIC_NAMES[name];
  const deliveries = counter(registry, {
    name: names.deliveries,
    help: `${what} delivery results: delivered, retried (a retry was scheduled), rejected (4xx), dead (gave up).`,
    labelNames: ['outcome'] as const,
  });
  for (const outcome of OUTCOMES) deliveries.inc({ outcome }, 0);
  const duration = histogram(registry, {
    name: names.duration,
    help: `Duration of one ${what.toLowerCase()} delivery attempt, in seconds.`,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  const depth = gauge(registry, {
    name: names.depth,
    help: `${what} events not yet delivered, rejected or dead (including those in flight).`,
  });
  return { deliveries, duration, depth };
}

/** Retry-After as delay in ms: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Up to `maxBytes` of a body as text for logs (whitespace collapsed, at most 200 characters); a
 * larger body is cut, a broken one gives ''. Never throws.
 */
async function readSnippet(response: OutboundResponse, maxBytes: number): Promise<string> {
  try {
    const text = await response.text(maxBytes, { overflow: 'truncate' });
    return text.replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return ''; // a broken body only loses the log snippet
  }
}

function positive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be > 0, got ${value}`);
}

const PACKAGE_VERSION = ((): string => {
  try {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
