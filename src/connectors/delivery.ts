/**
 * A connector's delivery target: the webhook dispatcher's machinery (per-call order,
 * backoff with jitter, `Retry-After`, age limit, metrics) over the connector's durable outbox
 * (src/store/connector-outbox.ts), with the vendor requests of {@link Connector.translate} as the
 * transport. One lifecycle event may become several vendor requests (retailCRM `call.ended`:
 * the hang-up event, then the call history upload): they are sent in order; a retry resumes
 * after the requests already answered. A request the vendor refuses (validation error) does not
 * stop the event's later requests; the event is then settled `rejected` with the vendor's
 * message(s). Metrics: `aricrm_connector_deliveries_total{outcome}`,
 * `aricrm_connector_delivery_duration_seconds`, `aricrm_connector_queue_depth`.
 */
import type { Registry } from 'prom-client';
import {
  createWebhookDispatcher,
  type DeliveryResult,
  type WebhookDispatcher,
  type WebhookRetryOptions,
} from '../events/dispatcher.ts';
import type { EventQueue, QueuedEvent } from '../events/queue.ts';
import type { Logger } from '../logging/logger.ts';
import type { Connector, EventTranslation, VendorHttpClient } from './types.ts';

/**
 * Thrown by a connector's {@link Connector.translate} when an event is not ready to be sent yet
 * (amoCRM: a finished call waits for its recording, because the link cannot be added later):
 * the attempt counts as failed with this message in the delivery log and the event is tried
 * again no sooner than `retryAfterMs` (with the usual backoff, within WEBHOOK_MAX_AGE_MS). Later
 * events of the same call wait behind it (in order per call).
 */
export class TranslationDeferred extends Error {
  constructor(
    message: string,
    /** Earliest next attempt, ms from now. */
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'TranslationDeferred';
  }
}

/** Options of {@link createConnectorDelivery}. */
export interface ConnectorDeliveryOptions {
  connector: Connector;
  client: VendorHttpClient;
  /** The connector's durable queue (`DurableEventQueue` over `createConnectorOutbox`); default memory. */
  queue?: EventQueue;
  /** Label of the target (the vendor's base URL): set, events are delivered. */
  url: string;
  /** Timeout of one attempt (every request of the event, rate-limit waits included), ms. */
  timeoutMs: number;
  retry: WebhookRetryOptions;
  /** Most calls whose events are in flight at once. */
  concurrency?: number;
  logger: Logger;
  registry: Registry;
  random?: () => number;
}

/** Start delivering the connector's events (resumes what its queue holds). */
export function createConnectorDelivery(options: ConnectorDeliveryOptions): WebhookDispatcher {
  const { connector, client } = options;
  /** Rejections of events still being delivered (their later requests go on). */
  const rejections = new Map<string, { status: number; details: string[] }>();

  async function send(entry: QueuedEvent, signal: AbortSignal): Promise<DeliveryResult> {
    let requests: EventTranslation;
    try {
      requests = await connector.translate(entry.event);
    } catch (err) {
      if (!(err instanceof TranslationDeferred)) throw err;
      return {
        kind: 'retry',
        detail: err.message,
        retryAfterMs: err.retryAfterMs,
        url: options.url,
      };
    }
    // Without a request (the vendor needs nothing for this event): no url, no delivery-log row.
    let last: DeliveryResult = { kind: 'delivered', status: 200 };
    for (let i = entry.progress ?? 0; i < requests.length; i++) {
      const request = requests[i]!;
      const answer = await client.request(request, signal);
      if (!answer.ok && answer.kind === 'retry') {
        return {
          kind: 'retry',
          detail: answer.detail,
          url: answer.url,
          ...(answer.status === undefined ? {} : { status: answer.status }),
          ...(answer.retryAfterMs === undefined ? {} : { retryAfterMs: answer.retryAfterMs }),
        };
      }
      const problem = answer.ok ? connector.checkAnswer?.(request, answer.json) : answer.detail;
      if (problem !== undefined) {
        const seen = rejections.get(entry.event.id) ?? {
          status: answer.status ?? 400,
          details: [],
        };
        seen.details.push(`${request.path}: ${problem}`);
        rejections.set(entry.event.id, seen);
      }
      entry.progress = i + 1;
      last = { kind: 'delivered', status: answer.status ?? 200, url: answer.url };
    }
    const rejected = rejections.get(entry.event.id);
    rejections.delete(entry.event.id);
    if (rejected)
      return {
        kind: 'rejected',
        status: rejected.status,
        detail: rejected.details.join('; '),
        ...(last.url === undefined ? {} : { url: last.url }),
      };
    return last;
  }

  return createWebhookDispatcher({
    url: options.url,
    secret: '',
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    logger: options.logger,
    registry: options.registry,
    ...(options.queue ? { queue: options.queue } : {}),
    ...(options.random ? { random: options.random } : {}),
    send,
    metricsName: 'connector',
  });
}
