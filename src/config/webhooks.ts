/** Configuration of the lifecycle webhooks: the CRM's endpoint, signing, timeouts, retries. */
import { z } from 'zod';
import { httpUrl } from './fields.ts';

/** CRM_WEBHOOK_URL, WEBHOOK_SECRET and the delivery settings. */
export const webhookFields = {
  CRM_WEBHOOK_URL: httpUrl
    .optional()
    .describe(
      'Where lifecycle events are POSTed (signed). Unset: events are only stored for the pull feed (GET /v1/events) and logged at debug level, never sent.',
    ),
  WEBHOOK_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'HMAC-SHA256 key of the X-Signature header (required when CRM_WEBHOOK_URL is set). Never logged.',
    ),
  WEBHOOK_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(5000)
    .describe('Timeout of one webhook delivery attempt, in milliseconds.'),
  WEBHOOK_MAX_AGE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(86_400_000)
    .describe(
      'An event not delivered after this long is marked dead and counted, in milliseconds.',
    ),
  WEBHOOK_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(64)
    .describe(
      "Most webhook requests in flight at once (each for a different call; a call's events always go one after another).",
    ),
  WEBHOOK_RETRY_INITIAL_DELAY_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(600_000)
    .default(500)
    .describe(
      "Upper bound of the first webhook retry delay, in milliseconds; the bound doubles per attempt up to WEBHOOK_RETRY_MAX_DELAY_MS and the delay is random below it (full jitter), never shorter than the CRM's Retry-After.",
    ),
  WEBHOOK_RETRY_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(3_600_000)
    .default(30_000)
    .describe('Largest webhook retry delay bound, in milliseconds.'),
};
