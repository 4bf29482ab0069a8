// The agent against the real apiserver: two agents in two "node" namespaces probe "pods" in
// network namespaces and publish ProbeReports.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import { controlPlaneState } from '../harness/cluster.js';
import { AGENT_METRICS_PORT, createScenario, type Scenario } from '../harness/scenario.js';

const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;
const FAILURE_THRESHOLD = 2;
const SUCCESS_THRESHOLD = 2;
/** Time for a report write to travel through the API and back to a watcher. */
const API_LATENCY_MS = 1500;

function configYaml(interval = `${INTERVAL_MS}ms`): string {
  return `probe:
  mode: tcp
  interval: ${interval}
  timeout: ${TIMEOUT_MS}ms
  fastInterval: 200ms
  failureThreshold: ${FAILURE_THRESHOLD}
  successThreshold: ${SUCCESS_THRESHOLD}
heartbeatPeriod: 5s`;
}

describe('agent', () => {
  let s: Scenario;
  let kc: k8s.KubeConfig;
  let namespace: string;
  const nodeNames: Record<string, string> = {};

  const report = (host: string): Promise<ProbeReportSpec | undefined> => s.report(host);
  const metrics = (host: string): Promise<string> => s.metrics(host);

  function unreachableOf(spec: ProbeReportSpec | undefined): string[] {
    return spec?.serviceImports.find((v) => v.namespace === namespace && v.name === 'web')?.unreachable ?? [];
  }

  beforeAll(async () => {
    s = await createScenario({ name: 'agent', subnet: '10.233.30.0/24', pods: 3, nodes: 2, config: configYaml(), controlPlane: controlPlaneState() });
    kc = s.kc;
    namespace = s.namespace;
    Object.assign(nodeNames, s.nodeNames);
    s.startAgent('n1');
    s.startAgent('n2');
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('publishes a report per node after its first full round, with every target reachable', async () => {
    for (const host of ['n1', 'n2']) {
      await expect.poll(async () => (await report(host))?.targetsProbed, { timeout: 30_000, interval: 200 }).toBe(3);
      const spec = (await report(host))!;
      expect(spec.unreachableCount).toBe(0);
      expect(spec.suspect).toBe(false);
      expect(spec.nodeName).toBe(nodeNames[host]);
      expect(spec.configVersion).not.toBe('default');
    }
  });

  it('lists a cut pod in both reports within failureThreshold × interval + timeout, and drops it after restore', async () => {
    const bound = FAILURE_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + API_LATENCY_MS;
    const cutAt = Date.now();
    await s.topology.cutPod('p1');
    for (const host of ['n1', 'n2']) {
      await expect.poll(async () => unreachableOf(await report(host)), { timeout: bound, interval: 100 }).toEqual([s.pods.p1]);
    }
    const detectedMs = Date.now() - cutAt;
    expect(detectedMs).toBeLessThanOrEqual(bound);

    const restoreBound = SUCCESS_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + API_LATENCY_MS;
    await s.topology.restorePod('p1');
    for (const host of ['n1', 'n2']) {
      await expect.poll(async () => unreachableOf(await report(host)), { timeout: restoreBound, interval: 100 }).toEqual([]);
    }
  });

  it('abstains from unreachable votes while its event loop has stalled, until it has run smoothly long enough', async () => {
    await s.topology.cutPath('n1', 'p2');
    try {
      await expect.poll(async () => unreachableOf(await report('n1')), { timeout: 10_000, interval: 100 }).toEqual([s.pods.p2]);
      // A stall far beyond half of probe.timeout (125 ms): the whole process stopped for 1.5 s.
      const agent = s.agents.get('n1')!.child;
      agent.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      agent.kill('SIGCONT');
      // Further stalls (400 ms of every second) keep it starved while the report is read, so a slow
      // apiserver cannot make the check miss the abstention.
      let stalling = true;
      const stalls = (async () => {
        while (stalling) {
          await new Promise((resolve) => setTimeout(resolve, 600));
          agent.kill('SIGSTOP');
          await new Promise((resolve) => setTimeout(resolve, 400));
          agent.kill('SIGCONT');
        }
      })();
      try {
        await expect.poll(async () => (await report('n1'))?.serviceImports.find((v) => v.name === 'web'), { timeout: 10_000, interval: 50 })
          .toMatchObject({ unreachable: [], unknown: [s.pods.p2] });
        expect(await metrics('n1')).toMatch(/^eps_probe_node_starved 1$/m);
      } finally {
        stalling = false;
        await stalls;
      }
      // Calm for interval × max(thresholds) + timeout = 2.5 s: the verdict counts again.
      await expect.poll(async () => unreachableOf(await report('n1')), { timeout: 10_000, interval: 100 }).toEqual([s.pods.p2]);
      expect(await metrics('n1')).toMatch(/^eps_probe_node_starved 0$/m);
      const events = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${nodeNames.n1}` });
      expect(events.items.map((e) => e.reason)).toEqual(expect.arrayContaining(['NodeStarved', 'NodeUnstarved']));
    } finally {
      await s.topology.restorePath('n1', 'p2');
    }
    await expect.poll(async () => unreachableOf(await report('n1')), { timeout: 10_000, interval: 100 }).toEqual([]);
  });

  it('flags a node that loses all its paths as suspect, and only that node', async () => {
    for (const pod of ['p1', 'p2', 'p3']) await s.topology.cutPath('n2', pod);
    try {
      await expect.poll(async () => (await report('n2'))?.suspect, { timeout: 10_000, interval: 200 }).toBe(true);
      expect((await report('n2'))!.suspectReason).toBeTruthy();
      expect((await report('n1'))!.suspect).toBe(false);
      expect(await metrics('n2')).toMatch(/^eps_probe_node_suspect 1$/m);
      const events = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${nodeNames.n2}` });
      expect(events.items.map((e) => e.reason)).toContain('NodeSuspect');
    } finally {
      for (const pod of ['p1', 'p2', 'p3']) await s.topology.restorePath('n2', pod);
    }
    await expect.poll(async () => (await report('n2'))?.suspect, { timeout: 10_000, interval: 200 }).toBe(false);
  });

  it('applies a ConfigMap edit without restart, and rejects an invalid one keeping the last good config', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const probesIn = async (ms: number): Promise<number> => {
      const count = async (): Promise<number> => {
        const text = await metrics('n1');
        return [...text.matchAll(/^eps_probe_probes_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      };
      const before = await count();
      await new Promise((resolve) => setTimeout(resolve, ms));
      return (await count()) - before;
    };
    const fastRate = await probesIn(3000);

    const goodVersion = await s.setConfig(configYaml('3s'));
    await expect.poll(async () => (await report('n1'))?.configVersion, { timeout: 15_000, interval: 200 }).toBe(goodVersion);
    const slowRate = await probesIn(6000);
    // 3 targets at 1 s is ~9 probes in 3 s; at 3 s it is ~6 in 6 s: the probe rate per second must fall.
    expect(slowRate / 6).toBeLessThan((fastRate / 3) * 0.6);

    await core.patchNamespacedConfigMap(
      { name: 'eps-probe-plugin', namespace, body: { data: { 'config.yaml': 'probe:\n  interval: 0s\n' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await expect
      .poll(async () => (await core.listNamespacedEvent({ namespace, fieldSelector: 'involvedObject.name=eps-probe-plugin' })).items.map((e) => e.message ?? ''), { timeout: 10_000 })
      .toContainEqual(expect.stringContaining('probe.interval'));
    expect(await metrics('n1')).toMatch(/^eps_probe_config_reloads_total\{result="rejected"\} [1-9]/m);
    expect(await metrics('n1')).toMatch(/^eps_probe_config_last_reload_successful 0$/m);
    const rejectedLog = s.agents.get('n1')!.logs.find((line) => line.key === 'probe.interval');
    expect(rejectedLog?.level).toBe('error');
    expect((await report('n1'))!.configVersion).toBe(goodVersion);

    // Back to the fast configuration for the tests after this one.
    await s.setConfig(configYaml());
    await expect.poll(async () => (await report('n1'))?.configVersion, { timeout: 15_000 }).not.toBe(goodVersion);
  });

  it('serves /metrics that promtool accepts, in Prometheus text and OpenMetrics', async () => {
    const text = await metrics('n1');
    execFileSync('promtool', ['check', 'metrics'], { input: text });
    const open = await fetch(`http://${s.nodeAddresses.n1}:${AGENT_METRICS_PORT}/metrics`, { headers: { accept: 'application/openmetrics-text' } });
    expect(open.headers.get('content-type')).toContain('application/openmetrics-text');
    expect(await open.text()).toMatch(/# EOF\n$/);
    const ready = await fetch(`http://${s.nodeAddresses.n1}:${AGENT_METRICS_PORT}/readyz`);
    expect(ready.status).toBe(200);
  });
});
