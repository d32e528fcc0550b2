/** Configuration of the CRM connectors (CRM_CONNECTOR): retailCRM, Bitrix24, amoCRM. */
import { z } from 'zod';
import { bool, httpUrl, splitList } from './fields.ts';

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

/** CRM_CONNECTOR, CONNECTOR_*, RETAILCRM_*, BITRIX24_*, AMOCRM_*. */
export const connectorFields = {
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
  RETAILCRM_EXTENSIONS: userExtensionMap
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
};
