import { Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric of this project starts with this prefix. */
export const METRIC_PREFIX = 'eps_probe_';

/** A registry of our own (never prom-client's global one), with process metrics under our prefix. */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  }
  return registry;
}
