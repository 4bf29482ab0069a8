// The agent's own metrics (the engine, informers, reports and configuration register theirs),
// registered once per registry.
import type { Counter, Gauge, Registry } from 'prom-client';
import { METRIC_PREFIX, counterIn, gaugeIn } from '../metrics.js';

export interface AgentMetrics {
  invalidInputs: Counter<'kind'>;
  suspect: Gauge;
  starved: Gauge;
  unreachableByImport: Gauge<'namespace' | 'serviceimport'>;
}

export function agentMetrics(registry: Registry): AgentMetrics {
  return {
    invalidInputs: counterIn(registry, {
      name: `${METRIC_PREFIX}invalid_inputs_total`,
      help: 'Invalid addresses or slices found in ServiceImports and EndpointSlices (each counted once).',
      labelNames: ['kind'],
    }),
    suspect: gaugeIn(registry, {
      name: `${METRIC_PREFIX}node_suspect`,
      help: '1 when this node sees so many targets unreachable that it suspects itself (self-isolation guard).',
    }),
    starved: gaugeIn(registry, {
      name: `${METRIC_PREFIX}node_starved`,
      help: '1 while this agent counts as starved (its event loop stalled beyond half of probe.timeout); with abstainWhenStarved it then votes no address unreachable.',
    }),
    unreachableByImport: gaugeIn(registry, {
      name: `${METRIC_PREFIX}serviceimport_unreachable_addresses`,
      help: 'Addresses of a ServiceImport this node sees unreachable.',
      labelNames: ['namespace', 'serviceimport'],
    }),
  };
}
