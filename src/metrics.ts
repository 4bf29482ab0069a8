import { Registry, collectDefaultMetrics } from 'prom-client';

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
