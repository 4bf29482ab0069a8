import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

/** Every metric of this project starts with this prefix. */
export const METRIC_PREFIX = 'eps_probe_';

/** A registry of our own (never prom-client's global one), with process metrics under our prefix. */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
    // prom-client names these gauges `_total`, which Prometheus reserves for counters (promtool rejects them).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
    }
  }
  return registry;
}

/**
 * The metric named `config.name` in `registry`, created there on first use: a second instance of a
 * component on one registry (a test, a restart inside the process) shares the series instead of
 * failing to register them.
 */
export function counterIn<T extends string>(registry: Registry, config: CounterConfiguration<T>): Counter<T> {
  return (registry.getSingleMetric(config.name) as Counter<T> | undefined) ?? new Counter({ ...config, registers: [registry] });
}

/** As counterIn, for a gauge. */
export function gaugeIn<T extends string>(registry: Registry, config: GaugeConfiguration<T>): Gauge<T> {
  return (registry.getSingleMetric(config.name) as Gauge<T> | undefined) ?? new Gauge({ ...config, registers: [registry] });
}

/** As counterIn, for a histogram. */
export function histogramIn<T extends string>(registry: Registry, config: HistogramConfiguration<T>): Histogram<T> {
  return (registry.getSingleMetric(config.name) as Histogram<T> | undefined) ?? new Histogram({ ...config, registers: [registry] });
}
