/**
 * Get-or-create helpers for prom-client metrics: every module registers its metrics on the
 * engine's registry through these, so a second instance on the same registry (tests, a restart
 * in-process) reuses the existing metric instead of throwing "already registered".
 * Naming follows Prometheus conventions: `aricrm_` prefix, base units, `_total` for counters;
 * labels are bounded sets, never a call, channel or phone number.
 */
import {
  Counter,
  Gauge,
  Histogram,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Registry,
} from 'prom-client';

/** The counter `config.name` on `registry`, created on first use. */
export function counter<L extends string = string>(
  registry: Registry,
  config: Omit<CounterConfiguration<L>, 'registers'>,
): Counter<L> {
  const existing = registry.getSingleMetric(config.name);
  return existing ? (existing as Counter<L>) : new Counter<L>({ ...config, registers: [registry] });
}

/** The gauge `config.name` on `registry`, created on first use. */
export function gauge<L extends string = string>(
  registry: Registry,
  config: Omit<GaugeConfiguration<L>, 'registers'>,
): Gauge<L> {
  const existing = registry.getSingleMetric(config.name);
  return existing ? (existing as Gauge<L>) : new Gauge<L>({ ...config, registers: [registry] });
}

/** The histogram `config.name` on `registry`, created on first use. */
export function histogram<L extends string = string>(
  registry: Registry,
  config: Omit<HistogramConfiguration<L>, 'registers'>,
): Histogram<L> {
  const existing = registry.getSingleMetric(config.name);
  return existing
    ? (existing as Histogram<L>)
    : new Histogram<L>({ ...config, registers: [registry] });
}
