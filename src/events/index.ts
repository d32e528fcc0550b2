/**
 * Call lifecycle events and their webhook delivery. Reference: docs/webhooks.md.
 *
 * `main.ts` opens the engine's webhook delivery with {@link openWebhooks}.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { OutboundPost } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import { DurableEventQueue } from '../store/durable-queue.ts';
import type { Store } from '../store/store.ts';
import {
  createWebhookDispatcher,
  type WebhookDispatcher,
  type WebhookRetryOptions,
} from './dispatcher.ts';

export * from './types.ts';
export {
  signWebhook,
  verifyWebhookSignature,
  signedPayload,
  DEFAULT_SIGNATURE_TOLERANCE_SEC,
  type VerifyOptions,
  type WebhookSecret,
} from './signature.ts';
export { MemoryEventQueue, type EventQueue, type QueuedEvent } from './queue.ts';
export {
  createWebhookDispatcher,
  parseRetryAfter,
  type DeliveryResult,
  type WebhookDispatcher,
  type WebhookDispatcherOptions,
  type WebhookRetryOptions,
} from './dispatcher.ts';

/** What {@link openWebhooks} needs. */
export interface OpenWebhooksDeps {
  config: Pick<
    Config,
    | 'CRM_WEBHOOK_URL'
    | 'WEBHOOK_SECRET'
    | 'WEBHOOK_TIMEOUT_MS'
    | 'WEBHOOK_CONCURRENCY'
    | 'WEBHOOK_RETRY_INITIAL_DELAY_MS'
    | 'WEBHOOK_RETRY_MAX_DELAY_MS'
    | 'WEBHOOK_MAX_AGE_MS'
  >;
  /** The store, claimed and migrated (and its journal log replayed): the event outbox. */
  store: Pick<Store, 'events' | 'writeBatch'>;
  /** The CRM-bound HTTP client. */
  post: OutboundPost;
  logger: Logger;
  registry: Registry;
}

/**
 * The webhook dispatcher of CRM_WEBHOOK_URL over the store's outbox: the events an earlier run
 * did not deliver are resumed (logged when there are some). Without CRM_WEBHOOK_URL, a
 * dispatcher that sends nothing (events are only logged at debug level; the pull feed has them).
 *
 * @throws the store's error when the outbox cannot be read
 */
export async function openWebhooks(deps: OpenWebhooksDeps): Promise<WebhookDispatcher> {
  const { config, store } = deps;
  const logger = deps.logger.child({ component: 'webhooks' });
  let queue: DurableEventQueue | undefined;
  if (config.CRM_WEBHOOK_URL) {
    queue = await DurableEventQueue.open(store.events, {
      logger,
      url: config.CRM_WEBHOOK_URL,
      persistAppends: false, // the journal commits every event before it is queued
      transaction: (fn) => store.writeBatch((repos) => fn(repos.events)),
    });
    if (queue.size() > 0)
      deps.logger.info('resuming undelivered webhooks of an earlier run', { events: queue.size() });
  }
  return createWebhookDispatcher({
    url: config.CRM_WEBHOOK_URL,
    secret: config.WEBHOOK_SECRET ?? '',
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    concurrency: config.WEBHOOK_CONCURRENCY,
    retry: deliveryRetry(config),
    logger,
    registry: deps.registry,
    post: deps.post,
    ...(queue ? { queue } : {}),
  });
}

/**
 * The retry bounds of every delivery to the CRM (webhooks and a connector's vendor requests):
 * WEBHOOK_RETRY_INITIAL_DELAY_MS, WEBHOOK_RETRY_MAX_DELAY_MS and WEBHOOK_MAX_AGE_MS, in ms.
 */
export function deliveryRetry(
  config: Pick<
    Config,
    'WEBHOOK_RETRY_INITIAL_DELAY_MS' | 'WEBHOOK_RETRY_MAX_DELAY_MS' | 'WEBHOOK_MAX_AGE_MS'
  >,
): WebhookRetryOptions {
  return {
    initialDelayMs: config.WEBHOOK_RETRY_INITIAL_DELAY_MS,
    maxDelayMs: config.WEBHOOK_RETRY_MAX_DELAY_MS,
    maxAgeMs: config.WEBHOOK_MAX_AGE_MS,
  };
}
