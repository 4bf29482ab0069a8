// deploy/grafana-dashboard.json for real (Grafana itself is not available here): the JSON has what
// an import needs, and every panel's query, its template variables substituted, returns data from
// Debian's Prometheus scraping two agents and a controller while a link is cut.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { startPrometheus, type Prometheus } from '../harness/prometheus.js';
import { AGENT_METRICS_PORT, createScenario, fastProbeConfig, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const DASHBOARD = path.resolve(import.meta.dirname, '../../deploy/grafana-dashboard.json');

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}

interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((panel) => panel.type !== 'row');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** A panel query as Grafana would send it: `$namespace` selected, `$__rate_interval` at this scrape interval. */
function substitute(expr: string, namespace: string): string {
  return expr.replaceAll('$__rate_interval', '30s').replaceAll('$namespace', namespace);
}

describe('deploy/grafana-dashboard.json', () => {
  it('is an importable dashboard whose data source is a variable', () => {
    expect(dashboard).toMatchObject({ title: 'eps-probe-plugin', uid: 'eps-probe-plugin' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'namespace', type: 'query' }));
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
    expect(queryPanels.length).toBeGreaterThanOrEqual(20);
    for (const panel of queryPanels) {
      expect(['timeseries', 'stat'], panel.title).toContain(panel.type);
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target, panel.title).toMatchObject({ refId: expect.any(String), expr: expect.any(String), datasource: DATASOURCE });
    }
  });
});

describe('every dashboard panel against Prometheus after a cut', () => {
  let s: Scenario;
  let prometheus: Prometheus | undefined;

  beforeAll(async () => {
    s = await createScenario({ name: 'stat', subnet: '10.233.27.0/24', pods: 2, nodes: 2, config: fastProbeConfig('heartbeatPeriod: 2s'), controlPlane: controlPlaneState() });
    const controllerPort = await freePort();
    s.startAgent('n1');
    s.startAgent('n2');
    s.startController('c1', {}, controllerPort);
    prometheus = await startPrometheus({
      jobs: { agent: ['n1', 'n2'].map((host) => `${s.nodeAddresses[host]}:${AGENT_METRICS_PORT}`), controller: [`127.0.0.1:${controllerPort}`] },
    });
    await until('agents and controller scraped, the agents reporting their targets', async () =>
      (await prometheus!.valueOf('sum(up)')) === 3 && (await prometheus!.valueOf('sum(eps_probe_targets{job="agent"})')) === 4,
    );
  });

  afterAll(async () => {
    await prometheus?.stop();
    await s?.destroy();
  });

  it('returns data for every query of every panel', async () => {
    const queries = queryPanels.flatMap((panel) => panel.targets!.map((target) => ({ panel: `${panel.title} (${target.refId})`, promql: substitute(target.expr, s.namespace) })));
    const empty = async (): Promise<string[]> => {
      const results = await Promise.all(queries.map(async ({ panel, promql }) => ((await prometheus!.query(promql)).length === 0 ? [panel] : [])));
      return results.flat();
    };
    await s.topology.cutPod('p1');
    try {
      await expect.poll(() => prometheus!.valueOf(`eps_probe_serviceimport_disconnected_addresses{namespace="${s.namespace}"}`), { timeout: 15_000, interval: 250 }).toBe(1);
      // Rates and quantiles need two samples inside their window: give every series time to fill it.
      await expect.poll(empty, { timeout: 60_000, interval: 1000 }).toEqual([]);
    } finally {
      await s.topology.restorePod('p1');
    }
  });
});
