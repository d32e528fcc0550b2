/**
 * The engine's configuration: every environment variable, its default and meaning. This schema
 * is the single source: `.env.example` and `docs/configuration.md` describe exactly these keys
 * (a test checks that they agree).
 */
import { isIP } from 'node:net';
import { isSupportedCountry, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import { NUMBER_TYPES, type PhoneNumberType } from '../numbers/phone.ts';
import { DEFAULT_DENIED_NUMBER_TYPES } from '../security/destinations.ts';

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

/** Split a comma-separated list, trimming entries and dropping empty ones. */
const splitList = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * Employee ↔ extension overrides of a CRM connector, `userId=extension,…` (e.g. `12=101,14=102`).
 */
const userExtensionMap = z.string().transform((s, ctx) => {
  const entries: Array<{ userId: string; extension: string }> = [];
  for (const part of splitList(s)) {
    const match = /^(\d+)=(\d{2,10})$/.exec(part);
    if (!match) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected userId=extension, e.g. 12=101`,
      });
      return z.NEVER;
    }
    entries.push({ userId: match[1]!, extension: match[2]! });
  }
  return entries;
});

/**
 * Trunk map `prefix=template,…`, longest prefix wins, `*` is the default. The template's
 * placeholders `{number}` (digits without `+`), `{e164}` (`+7…`), `{national}` (national
 * significant number) and `{national_prefixed}` (with the national prefix, e.g. `8…` in Russia)
 * are replaced by that form of the dialled number, e.g. `7=PJSIP/{number}@client-trunk`.
 */
/** Comma-separated secrets of at least 32 characters each (several for rotation). */
const secretList = z.string().transform((s, ctx) => {
  const entries = splitList(s);
  if (entries.length === 0 || entries.some((e) => e.length < 32))
    ctx.addIssue({ code: 'custom', message: 'each key must be at least 32 characters' });
  return entries;
});

/** Comma-separated web origins (scheme://host[:port]) or `*`. */
const originList = z.string().transform((s, ctx) => {
  const entries = splitList(s);
  for (const entry of entries) {
    if (entry === '*') continue;
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    if (origin === undefined || origin === 'null' || origin !== entry.replace(/\/$/, ''))
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not an origin like https://crm.example.com`,
      });
  }
  return entries.map((e) => (e === '*' ? e : new URL(e).origin));
});

const trunkMap = z.string().transform((s, ctx) => {
  const entries: Array<{ prefix: string; template: string }> = [];
  for (const part of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const prefix = part.slice(0, eq).trim();
    const template = part.slice(eq + 1).trim();
    const placeholders = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
    if (
      eq <= 0 ||
      !/^(\*|\+?\d+)$/.test(prefix) ||
      placeholders.length === 0 ||
      placeholders.some((p) => !TRUNK_PLACEHOLDERS.includes(p ?? '')) ||
      !template.includes('/')
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected prefix=Tech/{number}@trunk (placeholders ${TRUNK_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}), prefix digits or *`,
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

/** Trunk template placeholders (see `src/calls/dialstrings.ts`). */
const TRUNK_PLACEHOLDERS = ['number', 'e164', 'national', 'national_prefixed'];

/** One named API key of `API_KEYS`. */
export interface ApiKeyEntry {
  /** Name of the client (logs, rate limits, idempotency scope), e.g. `crm`. */
  name: string;
  /** The secret; never logged. */
  key: string;
}

/**
 * `API_KEYS`: `name:key,…`. Names are 1-64 of `A-Z a-z 0-9 _ . -`, keys at least 24 of
 * `A-Z a-z 0-9 _ . ~ + / = -`; both unique. Error messages never show a key.
 */
const apiKeyList = z.string().transform((s, ctx) => {
  const entries: ApiKeyEntry[] = [];
  for (const [i, part] of splitList(s).entries()) {
    const colon = part.indexOf(':');
    const name = colon > 0 ? part.slice(0, colon).trim() : '';
    const key = colon > 0 ? part.slice(colon + 1).trim() : '';
    const where = name && /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? `key "${name}"` : `entry ${i + 1}`;
    let problem: string | undefined;
    if (!name || !/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      problem = 'expected name:key with a name of 1-64 letters, digits, _ . -';
    else if (key.length < 24) problem = 'the key must be at least 24 characters';
    else if (!/^[A-Za-z0-9_.~+/=-]+$/.test(key))
      problem = 'the key may only hold letters, digits and _ . ~ + / = -';
    else if (entries.some((e) => e.name === name)) problem = 'the name is used twice';
    else if (entries.some((e) => e.key === key)) problem = 'the same key is given twice';
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `${where}: ${problem}` });
      return z.NEVER;
    }
    entries.push({ name, key });
  }
  return entries;
});

/** One CIDR of `HTTP_ALLOWED_CIDRS`. */
export interface CidrEntry {
  address: string;
  /** Prefix length (32 / 128 for a single address). */
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `HTTP_ALLOWED_CIDRS`: `10.0.0.0/8,192.168.1.10,2001:db8::/32`. */
const cidrList = z.string().transform((s, ctx) => {
  const entries: CidrEntry[] = [];
  for (const part of splitList(s)) {
    const [address = '', prefixText, extra] = part.split('/');
    const version = isIP(address);
    const max = version === 6 ? 128 : 32;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (
      version === 0 ||
      extra !== undefined ||
      (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) ||
      prefix > max
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected an IPv4/IPv6 address or CIDR, e.g. 10.0.0.0/8`,
      });
      return z.NEVER;
    }
    entries.push({ address, prefix, family: version === 6 ? 'ipv6' : 'ipv4' });
  }
  return entries;
});

/** One entry of `OPERATOR_IP_MAP`. */
export interface WorkstationEntry {
  /** IPv4 or IPv6 address of the operator's computer. */
  ip: string;
  /** The operator's extension. */
  extension: string;
}

/** `OPERATOR_IP_MAP`: `10.0.0.5=101,10.0.0.6=102`. */
const workstationMap = z.string().transform((s, ctx) => {
  const entries: WorkstationEntry[] = [];
  for (const part of splitList(s)) {
    const eq = part.lastIndexOf('=');
    const ip = part.slice(0, Math.max(0, eq)).trim();
    const extension = part.slice(eq + 1).trim();
    if (eq <= 0 || isIP(ip) === 0 || !/^\d{2,10}$/.test(extension)) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected ip=extension, e.g. 10.0.0.5=101`,
      });
      return z.NEVER;
    }
    if (entries.some((e) => e.ip === ip)) {
      ctx.addIssue({ code: 'custom', message: `${ip} is mapped twice` });
      return z.NEVER;
    }
    entries.push({ ip, extension });
  }
  return entries;
});

/**
 * `DESTINATION_ALLOWLIST` entries: `*` (any number), a country (`RU`), an E.164 prefix (`+7495`
 * or `7495`) or an Asterisk-style pattern over the E.164 digits (`_79XXXXXXXXX`, `_7[3489]X.`).
 */
const destinationList = z.string().transform((s, ctx) => {
  const entries = splitList(s);
  for (const entry of entries) {
    const ok =
      entry === '*' ||
      (/^[A-Z]{2}$/.test(entry) && isSupportedCountry(entry)) ||
      /^\+?\d{1,15}$/.test(entry) ||
      /^_\+?([0-9XZN.!]|\[[0-9-]+\])+$/.test(entry);
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${entry}": expected *, a country code (RU), a prefix (+7495) or a pattern (_79XXXXXXXXX)`,
      });
      return z.NEVER;
    }
  }
  return entries;
});

/**
 * `DESTINATION_DENIED_TYPES`: number types (libphonenumber-js names, e.g. `PREMIUM_RATE`) the
 * toll-fraud guard refuses even inside the allow-list, comma-separated; `none` denies none.
 */
const numberTypeList = z.string().transform((s, ctx) => {
  const entries = splitList(s);
  if (entries.length === 1 && entries[0]!.toLowerCase() === 'none') return [];
  const known: readonly string[] = NUMBER_TYPES;
  for (const entry of entries) {
    if (!known.includes(entry)) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown number type "${entry}": expected none or some of ${NUMBER_TYPES.join(', ')}`,
      });
      return z.NEVER;
    }
  }
  return entries as PhoneNumberType[];
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
    .describe(
      'development | production | test. Production requires ARI_URL, an ARI_PASSWORD other than the default, API_KEYS, RECORDING_LINK_SECRET when calls are recorded, and PUBLIC_URL when HTTP_HOST is a wildcard or loopback address (0.0.0.0, ::, 127.0.0.1) and calls are recorded or CRM_CONNECTOR is retailcrm or bitrix24 (with BITRIX24_URL).',
    ),
  LOG_LEVEL: z
    .enum(['error', 'warn', 'info', 'http', 'verbose', 'debug'])
    .default('info')
    .describe('Log level of the JSON log lines on stdout.'),
  DATA_DIR: z
    .string()
    .min(1)
    .default('./data')
    .describe(
      'Directory of the engine state: the SQLite store (ari-crm.sqlite) and recordings. Back it up (docs/operations.md).',
    ),
  DATABASE_URL: z
    .string()
    .regex(/^(sqlite:|postgres(ql)?:\/\/)/i, 'expected sqlite:<path> or postgres://…')
    .optional()
    .describe(
      'The store: sqlite:<path> or postgres://user:pass@host:5432/db. Unset: sqlite:<DATA_DIR>/ari-crm.sqlite. Never logged with its password.',
    ),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case PostgreSQL identifier')
    .optional()
    .describe(
      "PostgreSQL only: the schema holding the engine's tables, created at start-up (unset: public). Each engine sharing one PostgreSQL database needs its own: at start an engine adopts every unfinished call and resends every pending event in its tables.",
    ),
  SQLITE_SYNCHRONOUS: z
    .enum(['normal', 'full'])
    .default('normal')
    .describe(
      'SQLite durability (WAL mode): normal = a committed change survives a crash of the engine (not of the OS or a power cut) and commits are fast; full = it also survives a power cut, each commit waits for the disk.',
    ),
  JOURNAL_LOG: bool
    .default(true)
    .describe(
      'SQLite with SQLITE_SYNCHRONOUS=normal only: append the writes a client waits for (a new click-to-call before its 202, a call.ringing before its webhook) to <database>.journal-log with one synchronous write, instead of waiting for the SQLite commit; replayed at start-up. As durable as normal (survives an engine crash, not an OS crash). false: they wait for the commit (true/false).',
    ),
  HTTP_HOST: z.string().min(1).default('127.0.0.1').describe('Address the HTTP API listens on.'),
  HTTP_PORT: port.default(3000).describe('Port of the HTTP API (0 = any free port).'),
  HTTP_HEADERS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe(
      'A client must send its request headers within this many milliseconds, else it gets 408 and the connection is closed (never more than HTTP_REQUEST_TIMEOUT_MS).',
    ),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(30_000)
    .describe(
      'A client must send its whole request (headers and body) within this many milliseconds, else it gets 408 and the connection is closed. Downloads (recordings) are not limited by it.',
    ),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(5_000)
    .describe(
      'An idle keep-alive connection is closed after this many milliseconds (keep it above the idle timeout of a reverse proxy that reuses connections).',
    ),
  HTTP_MAX_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1024)
    .describe(
      'HTTP connections open at once (API, probes, metrics, recording downloads); more are closed as soon as they are accepted. Live stream sockets are not counted once open (they have their own cap, STREAM_MAX_SOCKETS).',
    ),

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
    .describe('ARI password (ari.conf). The default is refused in production. Never logged.'),
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
  SIM_ANSWER_STAGGER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(700)
    .describe(
      'Simulator only: each operator phone answers this much later than the one before it in SIM_EXTENSIONS, in simulated milliseconds (101 after 1000, 102 after 1700, 103 after 2400 by default), so on a ring-all call one operator answers first and the other phones stop ringing, as with real people. 0: every phone answers after 1000 ms.',
    ),
  SIM_ARI_PORT: port
    .default(0)
    .describe('Simulator only: port of its ARI server (0 = any free port).'),

  CRM_ROUTE_URL: httpUrl
    .optional()
    .describe(
      'Where inbound calls ask the CRM for a route (POST {callId, from, did}). Unset: FALLBACK_ROUTE.',
    ),
  CRM_API_KEY: z
    .string()
    .optional()
    .describe(
      "Bearer token sent to CRM_ROUTE_URL and with call scripts' CRM requests (gather actionUrl, redirect). Never logged.",
    ),
  CRM_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000)
    .default(1500)
    .describe(
      "Hard timeout of a route lookup and of a call script's CRM request (connect + answer), in milliseconds.",
    ),
  CRM_ROUTE_CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60_000)
    .describe(
      'How long a successful route answer is reused for the same caller number and DID, in milliseconds (0 = no cache).',
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
  OPERATOR_EXTENSIONS: z
    .union([z.literal('none').transform((): string[] => []), extensionList])
    .optional()
    .describe(
      "Operators whose presence the engine follows (GET /v1/operators, operator.state webhooks): comma-separated extensions, e.g. 101,102,103; none: no presence at all (no operator.state, every extension of a route is rung). Unset: the extensions of FALLBACK_ROUTE and OPERATOR_IP_MAP, and on the simulator SIM_EXTENSIONS. Each one's phone is OPERATOR_ENDPOINT's device (PJSIP/101).",
    ),
  OPERATOR_PRESENCE_ROUTING: bool
    .default(true)
    .describe(
      "Inbound routing skips operators who are offline, on a break or dnd, or already on a call (ring-all and sequential routes, a call script's dial); when nobody is left the no-answer path runs at once. false: every extension of the route is rung whatever its presence. Extensions not in OPERATOR_EXTENSIONS are always rung.",
    ),
  OPERATOR_CALLERID_PREFIX: z
    .string()
    .default('CRM: ')
    .describe("Prefix of the customer name shown on the operator's phone as CALLERID(name)."),
  TRUNKS: trunkMap
    .default([{ prefix: '*', template: 'PJSIP/{number}@client-trunk' }])
    .describe(
      'Outbound trunk by number prefix: prefix=Tech/{number}@trunk,… ; longest prefix wins, * is the default. The template decides the form of the number sent: {number} (E.164 digits without +, e.g. 74957654321; as dialled for operator-dialled numbers), {e164} (+74957654321), {national} (4957654321), {national_prefixed} (84957654321).',
    ),
  DEFAULT_REGION: z
    .string()
    .refine((s) => isSupportedCountry(s), 'expected an ISO 3166-1 alpha-2 country code, e.g. RU')
    .transform((s): CountryCode => s)
    .default('RU')
    .describe(
      'Country (ISO 3166-1 alpha-2) in which numbers written without + are read, e.g. 8 (495) 765-43-21 in RU → +74957654321.',
    ),
  COMPANY_CALLER_ID: z
    .string()
    .regex(/^\+?\d{3,20}$/)
    .default('74957654321')
    .describe('Caller ID number presented to customers on outbound calls.'),

  RECORD_CALLS: z
    .enum(['none', 'all', 'inbound', 'outbound'])
    .default('none')
    .describe(
      'Which bridged calls are recorded (docs/recordings.md): none | all | inbound | outbound. A CRM route answer ("record": true/false) or a click-to-call request ("record") overrides it per call.',
    ),
  RECORDINGS_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Directory where recordings are kept (<YYYY>/<MM>/<DD>/<callId>.wav). Unset: <DATA_DIR>/recordings.',
    ),
  RECORDING_LINK_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .describe(
      'HMAC-SHA256 key of signed recording links (?expires=&sig=), at least 32 characters, e.g. openssl rand -hex 32. Required in production when RECORD_CALLS is not none; unset in development: a random key per run (links die on restart). Never logged.',
    ),
  RECORDING_LINK_TTL_SEC: z.coerce
    .number()
    .int()
    .min(60)
    .max(31_536_000)
    .default(604_800)
    .describe(
      'How long a signed recording link works after it was issued, in seconds (default 7 days). GET /v1/calls/{id} gives a fresh one.',
    ),
  PUBLIC_URL: httpUrl
    .optional()
    .describe(
      'Base URL the CRM and its users reach this engine at, e.g. https://pbx-engine.example.com: recording links start with it, and the retailCRM and Bitrix24 connectors register it. Unset: links start with the HTTP listen address (http://HTTP_HOST:HTTP_PORT); when that is a wildcard or loopback address (0.0.0.0, ::, 127.0.0.1), production refuses to start if calls are recorded or CRM_CONNECTOR is retailcrm or bitrix24 (with BITRIX24_URL), and other setups log a warning at start. On another address (e.g. 10.0.0.5) links are plain http:// to it, which a CRM reaching the engine through a reverse proxy with TLS or a NAT cannot use: production logs a warning at start naming PUBLIC_URL. Behind a proxy or NAT, set it to the address the CRM uses.',
    ),
  RECORDING_DOWNLOAD_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .describe(
      'Tries to download a finished recording from Asterisk, verify and store it before it is reported failed.',
    ),
  RECORDING_RETRY_DELAY_MS: z.coerce
    .number()
    .int()
    .min(1)
    .max(600_000)
    .default(2000)
    .describe(
      'Delay before the second download try, in milliseconds; doubled before each further try (at most 60000).',
    ),
  RECORDING_DELETE_FROM_ASTERISK: bool
    .default(true)
    .describe(
      'Delete a recording from Asterisk (DELETE /recordings/stored/{name}) once the engine stored it (true/false).',
    ),

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

  CRM_CONNECTOR: z
    .enum(['webhook', 'retailcrm', 'bitrix24', 'amocrm'])
    .default('webhook')
    .describe(
      "Which CRM the engine talks to: webhook (the engine's own route lookup CRM_ROUTE_URL and signed webhooks) or a built-in connector for retailcrm, bitrix24 or amocrm, which translates route lookups, call events and finished calls into that CRM's API. Webhooks and the pull feed keep working beside a connector.",
    ),
  CONNECTOR_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(5000)
    .describe(
      "Timeout of one request to the connector's CRM API (events, call history, extensions), in milliseconds. Route lookups use CRM_TIMEOUT_MS.",
    ),
  CONNECTOR_EXTENSIONS_REFRESH_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(86_400_000)
    .default(300_000)
    .describe(
      'How often the connector reads the employee ↔ extension map from the CRM again, in milliseconds (0 = only at start).',
    ),
  RETAILCRM_URL: httpUrl
    .optional()
    .describe(
      'retailCRM: the account URL, e.g. https://shop.retailcrm.ru (CRM_CONNECTOR=retailcrm).',
    ),
  RETAILCRM_API_KEY: z
    .string()
    .optional()
    .describe(
      'retailCRM: API key (sent as X-API-KEY) with the telephony, users, customers and integration-modules methods allowed. Never logged.',
    ),
  RETAILCRM_CLIENT_ID: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      "retailCRM: the secret the CRM sends as clientId with click-to-call and status changes (the telephony module's clientId); the engine refuses requests without it. Never logged.",
    ),
  RETAILCRM_MODULE_CODE: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _')
    .default('ari-crm')
    .describe('retailCRM: code of the telephony integration module the engine registers.'),
  RETAILCRM_EXTENSIONS: z
    .string()
    .transform((s, ctx) => {
      const entries: Array<{ userId: string; extension: string }> = [];
      for (const part of splitList(s)) {
        const match = /^(\d+)=(\d{2,10})$/.exec(part);
        if (!match) {
          ctx.addIssue({
            code: 'custom',
            message: `bad entry "${part}": expected userId=extension, e.g. 12=101`,
          });
          return z.NEVER;
        }
        entries.push({ userId: match[1]!, extension: match[2]! });
      }
      return entries;
    })
    .default([])
    .describe(
      "retailCRM: employee ↔ extension overrides, userId=extension,… (e.g. 12=101,14=102); they win over the module's extension codes read from the CRM and are sent as additionalCodes when registering.",
    ),
  RETAILCRM_TIME_ZONE: z
    .string()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-GB', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'expected an IANA time zone such as Europe/Moscow')
    .default('UTC')
    .describe(
      'retailCRM: time zone of the call dates uploaded to the call history ("Y-m-d H:i:s"), e.g. Europe/Moscow.',
    ),
  RETAILCRM_RATE_LIMIT_PER_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(10)
    .describe('retailCRM: most API requests per second with the key (telephony methods excepted).'),
  RETAILCRM_TELEPHONY_RATE_LIMIT_PER_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(40)
    .describe('retailCRM: most /api/v5/telephony/* requests per second with the key.'),
  BITRIX24_URL: httpUrl
    .optional()
    .describe(
      'Bitrix24: the portal URL, e.g. https://company.bitrix24.ru (CRM_CONNECTOR=bitrix24 with a local application; REST methods are called at <portal>/rest/<method>.json).',
    ),
  BITRIX24_WEBHOOK_URL: httpUrl
    .optional()
    .describe(
      'Bitrix24: an inbound webhook URL, https://<portal>/rest/<user id>/<secret>/ (scopes telephony, crm, user), instead of a local application; Bitrix24 may refuse the telephony register/finish methods through a webhook on newer portals. Never logged.',
    ),
  BITRIX24_CLIENT_ID: z
    .string()
    .optional()
    .describe("Bitrix24: the local application's client_id (application code, local.…)."),
  BITRIX24_CLIENT_SECRET: z
    .string()
    .optional()
    .describe(
      "Bitrix24: the local application's client_secret (refreshes the OAuth tokens). Never logged.",
    ),
  BITRIX24_ACCESS_TOKEN: z
    .string()
    .optional()
    .describe(
      'Bitrix24: the first OAuth access token of the local application, when the install handler (/connectors/bitrix24/install) was not used; refreshed tokens are kept in the store and win over it. Never logged.',
    ),
  BITRIX24_REFRESH_TOKEN: z
    .string()
    .optional()
    .describe(
      'Bitrix24: the first OAuth refresh token of the local application (see BITRIX24_ACCESS_TOKEN). Never logged.',
    ),
  BITRIX24_OAUTH_URL: httpUrl
    .default('https://oauth.bitrix.info/oauth/token/')
    .describe(
      "Bitrix24: the OAuth server that refreshes tokens (grant_type=refresh_token); an on-premise portal's is https://<portal>/oauth/token/.",
    ),
  BITRIX24_APPLICATION_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Bitrix24: the application token Bitrix24 sends as auth[application_token] with its events (click-to-call ONEXTERNALCALLSTART); the engine refuses events without it. Unset: the token received by the install handler is used. Never logged.',
    ),
  BITRIX24_CRM_CREATE: bool
    .default(true)
    .describe(
      'Bitrix24: create a lead (or contact) for a number the CRM does not know when a call is registered (CRM_CREATE).',
    ),
  BITRIX24_ADD_TO_CHAT: bool
    .default(true)
    .describe(
      "Bitrix24: post the finished call into the operator's chat (ADD_TO_CHAT of telephony.externalcall.finish).",
    ),
  BITRIX24_ENTITY_TYPES: z
    .string()
    .transform((s, ctx) => {
      const types = splitList(s).map((t) => t.toUpperCase());
      for (const type of types)
        if (!['CONTACT', 'COMPANY', 'LEAD'].includes(type)) {
          ctx.addIssue({ code: 'custom', message: `unknown entity type "${type}"` });
          return z.NEVER;
        }
      return types as Array<'CONTACT' | 'COMPANY' | 'LEAD'>;
    })
    .default(['CONTACT', 'COMPANY', 'LEAD'])
    .describe(
      'Bitrix24: the CRM entities a caller is looked up in (crm.duplicate.findbycomm), in order of preference: CONTACT, COMPANY, LEAD; the first found gives the responsible manager.',
    ),
  BITRIX24_DEFAULT_USER_ID: z
    .string()
    .regex(/^\d+$/, 'a Bitrix24 user id (digits)')
    .default('1')
    .describe(
      "Bitrix24: the user a call is registered to when no operator's phone rang for it (e.g. the caller hung up during the greeting), so the CRM still lists it.",
    ),
  BITRIX24_EXTENSIONS: userExtensionMap
    .default([])
    .describe(
      "Bitrix24: employee ↔ extension overrides, userId=extension,… (e.g. 1=101,5=102); they win over the users' internal numbers (UF_PHONE_INNER) read from the portal.",
    ),
  BITRIX24_RATE_LIMIT_PER_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(2)
    .describe(
      'Bitrix24: most REST requests per second (the cloud portals allow 2 per second per application on most plans).',
    ),
  AMOCRM_URL: httpUrl
    .optional()
    .describe(
      'amoCRM / Kommo: the account URL, e.g. https://example.amocrm.ru or https://example.kommo.com (CRM_CONNECTOR=amocrm).',
    ),
  AMOCRM_TOKEN: z
    .string()
    .min(20, 'must be at least 20 characters')
    .optional()
    .describe(
      "amoCRM / Kommo: the private integration's long-lived token, sent as Authorization: Bearer. Never logged.",
    ),
  AMOCRM_USERS: z
    .string()
    .transform((s, ctx) => {
      const entries: Array<{ userId: string; extension: string }> = [];
      for (const part of splitList(s)) {
        const match = /^(\d{2,10}):(\d+)$/.exec(part);
        if (!match) {
          ctx.addIssue({
            code: 'custom',
            message: `bad entry "${part}": expected extension:userId, e.g. 101:123456`,
          });
          return z.NEVER;
        }
        entries.push({ userId: match[2]!, extension: match[1]! });
      }
      return entries;
    })
    .default([])
    .describe(
      "amoCRM / Kommo: operator extension ↔ amoCRM user id, extension:userId,… (e.g. 101:123456,102:234567): whose phone rings gets the incoming-call notification, a contact's responsible user's extension is rung first, a widget's click-to-call rings the user's extension.",
    ),
  AMOCRM_CALL_SOURCE: z
    .string()
    .min(1)
    .max(64)
    .default('ari-crm')
    .describe('amoCRM / Kommo: the source name of the calls the engine adds to the CRM.'),
  AMOCRM_RECORDING_WAIT_SEC: z.coerce
    .number()
    .int()
    .min(0)
    .max(3600)
    .default(120)
    .describe(
      'amoCRM / Kommo: how long the finished call of a recorded conversation waits for its recording to be stored before it is added to the CRM anyway, in seconds (amoCRM cannot add the link later).',
    ),
  AMOCRM_RATE_LIMIT_PER_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(7)
    .describe('amoCRM / Kommo: most API requests per second (amoCRM allows 7 per integration).'),
  SHUTDOWN_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(10_000)
    .describe(
      'On SIGTERM, how long recording downloads in progress may finish and pending webhooks still be delivered, in milliseconds; after the engine disconnects from Asterisk, what is left of it (at least 1 s) lets CRM requests and call steps in flight finish so that their changes are stored. Calls in progress stay up in Asterisk.',
    ),
  TRUST_PROXY: bool
    .default(false)
    .describe(
      'Trust X-Forwarded-For from one reverse proxy in front of the engine (true/false): the client address is the last one the proxy added. Affects HTTP_ALLOWED_CIDRS and OPERATOR_IP_MAP.',
    ),

  API_KEYS: apiKeyList
    .default([])
    .describe(
      'API keys of the CRM clients: name:key,… (key at least 24 characters, e.g. openssl rand -hex 24). Sent as Authorization: Bearer <key>; the name appears in logs, never the key. Required in production; unset in development: the API answers 503 api_keys_not_configured. Never logged.',
    ),
  HTTP_ALLOWED_CIDRS: cidrList
    .default([])
    .describe(
      'Optional allow-list of client addresses (IPv4/IPv6 addresses or CIDRs, comma-separated) for every route except /healthz and /readyz; others get 403 ip_not_allowed. Empty: any address.',
    ),
  DESTINATION_ALLOWLIST: destinationList
    .optional()
    .describe(
      'Toll-fraud guard: numbers the engine may dial to customers (click-to-call, compat makecall, and numbers operators dial from their phones through Stasis outbound). Comma-separated: * (any), a country (RU), an E.164 prefix (+7495) or an Asterisk-style pattern over the E.164 digits (_79XXXXXXXXX). Unset: the numbers of DEFAULT_REGION only.',
    ),
  DESTINATION_DENIED_TYPES: numberTypeList
    .default([...DEFAULT_DENIED_NUMBER_TYPES])
    .describe(
      "Toll-fraud guard: number types refused even inside DESTINATION_ALLOWLIST (API: 403 destination_type_not_allowed; an operator's phone call: hung up, endReason destination_type_not_allowed), by the numbering plan of the number's country. Comma-separated, of FIXED_LINE, MOBILE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, VOIP, PERSONAL_NUMBER, PAGER, UAN, VOICEMAIL; none: deny none. Default: the ranges where the caller pays above an ordinary call, partly to the number's holder (what toll fraud dials): premium-rate (e.g. +7 809, +44 9, +1 900), shared-cost, personal numbers (UK 070) and universal access numbers. Toll-free numbers cost the caller nothing and are allowed.",
    ),
  CALLS_RATE_LIMIT_PER_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(60)
    .describe(
      'Toll-fraud guard: calls one API key may create per minute (click-to-call, compat makecall); more get 429 rate_limited with Retry-After.',
    ),
  MAX_LIVE_ORIGINATED_CALLS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(50)
    .describe(
      'Toll-fraud guard: engine-originated calls (click-to-call) that may be in progress at once; more get 429 too_many_calls. Calls operators dial from their phones neither count nor are capped.',
    ),
  AUTOCALL_MAX_LIVE_CALLS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(30)
    .describe(
      'Toll-fraud guard of notification calls: notification calls this engine has in progress at once, at most (its own cap, apart from MAX_LIVE_ORIGINATED_CALLS); due jobs wait meanwhile.',
    ),
  AUTOCALL_LEASE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(3_600_000)
    .default(60_000)
    .describe(
      'Lease of a notification call attempt, ms: the engine placing it renews it every third of this while the call runs; an engine killed mid-attempt loses it after this long, and another engine (or the next start) then records the attempt lost and retries the job.',
    ),
  AUTOCALL_RING_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .min(5)
    .max(300)
    .default(30)
    .describe(
      'Seconds a notification call rings the customer before giving up (the attempt is then no_answer and retried per the job).',
    ),
  AUTOCALL_AMD_CONTEXT: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,79}$/, 'must be a dialplan context name (letters, digits, _ and -)')
    .default('crm-amd')
    .describe(
      'Dialplan context a notification call with answering-machine detection ("amd": {"enabled": true}) is continued to once answered, at extension s, priority 1: it runs AMD() and returns with Stasis(<app>,amd,${AMDSTATUS},${AMDCAUSE}) (asterisk-conf/extensions.conf ships it).',
    ),
  CLICK_TO_CALL_TRIES: z.coerce
    .number()
    .int()
    .min(1)
    .max(3)
    .default(1)
    .describe(
      'Click-to-call: how many times a busy or unanswered operator leg is tried (1-3), unless the request says.',
    ),
  CLICK_TO_CALL_TRIES_PERIOD_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(10)
    .default(5)
    .describe('Click-to-call: seconds between operator tries (1-10), unless the request says.'),
  CLICK_TO_CALL_CALLERID_NAME: z
    .string()
    .max(40)
    .default('CRM')
    .describe(
      "Click-to-call: CALLERID(name) shown on the operator's phone (the number shown is the customer's).",
    ),
  CLICK_TO_CALL_RING_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .min(1)
    .max(600)
    .default(20)
    .describe('Click-to-call: how long the operator leg rings per try, in seconds.'),
  SERVICE_CONTEXT: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'expected a dialplan context name')
    .default('service')
    .describe(
      'Dialplan context where a call transferred to a service number continues (extension = the number, priority 1).',
    ),
  OPERATOR_IP_MAP: workstationMap
    .default([])
    .describe(
      "Operators' workstations: ip=extension,… (e.g. 10.0.0.5=101). Resolves GET /v1/operators/me/current-call and the compat path's operator from the requester's address.",
    ),
  COMPAT_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/, 'expected a URL path like /asterisk.fcgi')
    .refine(
      (p) => !/^\/(v1|sim|healthz|readyz|metrics|openapi\.json)(\/|$)/.test(p),
      "must not overlap the engine's own routes",
    )
    .default('/asterisk.fcgi')
    .describe(
      'Path of the API compatible with the asterisk.fcgi FastCGI daemon (?makecall=, ?get_uniqueid_callerid, ?transfer=&dest=), e.g. /fcgi-bin/asterisk.fcgi to keep existing client URLs.',
    ),
  API_STORE_WAIT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(30_000)
    .default(2000)
    .describe(
      'Longest POST /v1/calls waits for the store to commit a new call before answering 202 anyway (logged at warn), in milliseconds. 0 = answer at once, without waiting for the commit (an engine crash right after the answer can then lose the call).',
    ),
  OPERATOR_TOKEN_SECRET: secretList
    .optional()
    .describe(
      'HMAC-SHA256 keys of operator tokens (POST /v1/operators/{extension}/tokens, the live stream and the console), comma-separated, each at least 32 characters (openssl rand -hex 32): the first signs new tokens, every one is accepted (rotation: put the new key first, drop the old one once its tokens expired). Unset in development: a random key per run (tokens die on restart); unset in production: operator tokens are refused (503 operator_tokens_not_configured) and the stream takes API keys only. Never logged.',
    ),
  OPERATOR_TOKEN_DEFAULT_TTL_SEC: z.coerce
    .number()
    .int()
    .min(60)
    .max(86_400)
    .default(3600)
    .describe(
      'Lifetime of an operator token when POST /v1/operators/{extension}/tokens gives no ttlSec, in seconds (60-86400; default 1 hour).',
    ),
  STREAM_ALLOWED_ORIGINS: originList
    .default([])
    .describe(
      'Web origins whose pages may open the live stream (GET /v1/stream), comma-separated, e.g. https://crm.example.com,https://engine.example.com; * allows any. A request without an Origin header (not a browser) is allowed; its token or API key still decides. Empty: only pages served by the engine itself (PUBLIC_URL or the Host the request came to).',
    ),
  STREAM_PING_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(300_000)
    .default(30_000)
    .describe(
      'How often the live stream pings each socket, in milliseconds; a socket that did not answer the previous ping is closed (dead connection).',
    ),
  STREAM_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(67_108_864)
    .default(1_048_576)
    .describe(
      'Most bytes the live stream keeps queued for one socket that does not read fast enough; over it the socket is closed with code 4008 (the client reconnects with ?after= and misses nothing).',
    ),
  STREAM_MAX_SOCKETS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1000)
    .describe(
      'Live stream sockets (GET /v1/stream) open at once, authenticated or not; more are refused with 503 stream_full and Retry-After. They have their own cap: they do not count against HTTP_MAX_CONNECTIONS, so consoles left open never take the connections of the API. Size it above the operators times the console tabs each keeps open, plus the admin streams.',
    ),
  STREAM_ADMIN_RESERVE: z.coerce
    .number()
    .int()
    .min(0)
    .max(999_999)
    .optional()
    .describe(
      "Places of STREAM_MAX_SOCKETS kept for admin streams (opened with an API key: the CRM's server, wallboards), so operators' consoles cannot lock them out: operator sockets hold at most STREAM_MAX_SOCKETS minus this many. Past that an operator's upgrade with the token in the URL or header is refused with 503 stream_full, and a socket whose first message brings an operator token is closed with code 1013 (try again later). 0 keeps no places. Unset: a tenth of STREAM_MAX_SOCKETS, at most 10 (10 for the default cap). When set, must be below STREAM_MAX_SOCKETS.",
    ),
  STREAM_POLL_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(50)
    .max(60_000)
    .default(1000)
    .describe(
      'PostgreSQL store: while sockets are connected, the live stream also reads the stored events this often, in milliseconds (events of other engine instances sharing the database); its own events are sent as soon as their commit is done. Unused with SQLite, where events are sent as soon as they are durable.',
    ),
  STREAM_COMMIT_WAIT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(30_000)
    .describe(
      'SQLite store: longest a new live stream socket waits, after stream.welcome, for the store to commit the events already sent live before its replay or the calls in progress are read, in milliseconds. Only a store outage (a full disk, failing writes the journal keeps retrying) makes it wait longer than a moment; past it the socket is closed with code 1013 (try again later) and the console reconnects with a back-off. A socket closed while waiting is let go at once.',
    ),
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
