// The self-isolation guard on the real topology: a node is judged against its peers, so an outage that
// every node sees is pruned (a small service, or every pod of one remote cluster), while a node cut
// off from everything is ignored and prunes nothing.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { makeEndpointSlice } from '../harness/fixtures.js';
import { POD_PORT, SERVICE, SLICE, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';
import { scrape, seriesValue } from '../harness/metrics.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s
selfIsolationShare: 0.5
controller:
  maxEjectionShare: 0.67
  reportStaleAfter: 6s`);
const HOSTS = ['n1', 'n2', 'n3'];
const SMALL = ['p1', 'p2', 'p3'];
/** Pods p3..p5 play a second remote cluster. */
const REMOTE = ['p3', 'p4', 'p5'];
const HOLD_MS = 3000;

describe('isolation guard', () => {
  let s: Scenario;
  let core: k8s.CoreV1Api;
  let controllerPort: number;

  const addressesOf = (pods: readonly string[]): string[] => pods.map((p) => s.pods[p]!);
  const sorted = (pods: readonly string[]): string => addressesOf(pods).sort().join(',');
  const controllerMetric = async (series: string): Promise<number> => seriesValue(await scrape(controllerPort), series) ?? Number.NaN;

  /** The ServiceImport `web` and its slice hold exactly these pods. */
  async function serveOnly(pods: readonly string[]): Promise<void> {
    const addresses = addressesOf(pods);
    await s.kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
      { group: 'multicluster.x-k8s.io', version: 'v1alpha1', namespace: s.namespace, plural: 'serviceimports', name: SERVICE, body: { metadata: { annotations: { 'kosmos.io/address': addresses.join(',') } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    const current = await discovery.readNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE });
    const fresh = makeEndpointSlice({ name: SLICE, namespace: s.namespace, service: SERVICE, addresses, port: POD_PORT });
    await discovery.replaceNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE, body: { ...fresh, metadata: { ...fresh.metadata, resourceVersion: current.metadata!.resourceVersion } } });
  }

  async function allProbe(count: number): Promise<void> {
    await expect
      .poll(async () => (await Promise.all(HOSTS.map((h) => s.report(h)))).map((r) => r?.targetsProbed), { timeout: 15_000, interval: 200 })
      .toEqual(HOSTS.map(() => count));
  }

  const isolatedEvents = async (host: string): Promise<k8s.CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `reason=NodeIsolated,involvedObject.name=${s.nodeNames[host]}` })).items;

  beforeAll(async () => {
    s = await createScenario({ name: 'iso', subnet: '10.233.25.0/24', pods: 5, nodes: 3, config: CONFIG, controlPlane: controlPlaneState() });
    core = s.kc.makeApiClient(k8s.CoreV1Api);
    await serveOnly(SMALL);
    controllerPort = await freePort();
    for (const host of HOSTS) s.startAgent(host);
    s.startController('c1', {}, controllerPort);
    await until('every agent reporting 3 targets', async () => (await Promise.all(HOSTS.map((h) => s.report(h)))).every((r) => r?.targetsProbed === 3));
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('disconnects 2 of 3 endpoints of a small service cut at once, which every node sees down', async () => {
    await Promise.all(['p2', 'p3'].map((p) => s.topology.cutPod(p)));
    try {
      await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe(sorted(['p2', 'p3']));
      await expect.poll(() => s.sliceAddresses(), { timeout: 5000, interval: 100 }).toEqual(addressesOf(['p1']));
      expect(await controllerMetric('eps_probe_controller_reports{state="suspect"}')).toBe(0);
    } finally {
      await Promise.all(['p2', 'p3'].map((p) => s.topology.restorePod(p)));
    }
    await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
  });

  it('ignores one node cut off from every pod: it is isolated and nothing is pruned', async () => {
    for (const pod of SMALL) await s.topology.cutPath('n1', pod);
    try {
      await expect.poll(async () => (await s.report('n1'))?.unreachableCount, { timeout: 10_000, interval: 100 }).toBe(3);
      await expect.poll(async () => (await isolatedEvents('n1')).map((e) => e.message), { timeout: 5000, interval: 200 })
        .toContainEqual(expect.stringContaining('while only 0 of 2 other nodes'));
      await expect.poll(() => controllerMetric('eps_probe_controller_reports{state="suspect"}'), { timeout: 5000, interval: 200 }).toBe(1);
      const deadline = Date.now() + HOLD_MS;
      while (Date.now() < deadline) {
        expect(await s.disconnected()).toBe('');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }

      // Under quorum `any` its votes alone would prune (cap permitting): the guard holds them back and says so.
      await s.setConfig(`${CONFIG}\n  quorum: any`);
      await expect
        .poll(async () => (await core.listNamespacedEvent({ namespace: s.namespace, fieldSelector: 'reason=IsolationGuarded' })).items.map((e) => e.message), { timeout: 10_000, interval: 200 })
        .toContainEqual(expect.stringContaining(sorted(SMALL)));
      expect(await s.disconnected()).toBe('');
      expect(await s.sliceAddresses()).toEqual(addressesOf(SMALL));
    } finally {
      for (const pod of SMALL) await s.topology.restorePath('n1', pod);
      await s.setConfig(CONFIG);
    }
    await expect.poll(() => controllerMetric('eps_probe_controller_reports{state="suspect"}'), { timeout: 10_000, interval: 200 }).toBe(0);
  });

  it('disconnects the pods of a remote cluster that every node is cut off from', async () => {
    await serveOnly([...SMALL, 'p4', 'p5']);
    await allProbe(5);
    for (const host of HOSTS) for (const pod of REMOTE) await s.topology.cutPath(host, pod);
    try {
      // 3 of 5 down on every node (more than selfIsolationShare): the peers agree, so the pods are down.
      await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe(sorted(REMOTE));
      await expect.poll(async () => (await s.sliceAddresses()).sort(), { timeout: 5000, interval: 100 }).toEqual(addressesOf(['p1', 'p2']).sort());
      expect(await controllerMetric('eps_probe_controller_reports{state="suspect"}')).toBe(0);
    } finally {
      for (const host of HOSTS) for (const pod of REMOTE) await s.topology.restorePath(host, pod);
    }
    await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
  });
});
