/**
 * The engine's configuration: every environment variable, its default and meaning. This schema
 * is the single source: `.env.example` and `docs/configuration.md` describe exactly these keys
 * (a test checks that they agree).
 */
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(0).max(65535);

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** Comma-separated list of operator extensions (digits). */
const extensionList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^\d{2,10}$/, 'extensions are 2-10 digits')).min(1));

/**
 * Trunk map `prefix=template,…`, longest prefix wins, `*` is the default. The template's
 * `{number}` is replaced by the dialled number, e.g. `7=PJSIP/{number}@client-trunk`.
 */
const trunkMap = z.string().transform((s, ctx) => {
  const entries: Array<{ prefix: string; template: string }> = [];
  for (const part of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const prefix = part.slice(0, eq).trim();
    const template = part.slice(eq + 1).trim();
    if (
      eq <= 0 ||
      !/^(\*|\+?\d+)$/.test(prefix) ||
      !template.includes('{number}') ||
      !template.includes('/')
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected prefix=Tech/{number}@trunk, prefix digits or *`,
      });
      return z.NEVER;
    }
    entries.push({ prefix, template });
  }
  if (entries.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'at least one trunk entry is needed' });
    return z.NEVER;
  }
  return entries;
});

/** Dialplan location `context,extension,priority`. */
const dialplanLocation = z.string().transform((s, ctx) => {
  if (s.trim() === '') return undefined;
  const [context, extension, priority = '1'] = s.split(',').map((x) => x.trim());
  if (!context || !extension || !/^\d+$/.test(priority)) {
    ctx.addIssue({ code: 'custom', message: 'expected context,extension[,priority]' });
    return z.NEVER;
  }
  return { context, extension, priority: Number(priority) };
});

/**
 * Every variable with its default. Descriptions are the reference text (docs/configuration.md
 * and .env.example are generated from them).
 */
export const configSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'])
    .default('development')
    .describe('development | production | test. In production ARI_URL is required.'),
  LOG_LEVEL: z
    .enum(['error', 'warn', 'info', 'http', 'verbose', 'debug'])
    .default('info')
    .describe('Log level of the JSON log lines on stdout.'),
  HTTP_HOST: z.string().min(1).default('127.0.0.1').describe('Address the HTTP API listens on.'),
  HTTP_PORT: port.default(3000).describe('Port of the HTTP API (0 = any free port).'),

  ARI_URL: httpUrl
    .optional()
    .describe(
      'Asterisk HTTP base URL, e.g. http://127.0.0.1:8088 (no /ari). Unset: the built-in PBX simulator is used (not allowed in production).',
    ),
  ARI_USERNAME: z.string().min(1).default('asterisk').describe('ARI user (ari.conf).'),
  ARI_PASSWORD: z
    .string()
    .min(1)
    .default('asterisk')
    .describe('ARI password (ari.conf). Never logged.'),
  ARI_APP: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('crm-app')
    .describe('Stasis application name used in the dialplan: Stasis(crm-app,inbound,${EXTEN}).'),
  ARI_RECONNECT_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe('Upper bound of the ARI reconnect backoff, in milliseconds.'),

  SIM_EXTENSIONS: extensionList
    .default(['101', '102', '103'])
    .describe('Simulator only: operator extensions the simulated PBX has.'),
  SIM_TIME_SCALE: z.coerce
    .number()
    .positive()
    .max(100)
    .default(1)
    .describe('Simulator only: 1 = real time; 0.1 makes every simulated delay 10x shorter.'),
  SIM_ARI_PORT: port
    .default(0)
    .describe('Simulator only: port of its ARI server (0 = any free port).'),

  CRM_ROUTE_URL: httpUrl
    .optional()
    .describe(
      'Where inbound calls ask the CRM for a route (POST {callId, from, did}). Unset: FALLBACK_ROUTE.',
    ),
  CRM_API_KEY: z.string().optional().describe('Bearer token sent to CRM_ROUTE_URL. Never logged.'),
  CRM_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000)
    .default(1500)
    .describe('Hard timeout of a route lookup (connect + answer), in milliseconds.'),
  CRM_ROUTE_CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60_000)
    .describe(
      'How long a successful route answer is reused for the same caller number, in milliseconds (0 = no cache).',
    ),
  FALLBACK_ROUTE: z
    .string()
    .default('ringall:101,102,103')
    .describe(
      'Route used when the CRM is not configured, slow, down or answers garbage: ringall:EXT,… | sequential:EXT,… | hangup.',
    ),
  RING_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(600)
    .default(20)
    .describe('Default ring time of an operator leg, in seconds (a CRM route may override it).'),
  NO_ANSWER_DIALPLAN: dialplanLocation
    .optional()
    .describe(
      'Where an inbound caller goes when no operator answered: context,extension[,priority] (e.g. voicemail,s,1). Empty: the caller is hung up.',
    ),
  OUTBOUND_RING_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(600)
    .default(60)
    .describe('How long a customer leg rings on an outbound call before giving up, in seconds.'),
  OPERATOR_ENDPOINT: z
    .string()
    .regex(/\{extension\}/, 'must contain {extension}')
    .default('PJSIP/{extension}')
    .describe('Dial string of an operator phone; {extension} is replaced.'),
  OPERATOR_CALLERID_PREFIX: z
    .string()
    .default('CRM: ')
    .describe("Prefix of the customer name shown on the operator's phone as CALLERID(name)."),
  TRUNKS: trunkMap
    .default([{ prefix: '*', template: 'PJSIP/{number}@client-trunk' }])
    .describe(
      'Outbound trunk by number prefix: prefix=Tech/{number}@trunk,… ; longest prefix wins, * is the default.',
    ),
  COMPANY_CALLER_ID: z
    .string()
    .regex(/^\+?\d{3,20}$/)
    .default('74957654321')
    .describe('Caller ID number presented to customers on outbound calls.'),

  CRM_WEBHOOK_URL: httpUrl
    .optional()
    .describe(
      'Where lifecycle events are POSTed (signed). Unset: events are only logged at debug level.',
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
  SHUTDOWN_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(10_000)
    .describe('On SIGTERM, how long pending webhooks may still be delivered, in milliseconds.'),
  TRUST_PROXY: bool
    .default(false)
    .describe('Trust X-Forwarded-For from a reverse proxy (true/false).'),
});

/** Parsed and validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Names of every configuration variable. */
export const CONFIG_KEYS = Object.keys(configSchema.shape) as Array<keyof Config>;
