// The agent against the real apiserver: two agents in two "node" namespaces probe "pods" in
// network namespaces and publish ProbeReports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConfig, controlPlaneState, freshNamespace } from '../harness/cluster.js';
import { ControlPlane } from '../harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../harness/fixtures.js';
import { startCli, type RunningProcess } from '../harness/processes.js';
import { createTopology, type Topology } from '../harness/topology.js';
import type { ProbeReportSpec } from '../../src/report/types.js';

const SUBNET = '10.233.30.0/24';
const METRICS_PORT = 9464;
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;
const FAILURE_THRESHOLD = 2;
const SUCCESS_THRESHOLD = 2;
/** Time for a report write to travel through the API and back to a watcher. */
const API_LATENCY_MS = 1500;

function configYaml(overrides = ''): string {
  return `probe:
  mode: tcp
  interval: ${INTERVAL_MS}ms
  timeout: ${TIMEOUT_MS}ms
  fastInterval: 200ms
  failureThreshold: ${FAILURE_THRESHOLD}
  successThreshold: ${SUCCESS_THRESHOLD}
allowCidrs: [${SUBNET}]
heartbeatPeriod: 5s
${overrides}`;
}

describe('agent', () => {
  let topology: Topology;
  let namespace: string;
  let kc: k8s.KubeConfig;
  const agents = new Map<string, RunningProcess>();
  const pods: Record<string, string> = {};
  const nodeNames = { n1: '', n2: '' };
  let kubeconfigFile: string;

  async function report(node: string): Promise<ProbeReportSpec | undefined> {
    try {
      const object = (await kc.makeApiClient(k8s.CustomObjectsApi).getClusterCustomObject({
        group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports', name: node,
      })) as { spec: ProbeReportSpec };
      return object.spec;
    } catch {
      return undefined;
    }
  }

  function unreachableOf(spec: ProbeReportSpec | undefined): string[] {
    return spec?.serviceImports.find((s) => s.namespace === namespace && s.name === 'web')?.unreachable ?? [];
  }

  function startAgent(host: 'n1' | 'n2'): RunningProcess {
    const agent = startCli(
      ['agent', '--kubeconfig', kubeconfigFile, '--identity', nodeNames[host], '--namespace', namespace, '--metrics-port', String(METRICS_PORT)],
      { topology, host },
    );
    agents.set(host, agent);
    return agent;
  }

  async function metrics(host: 'n1' | 'n2'): Promise<string> {
    const address = host === 'n1' ? nodeAddresses.n1 : nodeAddresses.n2;
    const response = await fetch(`http://${address}:${METRICS_PORT}/metrics`);
    return response.text();
  }

  const nodeAddresses = { n1: '', n2: '' };

  beforeAll(async () => {
    kc = adminConfig();
    namespace = await freshNamespace('agent');
    const suffix = namespace.split('-').pop()!;
    nodeNames.n1 = `node-a-${suffix}`;
    nodeNames.n2 = `node-b-${suffix}`;
    topology = await createTopology({ name: 'agent', subnet: SUBNET });
    for (const name of ['p1', 'p2', 'p3']) {
      pods[name] = (await topology.addPod(name)).address;
      await topology.listen(name, 8080);
    }
    nodeAddresses.n1 = (await topology.addNode('n1')).address;
    nodeAddresses.n2 = (await topology.addNode('n2')).address;
    const plane = ControlPlane.attach(controlPlaneState());
    const forward = await topology.forwardLoopback(controlPlaneState().apiserverPort);
    kubeconfigFile = plane.writeAdminKubeconfigVia(path.join(mkdtempSync(path.join(os.tmpdir(), 'eps-agent-')), 'kubeconfig'), forward);

    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'eps-probe-plugin' }, data: { 'config.yaml': configYaml(`namespaces: { include: [${namespace}] }\n`) } },
    });
    const addresses = Object.values(pods);
    await kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports',
      body: makeServiceImport({ name: 'web', namespace, addresses, ports: [8080] }),
    });
    await kc.makeApiClient(k8s.DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace,
      body: makeEndpointSlice({ name: 'web-member1', namespace, service: 'web', addresses, port: 8080 }),
    });
    startAgent('n1');
    startAgent('n2');
  });

  afterAll(async () => {
    await Promise.all([...agents.values()].map((agent) => agent.stop()));
    await topology?.destroy();
  });

  it('publishes a report per node after its first full round, with every target reachable', async () => {
    for (const node of [nodeNames.n1, nodeNames.n2]) {
      await expect.poll(async () => (await report(node))?.targetsProbed, { timeout: 30_000, interval: 200 }).toBe(3);
      const spec = (await report(node))!;
      expect(spec.unreachableCount).toBe(0);
      expect(spec.suspect).toBe(false);
      expect(spec.nodeName).toBe(node);
      expect(spec.configVersion).not.toBe('default');
    }
  });

  it('lists a cut pod in both reports within failureThreshold × interval + timeout, and drops it after restore', async () => {
    const bound = FAILURE_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + API_LATENCY_MS;
    const cutAt = Date.now();
    await topology.cutPod('p1');
    for (const node of [nodeNames.n1, nodeNames.n2]) {
      await expect.poll(async () => unreachableOf(await report(node)), { timeout: bound, interval: 100 }).toEqual([pods.p1]);
    }
    const detectedMs = Date.now() - cutAt;
    expect(detectedMs).toBeLessThanOrEqual(bound);

    const restoreBound = SUCCESS_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + API_LATENCY_MS;
    await topology.restorePod('p1');
    for (const node of [nodeNames.n1, nodeNames.n2]) {
      await expect.poll(async () => unreachableOf(await report(node)), { timeout: restoreBound, interval: 100 }).toEqual([]);
    }
  });

  it('flags a node that loses all its paths as suspect, and only that node', async () => {
    for (const pod of ['p1', 'p2', 'p3']) await topology.cutPath('n2', pod);
    try {
      await expect.poll(async () => (await report(nodeNames.n2))?.suspect, { timeout: 10_000, interval: 200 }).toBe(true);
      expect((await report(nodeNames.n2))!.suspectReason).toBeTruthy();
      expect((await report(nodeNames.n1))!.suspect).toBe(false);
      expect(await metrics('n2')).toMatch(/^eps_probe_node_suspect 1$/m);
      const events = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${nodeNames.n2}` });
      expect(events.items.map((e) => e.reason)).toContain('NodeSuspect');
    } finally {
      for (const pod of ['p1', 'p2', 'p3']) await topology.restorePath('n2', pod);
    }
    await expect.poll(async () => (await report(nodeNames.n2))?.suspect, { timeout: 10_000, interval: 200 }).toBe(false);
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

    const updated = await core.patchNamespacedConfigMap(
      { name: 'eps-probe-plugin', namespace, body: { data: { 'config.yaml': configYaml(`namespaces: { include: [${namespace}] }\n`).replace(`interval: ${INTERVAL_MS}ms`, 'interval: 3s') } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const goodVersion = updated.metadata!.resourceVersion!;
    await expect.poll(async () => (await report(nodeNames.n1))?.configVersion, { timeout: 15_000, interval: 200 }).toBe(goodVersion);
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
    const rejectedLog = agents.get('n1')!.logs.find((line) => line.key === 'probe.interval');
    expect(rejectedLog?.level).toBe('error');
    expect((await report(nodeNames.n1))!.configVersion).toBe(goodVersion);

    // Back to the fast configuration for the tests after this one.
    await core.patchNamespacedConfigMap(
      { name: 'eps-probe-plugin', namespace, body: { data: { 'config.yaml': configYaml(`namespaces: { include: [${namespace}] }\n`) } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await expect.poll(async () => (await report(nodeNames.n1))?.configVersion, { timeout: 15_000 }).not.toBe(goodVersion);
  });

  it('serves /metrics that promtool accepts, in Prometheus text and OpenMetrics', async () => {
    const text = await metrics('n1');
    execFileSync('promtool', ['check', 'metrics'], { input: text });
    const open = await fetch(`http://${nodeAddresses.n1}:${METRICS_PORT}/metrics`, { headers: { accept: 'application/openmetrics-text' } });
    expect(open.headers.get('content-type')).toContain('application/openmetrics-text');
    expect(await open.text()).toMatch(/# EOF\n$/);
    const ready = await fetch(`http://${nodeAddresses.n1}:${METRICS_PORT}/readyz`);
    expect(ready.status).toBe(200);
  });
});
