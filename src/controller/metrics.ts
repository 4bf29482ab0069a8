// The controller's metrics, registered once per registry.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { INVALID_REPORT_REASONS } from '../report/validity.js';
import { METRIC_PREFIX, counterIn, gaugeIn, histogramIn } from '../metrics.js';

export interface ControllerMetrics {
  writes: Counter<'resource' | 'result'>;
  passes: Counter<'result'>;
  passDuration: Histogram;
  disconnected: Gauge<'namespace' | 'serviceimport'>;
  ejectionCapped: Gauge<'namespace' | 'serviceimport'>;
  missing: Gauge<'namespace' | 'serviceimport'>;
  liveReports: Gauge<'state'>;
  invalidReports: Counter<'reason'>;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const metrics: ControllerMetrics = {
    writes: counterIn(registry, {
      name: `${METRIC_PREFIX}controller_writes_total`,
      help: 'API writes by resource (serviceimports, endpointslices) and result (success, conflict, error, gone).',
      labelNames: ['resource', 'result'],
    }),
    passes: counterIn(registry, {
      name: `${METRIC_PREFIX}controller_passes_total`,
      help: 'Reconcile passes by result (done, skipped: not leader).',
      labelNames: ['result'],
    }),
    passDuration: histogramIn(registry, {
      name: `${METRIC_PREFIX}controller_pass_duration_seconds`,
      help: 'Duration of a reconcile pass, writes included.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    disconnected: gaugeIn(registry, {
      name: `${METRIC_PREFIX}serviceimport_disconnected_addresses`,
      help: 'Addresses of a ServiceImport published as disconnected (and pruned from its slices).',
      labelNames: ['namespace', 'serviceimport'],
    }),
    ejectionCapped: gaugeIn(registry, {
      name: `${METRIC_PREFIX}serviceimport_ejection_capped_addresses`,
      help: 'Addresses found unreachable that the ejection cap keeps in service.',
      labelNames: ['namespace', 'serviceimport'],
    }),
    missing: gaugeIn(registry, {
      name: `${METRIC_PREFIX}serviceimport_missing_addresses`,
      help: 'Addresses not disconnected that none of the ServiceImport\'s synced slices holds (after a Kosmos re-sync overwrote our record, until Kosmos re-syncs again).',
      labelNames: ['namespace', 'serviceimport'],
    }),
    liveReports: gaugeIn(registry, {
      name: `${METRIC_PREFIX}controller_reports`,
      help: 'Node reports by state: live, suspect, stale, other-config (agent runs another configuration; not counted), invalid (cannot vote: eps_probe_controller_invalid_reports_total says why).',
      labelNames: ['state'],
    }),
    invalidReports: counterIn(registry, {
      name: `${METRIC_PREFIX}controller_invalid_reports_total`,
      help: 'Reports found unable to vote, each counted once while it stays so, by reason: malformed, name-mismatch (metadata.name is not spec.nodeName), future-heartbeat, no-node.',
      labelNames: ['reason'],
    }),
  };
  for (const reason of INVALID_REPORT_REASONS) metrics.invalidReports.inc({ reason }, 0);
  return metrics;
}

/**
 * Clears the per-ServiceImport series: at each pass (those of ServiceImports gone disappear), and when
 * a replica stops leading (only the leader's figures mean anything).
 */
export function resetServiceImportMetrics(metrics: ControllerMetrics): void {
  metrics.disconnected.reset();
  metrics.ejectionCapped.reset();
  metrics.missing.reset();
}
