/**
 * Security counters on the engine's registry: violations are logged with the key
 * name and counted. Create once per registry.
 */
import type { Counter, Registry } from 'prom-client';
import { counter } from '../metrics/registry.ts';

/** Why a request was refused before reaching a route. */
export type AuthRefusal =
  'unauthorized' | 'forbidden' | 'ip_not_allowed' | 'api_keys_not_configured';

/**
 * Where a call refused by the toll-fraud guard came from: `api` (click-to-call, compat
 * makecall), `operator_phone` (a number an operator dialled from their phone).
 */
export type GuardSource = 'api' | 'operator_phone';

/** Why the toll-fraud guard refused to create a call. */
export type GuardRefusal =
  'destination_not_allowed' | 'destination_type_not_allowed' | 'rate_limited' | 'too_many_calls';

/** The counters. */
export interface SecurityMetrics {
  /** `aricrm_http_auth_refusals_total{reason}`. */
  authRefusals: Counter<'reason'>;
  /** `aricrm_call_guard_refusals_total{source,reason}` (see {@link GuardSource}). */
  guardRefusals: Counter<'source' | 'reason'>;
}

/** The security counters on `registry` (created on first use). */
export function createSecurityMetrics(registry: Registry): SecurityMetrics {
  return {
    authRefusals: counter(registry, {
      name: 'aricrm_http_auth_refusals_total',
      help: 'HTTP requests refused by authentication or the IP allow-list, by reason.',
      labelNames: ['reason'],
    }),
    guardRefusals: counter(registry, {
      name: 'aricrm_call_guard_refusals_total',
      help: 'Calls refused by the toll-fraud guard, by source (api, operator_phone) and reason.',
      labelNames: ['source', 'reason'],
    }),
  };
}
