/**
 * The metric every request to the CRM is timed on: the route lookup (src/crm/route-client.ts,
 * `operation="route"`) and the requests of call scripts (src/calls/verbs/crm.ts,
 * `operation="verbs"`).
 */
import type { Histogram, Registry } from 'prom-client';
import { histogram } from '../metrics/registry.ts';

/**
 * `aricrm_crm_request_duration_seconds{operation, outcome}` on `registry` (created on first use,
 * reused after): seconds a CRM request took, `outcome` ok | timeout | connection | http_status |
 * invalid_body.
 */
export function crmRequestDuration(registry: Registry): Histogram<'operation' | 'outcome'> {
  return histogram(registry, {
    name: 'aricrm_crm_request_duration_seconds',
    help: 'Duration of requests to the CRM, by operation and outcome (ok, timeout, connection, http_status, invalid_body).',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10],
  });
}
