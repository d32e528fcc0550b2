/**
 * Configuration of calls: routing (the CRM route, fallback, ring timeouts, operators), trunks and
 * numbers, and click-to-call.
 */
import { isSupportedCountry, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import { bool, extensionList, httpUrl } from './fields.ts';

/**
 * Trunk map `prefix=template,…`, longest prefix wins, `*` is the default. The template's
 * placeholders `{number}` (digits without `+`), `{e164}` (`+7…`), `{national}` (national
 * significant number) and `{national_prefixed}` (with the national prefix, e.g. `8…` in Russia)
 * are replaced by that form of the dialled number, e.g. `7=PJSIP/{number}@client-trunk`.
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

/** The CRM route, fallback, ring timeouts, operators, trunks, region and caller ID. */
export const routingFields = {
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
};

/** CLICK_TO_CALL_*, and SERVICE_CONTEXT (transfers to a service number). */
export const clickToCallFields = {
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
};
