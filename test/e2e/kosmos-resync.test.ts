// Beside Kosmos: its re-sync rebuilds a synced slice from the control-plane copy and wipes our record
// of what we pruned. When the address then recovers while Kosmos is down, we cannot put the endpoint
// back ourselves: the Event must not claim "restored", and a metric must show the address missing
// until Kosmos re-syncs.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { kosmosPrune } from '../harness/fixtures.js';
import { SLICE, createScenario, fastProbeConfig, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';
import { scrape, seriesValue } from '../harness/metrics.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 1s
controller:
  reportStaleAfter: 4s`);
const POLL = { timeout: 15_000, interval: 100 };

describe('beside a Kosmos re-sync', () => {
  let s: Scenario;
  let metricsPort: number;
  let original: k8s.V1EndpointSlice;

  /** What Kosmos writes at a re-sync: the control-plane endpoints pruned by the list, fresh metadata. */
  async function kosmosResync(disconnected: ReadonlySet<string>): Promise<void> {
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    const body: k8s.V1EndpointSlice = {
      ...original,
      metadata: { name: SLICE, namespace: s.namespace, labels: original.metadata!.labels, annotations: { 'kosmos.io/service-import': 'ture' } },
      endpoints: kosmosPrune(original.endpoints ?? [], disconnected),
    };
    await discovery.replaceNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE, body });
  }

  async function missingAddresses(): Promise<number | undefined> {
    return seriesValue(await scrape(metricsPort), `eps_probe_serviceimport_missing_addresses{namespace="${s.namespace}",serviceimport="web"}`);
  }

  async function reconnectedEvents(): Promise<string[]> {
    const events = await s.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: s.namespace, fieldSelector: 'reason=EndpointsReconnected' });
    return events.items.map((e) => e.message ?? '');
  }

  beforeAll(async () => {
    s = await createScenario({ name: 'kres', subnet: '10.233.28.0/24', pods: 3, nodes: 2, config: CONFIG, controlPlane: controlPlaneState() });
    original = await s.slice();
    metricsPort = await freePort();
    for (const host of ['n1', 'n2']) s.startAgent(host);
    s.startController('c1', {}, metricsPort);
    for (const host of ['n1', 'n2']) await until(`report of ${host}`, async () => (await s.report(host))?.targetsProbed === 3);
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('does not claim "restored" while the slice lacks the address, and counts it missing until Kosmos re-syncs', async () => {
    const address = s.pods.p3!;
    await s.topology.cutPod('p3');
    try {
      await expect.poll(() => s.disconnected(), POLL).toBe(address);
      await expect.poll(() => s.sliceAddresses(), POLL).not.toContain(address);
      // Kosmos re-syncs on our annotation patch: the slice is rebuilt, our record is gone.
      await kosmosResync(new Set([address]));
      expect((await s.slice()).metadata?.annotations?.['epsprobe.kosmos.io/pruned-endpoints']).toBeUndefined();
    } finally {
      await s.topology.restorePod('p3');
    }
    // Kosmos is down now: nobody re-syncs. The address is reachable again but not in the slice.
    await expect.poll(() => s.disconnected(), POLL).toBe('');
    expect(await s.sliceAddresses()).not.toContain(address);
    await expect.poll(missingAddresses, POLL).toBe(1);
    // "reachable again" or "no longer unreachable for the quorum", whichever node recovered first.
    const pending = new RegExp(`^(reachable again|no longer unreachable for the quorum \\(majority\\) of nodes), not in the synced slices yet, Kosmos restores them at its re-sync: ${address.replaceAll('.', '\\.')}$`);
    await expect.poll(reconnectedEvents, POLL).toEqual([expect.stringMatching(pending)]);

    // Kosmos comes back and re-syncs with the empty list: the address is back, nothing is missing.
    await kosmosResync(new Set());
    await expect.poll(missingAddresses, POLL).toBe(0);
  });

  it('says "restored" when its own record put the address back in the slice', async () => {
    const address = s.pods.p2!;
    await s.topology.cutPod('p2');
    try {
      await expect.poll(() => s.disconnected(), POLL).toBe(address);
      await expect.poll(() => s.sliceAddresses(), POLL).not.toContain(address);
    } finally {
      await s.topology.restorePod('p2');
    }
    await expect.poll(() => s.sliceAddresses(), POLL).toContain(address);
    const restored = new RegExp(`^(reachable again|no longer unreachable for the quorum \\(majority\\) of nodes), restored: ${address.replaceAll('.', '\\.')}$`);
    await expect.poll(async () => (await reconnectedEvents()).filter((m) => m.includes(address)), POLL).toEqual([expect.stringMatching(restored)]);
    expect(await missingAddresses()).toBe(0);
  });
});
