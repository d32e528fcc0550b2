/**
 * The process and Node.js runtime metrics of prom-client (`collectDefaultMetrics`) under the
 * engine's prefix: CPU, memory, open file descriptors, event loop lag, heap, GC, active handles.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

/** Prefix of every metric the engine exposes. */
export const METRIC_PREFIX = 'aricrm_';

/**
 * Gauges prom-client names with a `_total` suffix, which Prometheus reserves for counters
 * (`promtool check metrics` rejects them). Each is the sum of the `{type}` gauge of the same name
 * without the suffix (`aricrm_nodejs_active_handles{type}`), so nothing is lost by dropping them.
 */
const MISNAMED_DEFAULT_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * Register the default process metrics on `registry` with the `aricrm_` prefix, minus the
 * misnamed `_total` gauges. Call once per registry (prom-client throws "already registered" on a
 * second call).
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(METRIC_PREFIX + name);
}
