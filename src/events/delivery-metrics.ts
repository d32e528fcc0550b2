/**
 * The metrics of a delivery target (webhooks, or a CRM connector's vendor requests):
 * `aricrm_<name>_deliveries_total{outcome}`, `aricrm_<name>_delivery_duration_seconds` and
 * `aricrm_<name>_queue_depth`. Used by the webhook dispatcher (src/events/dispatcher.ts).
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counter, gauge, histogram } from '../metrics/registry.ts';

const OUTCOMES = ['delivered', 'retried', 'rejected', 'dead'] as const;

/** The metrics one dispatcher updates. */
export interface WebhookMetrics {
  deliveries: Counter<'outcome'>;
  duration: Histogram;
  depth: Gauge;
}

/** The metric names of each delivery target (spelt out: docs/operations.md lists them). */
const METRIC_NAMES = {
  webhook: {
    deliveries: 'aricrm_webhook_deliveries_total',
    duration: 'aricrm_webhook_delivery_duration_seconds',
    depth: 'aricrm_webhook_queue_depth',
  },
  connector: {
    deliveries: 'aricrm_connector_deliveries_total',
    duration: 'aricrm_connector_delivery_duration_seconds',
    depth: 'aricrm_connector_queue_depth',
  },
} as const;

/** The metrics of `name` on `registry` (reused when already registered), outcomes at 0. */
export function webhookMetrics(registry: Registry, name: 'webhook' | 'connector'): WebhookMetrics {
  const what = name === 'webhook' ? 'Webhook' : 'CRM connector';
  const names = METRIC_NAMES[name];
  const deliveries = counter(registry, {
    name: names.deliveries,
    help: `${what} delivery results: delivered, retried (a retry was scheduled), rejected (4xx), dead (gave up).`,
    labelNames: ['outcome'] as const,
  });
  for (const outcome of OUTCOMES) deliveries.inc({ outcome }, 0);
  const duration = histogram(registry, {
    name: names.duration,
    help: `Duration of one ${what.toLowerCase()} delivery attempt, in seconds.`,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  const depth = gauge(registry, {
    name: names.depth,
    help: `${what} events not yet delivered, rejected or dead (including those in flight).`,
  });
  return { deliveries, duration, depth };
}
