// Prometheus for real: Debian's prometheus scrapes a running agent (in a "node" network namespace)
// and controller every second and evaluates deploy/prometheus-rules.yaml; a cut link shows in the
// query API and as a pending alert.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { AGENT_METRICS_PORT, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const run = promisify(execFile);
const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const RULES = path.resolve(import.meta.dirname, '../../deploy/prometheus-rules.yaml');

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s`);

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('deploy/prometheus-rules.yaml', () => {
  it('passes promtool check rules', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES]);
    expect(stdout).toContain('SUCCESS: 8 rules found');
  });
});

describe('Prometheus scraping an agent and a controller', () => {
  let s: Scenario;
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let api: string;

  async function query(promql: string): Promise<Sample[]> {
    const response = await fetch(`${api}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    const body = (await response.json()) as { status: string; data: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
    return body.data.result;
  }

  const valueOf = async (promql: string): Promise<number | undefined> => {
    const [sample] = await query(promql);
    return sample ? Number(sample.value[1]) : undefined;
  };

  beforeAll(async () => {
    if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: apt-get install prometheus (make deps does)`);
    s = await createScenario({ name: 'prom', subnet: '10.233.51.0/24', pods: 2, nodes: 1, config: CONFIG, controlPlane: controlPlaneState() });
    const controllerPort = await freePort();
    s.startAgent('n1');
    s.startController('c1', {}, controllerPort);

    dir = mkdtempSync(path.join(os.tmpdir(), 'eps-prometheus-'));
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [RULES],
      scrape_configs: [
        { job_name: 'agent', static_configs: [{ targets: [`${s.nodeAddresses.n1}:${AGENT_METRICS_PORT}`] }] },
        { job_name: 'controller', static_configs: [{ targets: [`127.0.0.1:${controllerPort}`] }] },
      ],
    };
    writeFileSync(path.join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    prometheus = spawn(PROMETHEUS, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
    await until('prometheus ready', async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.ok ?? false);
    await until('both targets up, the agent reporting its targets', async () =>
      (await valueOf('sum(up{job=~"agent|controller"})').catch(() => undefined)) === 2 && (await valueOf('eps_probe_targets{job="agent"}')) === 2,
    );
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await s?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
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
