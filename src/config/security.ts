/**
 * Configuration of the API's security: API keys, the client allow-list, the reverse proxy, and
 * the toll-fraud guard (destinations, number types, rate limit, live-call cap).
 */
import { isIP } from 'node:net';
import { isSupportedCountry } from 'libphonenumber-js';
import { z } from 'zod';
import { NUMBER_TYPES, type PhoneNumberType } from '../numbers/phone.ts';
import { DEFAULT_DENIED_NUMBER_TYPES } from '../security/destinations.ts';
import { bool, splitList } from './fields.ts';

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

/** TRUST_PROXY, API_KEYS, HTTP_ALLOWED_CIDRS and the toll-fraud guard. */
export const securityFields = {
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
};
