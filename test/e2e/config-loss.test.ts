// Losing the configuration must not restore dead endpoints: a deleted or emptied ConfigMap is an error
// like a rejected edit and the last good configuration stays in force, also across restarts; and no
// node votes on an address it did not probe (an address the allow-list refuses).
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configVersion, parseConfig } from '../../src/config/config.js';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../harness/fixtures.js';
import { POD_PORT, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';
import { seriesValue } from '../harness/metrics.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s
controller:
  reportStaleAfter: 6s`);
const HOSTS = ['n1', 'n2'];
const CONFIG_NAME = 'eps-probe-plugin';
/** Longer than the controller needed to restore a still-unreachable endpoint when this went wrong (0.3 s). */
const HOLD_MS = 4000;

describe('configuration loss', () => {
  let s: Scenario;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let controllerPort: number;
  /** The ConfigMap's config.yaml as the scenario wrote it, and the version agents report for it. */
  let goodText: string;
  let goodVersion: string;

  /** '' while the process is not serving yet. */
  const controllerMetrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${controllerPort}/metrics`).catch(() => undefined))?.text() ?? '';
  const agentMetrics = (host: string): Promise<string> => s.metrics(host).catch(() => '');
  const metricValue = (text: string, series: string): number => seriesValue(text, series) ?? 0;
  const eventsOf = async (reason: string, namespace = s.configNamespace): Promise<k8s.CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace, fieldSelector: `reason=${reason}` })).items;
  /** Every agent reports on the good configuration, in a report written after `since` (ms). */
  const reportsOnGoodConfig = async (since = 0): Promise<boolean> =>
    (await Promise.all(HOSTS.map((h) => s.report(h)))).every((r) => r?.configVersion === goodVersion && Date.parse(r.heartbeatTime) > since);

  async function startAll(): Promise<void> {
    for (const host of HOSTS) s.startAgent(host);
    s.startController('c1', {}, controllerPort);
  }

  async function stopAll(): Promise<void> {
    await Promise.all([...s.agents.values(), ...s.controllers.values()].map((p) => p.stop()));
    s.agents.clear();
    s.controllers.clear();
  }

  async function cutAndWaitPruned(pod: string): Promise<void> {
    await s.topology.cutPod(pod);
    await expect.poll(() => s.sliceAddresses(), { timeout: 10_000, interval: 100 }).not.toContain(s.pods[pod]);
    expect(await s.disconnected()).toBe(s.pods[pod]);
  }

  async function restoreAndWaitRestored(pod: string): Promise<void> {
    await s.topology.restorePod(pod);
    await expect.poll(() => s.sliceAddresses(), { timeout: 10_000, interval: 100 }).toContain(s.pods[pod]);
    await expect.poll(() => s.disconnected(), { timeout: 5000, interval: 100 }).toBe('');
  }

  async function writeConfigMap(data: Record<string, string>): Promise<void> {
    const body = { metadata: { name: CONFIG_NAME, namespace: s.configNamespace }, data };
    try {
      await core.replaceNamespacedConfigMap({ name: CONFIG_NAME, namespace: s.configNamespace, body });
    } catch {
      await core.createNamespacedConfigMap({ namespace: s.configNamespace, body });
    }
  }

  beforeAll(async () => {
    s = await createScenario({ name: 'part', subnet: '10.233.24.0/24', pods: 3, nodes: 2, config: CONFIG, controlPlane: controlPlaneState() });
    core = s.kc.makeApiClient(k8s.CoreV1Api);
    custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
    goodText = (await core.readNamespacedConfigMap({ name: CONFIG_NAME, namespace: s.configNamespace })).data!['config.yaml']!;
    goodVersion = configVersion(parseConfig(goodText));
    controllerPort = await freePort();
    await startAll();
    await until('reports of both agents', async () => (await Promise.all(HOSTS.map((h) => s.report(h)))).every((r) => r?.targetsProbed === 3));
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('keeps the only probeable endpoint when the allow-list refuses the other address', async () => {
    // `p3,::1`: the agents refuse ::1 (loopback is never probed unless listed), so only p3 counts
    // for the ejection cap, which never prunes the last probeable endpoint.
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name: 'edge', namespace: s.namespace, addresses: [s.pods.p3!, '::1'], ports: [POD_PORT] }),
    });
    await s.kc.makeApiClient(k8s.DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: s.namespace, body: makeEndpointSlice({ name: 'edge-member1', namespace: s.namespace, service: 'edge', addresses: [s.pods.p3!], port: POD_PORT }),
    });
    await s.topology.cutPod('p3');
    try {
      // web (p1, p2, p3) loses p3; edge keeps it and says why.
      await expect.poll(() => s.sliceAddresses(), { timeout: 10_000, interval: 100 }).not.toContain(s.pods.p3);
      await expect
        .poll(async () => (await eventsOf('EjectionCapped', s.namespace)).filter((e) => e.involvedObject.name === 'edge').map((e) => e.message), { timeout: 5000, interval: 200 })
        .toEqual([expect.stringContaining(s.pods.p3!)]);
      const edge = (await custom.getNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports', name: 'edge' })) as { metadata: k8s.V1ObjectMeta };
      expect(edge.metadata.annotations?.['kosmos.io/disconnected-address'] ?? '').toBe('');
    } finally {
      await s.topology.restorePod('p3');
    }
    await expect.poll(() => s.sliceAddresses(), { timeout: 10_000, interval: 100 }).toContain(s.pods.p3);
  });

  it('never restores a disconnected address that the allow-list refuses: no node judged it', async () => {
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name: 'refused', namespace: s.namespace, addresses: [s.pods.p2!, '::1'], disconnected: '::1', ports: [POD_PORT] }),
    });
    const annotation = async (): Promise<string | undefined> =>
      ((await custom.getNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports', name: 'refused' })) as { metadata: k8s.V1ObjectMeta })
        .metadata.annotations?.['kosmos.io/disconnected-address'];
    // Both agents see p2 reachable and say nothing of ::1; that must not count as "reachable".
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    expect(await annotation()).toBe('::1');
    expect((await eventsOf('EndpointsReconnected', s.namespace)).filter((e) => e.involvedObject.name === 'refused')).toEqual([]);
  });

  it('says that an address released by the ejection cap is still unreachable', async () => {
    await cutAndWaitPruned('p1');
    await s.setConfig(`${CONFIG}\n  maxEjectionShare: 0`);
    try {
      await expect.poll(() => s.sliceAddresses(), { timeout: 10_000, interval: 100 }).toContain(s.pods.p1);
      await expect
        .poll(async () => (await eventsOf('EndpointsReleased', s.namespace)).map((e) => e.message), { timeout: 5000, interval: 200 })
        .toContainEqual(expect.stringMatching(new RegExp(`^still unreachable, back in service because the ejection cap \\(0\\) .*; restored: ${s.pods.p1}$`)));
      const reconnected = (await eventsOf('EndpointsReconnected', s.namespace)).filter((e) => e.involvedObject.name === 'web');
      expect(reconnected.map((e) => e.message)).not.toContainEqual(expect.stringContaining(s.pods.p1!));
    } finally {
      await s.setConfig(CONFIG);
    }
    await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe(s.pods.p1);
    await restoreAndWaitRestored('p1');
  });

  it.each([
    { name: 'the ConfigMap is deleted', reason: 'the ConfigMap does not exist', lose: () => core.deleteNamespacedConfigMap({ name: CONFIG_NAME, namespace: s.configNamespace }) },
    { name: 'its data is emptied', reason: 'the ConfigMap has no config.yaml key', lose: () => writeConfigMap({}) },
    { name: 'config.yaml is emptied', reason: 'config.yaml is empty', lose: () => writeConfigMap({ 'config.yaml': '' }) },
  ])('keeps a pruned endpoint pruned when $name, with an Event, a metric and a log line', async ({ reason, lose }) => {
    await cutAndWaitPruned('p1');
    const missingBefore = metricValue(await agentMetrics('n1'), 'eps_probe_config_reloads_total{result="missing"}');
    try {
      await lose();
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      expect(await s.disconnected()).toBe(s.pods.p1);
      expect(await s.sliceAddresses()).not.toContain(s.pods.p1);
      expect(await reportsOnGoodConfig()).toBe(true);
      expect((await s.report('n1'))!.targetsProbed).toBe(3);
      expect(metricValue(await agentMetrics('n1'), 'eps_probe_config_reloads_total{result="missing"}')).toBe(missingBefore + 1);
      expect(metricValue(await agentMetrics('n1'), 'eps_probe_config_last_reload_successful')).toBe(0);
      expect(metricValue(await controllerMetrics(), 'eps_probe_config_last_reload_successful')).toBe(0);
      // The leader's copy of the last good configuration is in force: the same settings, the same version.
      expect(metricValue(await agentMetrics('n1'), `eps_probe_config_info{version="${goodVersion}",source="last-good"}`)).toBe(1);
      const events = (await eventsOf('ConfigMissing')).filter((e) => e.involvedObject.name === CONFIG_NAME).map((e) => e.message);
      expect(events).toContainEqual(expect.stringContaining(reason));
      const logged = s.agents.get('n1')!.logs.find((line) => line.level === 'error' && String(line.msg).includes(reason));
      expect(logged?.configMap).toBe(`${s.configNamespace}/${CONFIG_NAME}`);
    } finally {
      await writeConfigMap({ 'config.yaml': goodText });
    }
    await expect.poll(async () => metricValue(await agentMetrics('n1'), 'eps_probe_config_last_reload_successful'), { timeout: 5000, interval: 100 }).toBe(1);
    await restoreAndWaitRestored('p1');
  });

  it('restarts agents and controller on the last good configuration while a rejected edit sits in the ConfigMap', async () => {
    expect(await s.setConfig(`${CONFIG}\nprobeReplicas: -1`)).toBeUndefined();
    try {
      await stopAll();
      const restartedAt = Date.now();
      await startAll();
      for (const host of HOSTS) {
        await expect.poll(async () => metricValue(await agentMetrics(host), `eps_probe_config_info{version="${goodVersion}",source="last-good"}`), { timeout: 20_000, interval: 200 }).toBe(1);
      }
      await expect.poll(() => reportsOnGoodConfig(restartedAt), { timeout: 20_000, interval: 200 }).toBe(true);
      await expect.poll(async () => metricValue(await controllerMetrics(), 'eps_probe_controller_reports{state="live"}'), { timeout: 10_000, interval: 200 }).toBe(2);
      const metrics = await agentMetrics('n1');
      expect(metricValue(metrics, 'eps_probe_config_reloads_total{result="rejected"}')).toBe(1);
      expect(metricValue(metrics, 'eps_probe_config_last_reload_successful')).toBe(0);
      // The reports count, so pruning goes on.
      await cutAndWaitPruned('p2');
      await restoreAndWaitRestored('p2');
      // Where the last good configuration came from: the leader's copy.
      const lastGood = await core.readNamespacedConfigMap({ name: `${CONFIG_NAME}-last-good`, namespace: s.configNamespace });
      expect(lastGood.metadata?.annotations?.['epsprobe.kosmos.io/config-version']).toBe(goodVersion);
      expect(parseConfig(lastGood.data!['config.yaml']!)).toEqual(parseConfig(goodText));
    } finally {
      await writeConfigMap({ 'config.yaml': goodText });
    }
    await expect.poll(async () => metricValue(await agentMetrics('n1'), `eps_probe_config_info{version="${goodVersion}",source="configmap"}`), { timeout: 5000, interval: 100 }).toBe(1);
  });
});
