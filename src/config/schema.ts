/**
 * The engine's configuration: every environment variable, its default and meaning. This schema
 * is the single source: `.env.example` and `docs/configuration.md` describe exactly these keys
 * (a test checks that they agree).
 */
import { z } from 'zod';
import { ariFields, simulatorFields } from './ari.ts';
import { autocallFields } from './autocalls.ts';
import { clickToCallFields, routingFields } from './calls.ts';
import { compatFields } from './compat.ts';
import { connectorFields } from './connectors.ts';
import { httpFields } from './http.ts';
import { recordingFields } from './recordings.ts';
import { securityFields } from './security.ts';
import { storeFields } from './store.ts';
import { streamFields } from './stream.ts';
import { webhookFields } from './webhooks.ts';

export type { WorkstationEntry } from './compat.ts';
export type { ApiKeyEntry, CidrEntry } from './security.ts';

/**
 * Every variable with its default. Descriptions are the reference text (docs/configuration.md
 * and .env.example are generated from them).
 */
export const configSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'])
    .default('development')
    .describe(
      'development | production | test. Production requires ARI_URL, an ARI_PASSWORD other than the default, API_KEYS, RECORDING_LINK_SECRET when calls are recorded, and PUBLIC_URL when HTTP_HOST is a wildcard or loopback address (0.0.0.0, ::, 127.0.0.1) and calls are recorded or CRM_CONNECTOR is retailcrm or bitrix24 (with BITRIX24_URL).',
    ),
  LOG_LEVEL: z
    .enum(['error', 'warn', 'info', 'http', 'verbose', 'debug'])
    .default('info')
    .describe('Log level of the JSON log lines on stdout.'),
  ...storeFields,
  ...httpFields,
  ...ariFields,
  ...simulatorFields,
  ...routingFields,
  ...recordingFields,
  ...webhookFields,
  ...connectorFields,
  SHUTDOWN_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(10_000)
    .describe(
      'On SIGTERM, how long recording downloads in progress may finish and pending webhooks still be delivered, in milliseconds; after the engine disconnects from Asterisk, what is left of it (at least 1 s) lets CRM requests and call steps in flight finish so that their changes are stored. Calls in progress stay up in Asterisk.',
    ),
  ...securityFields,
  ...autocallFields,
  ...clickToCallFields,
  ...compatFields,
  API_STORE_WAIT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(30_000)
    .default(2000)
    .describe(
      'Longest POST /v1/calls waits for the store to commit a new call before answering 202 anyway (logged at warn), in milliseconds. 0 = answer at once, without waiting for the commit (an engine crash right after the answer can then lose the call).',
    ),
  ...streamFields,
  IDEMPOTENCY_TTL_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(7 * 86_400_000)
    .default(86_400_000)
    .describe(
      'How long POST /v1/calls remembers an Idempotency-Key (per API key), in milliseconds.',
    ),
});

/** Parsed and validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Names of every configuration variable. */
export const CONFIG_KEYS = Object.keys(configSchema.shape) as Array<keyof Config>;
