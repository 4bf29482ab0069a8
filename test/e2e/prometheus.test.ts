// Prometheus for real: Debian's prometheus scrapes a running agent (in a "node" network namespace)
// and controller every second and evaluates deploy/prometheus-rules.yaml; a cut link shows in the
// query API and as a pending alert.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { startPrometheus, type Prometheus } from '../harness/prometheus.js';
import { AGENT_METRICS_PORT, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const run = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const RULES = path.resolve(import.meta.dirname, '../../deploy/prometheus-rules.yaml');

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s`);

describe('deploy/prometheus-rules.yaml', () => {
  it('passes promtool check rules', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES]);
    // promtool must find every rule the file holds (a rule it skipped would never fire).
    const groups = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: unknown[] }> }).groups;
    const rules = groups.reduce((sum, group) => sum + group.rules.length, 0);
    expect(rules).toBeGreaterThanOrEqual(9);
    expect(stdout).toContain(`SUCCESS: ${rules} rules found`);
  });
});

describe('Prometheus scraping an agent and a controller', () => {
  let s: Scenario;
  let prometheus: Prometheus | undefined;
  const query = (promql: string) => prometheus!.query(promql);
  const valueOf = (promql: string) => prometheus!.valueOf(promql);

  beforeAll(async () => {
    s = await createScenario({ name: 'prom', subnet: '10.233.51.0/24', pods: 2, nodes: 1, config: CONFIG, controlPlane: controlPlaneState() });
    const controllerPort = await freePort();
    s.startAgent('n1');
    s.startController('c1', {}, controllerPort);
    prometheus = await startPrometheus({
      jobs: { agent: [`${s.nodeAddresses.n1}:${AGENT_METRICS_PORT}`], controller: [`127.0.0.1:${controllerPort}`] },
      ruleFiles: [RULES],
    });
    await until('both targets up, the agent reporting its targets', async () =>
      (await valueOf('sum(up{job=~"agent|controller"})').catch(() => undefined)) === 2 && (await valueOf('eps_probe_targets{job="agent"}')) === 2,
    );
  });

  afterAll(async () => {
    await prometheus?.stop();
    await s?.destroy();
  });

  it('sees a cut link in the reachability metrics and raises the disconnected alert, and its recovery', async () => {
    const labels = `namespace="${s.namespace}",serviceimport="web"`;
    expect(await valueOf('eps_probe_targets_unreachable{job="agent"}')).toBe(0);

    await s.topology.cutPod('p1');
    try {
      await expect.poll(() => valueOf('eps_probe_targets_unreachable{job="agent"}'), { timeout: 15_000, interval: 250 }).toBe(1);
      await expect.poll(() => valueOf(`eps_probe_serviceimport_unreachable_addresses{job="agent",${labels}}`), { timeout: 5000, interval: 250 }).toBe(1);
      await expect.poll(() => valueOf(`eps_probe_serviceimport_disconnected_addresses{job="controller",${labels}}`), { timeout: 10_000, interval: 250 }).toBe(1);
      await expect
        .poll(async () => (await query('ALERTS{alertname="EpsProbeEndpointsDisconnected"}')).map((a) => [a.metric.namespace, a.metric.serviceimport, a.metric.alertstate]), { timeout: 10_000, interval: 250 })
        .toEqual([[s.namespace, 'web', 'pending']]);
    } finally {
      await s.topology.restorePod('p1');
    }
    await expect.poll(() => valueOf('eps_probe_targets_unreachable{job="agent"}'), { timeout: 15_000, interval: 250 }).toBe(0);
    await expect.poll(() => valueOf(`eps_probe_serviceimport_disconnected_addresses{job="controller",${labels}}`), { timeout: 10_000, interval: 250 }).toBe(0);
    expect(await valueOf('sum(eps_probe_controller_leader)')).toBe(1);
    expect(await query('ALERTS{alertname="EpsProbeNoLeader"}')).toEqual([]);
  });
});
