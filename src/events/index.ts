/**
 * Call lifecycle events and their webhook delivery. Reference: docs/webhooks.md.
 */
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
