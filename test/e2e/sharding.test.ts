// probeReplicas: each target is probed by R agents chosen by rendezvous hashing over the live agents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s
probeReplicas: 1
controller:
  reportStaleAfter: 6s`);

const HOSTS = ['n1', 'n2', 'n3'];
const PODS = 6;

describe('sharding with probeReplicas 1', () => {
  let s: Scenario;
  const probedTotal = async (): Promise<number> =>
    (await Promise.all(HOSTS.map((h) => s.report(h)))).reduce((sum, r) => sum + (r?.targetsProbed ?? 0), 0);

  beforeAll(async () => {
    s = await createScenario({ name: 'shard', subnet: '10.233.47.0/24', pods: PODS, nodes: 3, config: CONFIG, controlPlane: controlPlaneState() });
    for (const host of HOSTS) s.startAgent(host);
    s.startController('c1');
    await until('every agent reporting', async () => (await Promise.all(HOSTS.map((h) => s.report(h)))).every((r) => r !== undefined));
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('splits the targets so that each is probed by exactly one agent', async () => {
    // Each agent starts alone (probing everything) and narrows to its share once it sees its peers.
    await expect.poll(probedTotal, { timeout: 20_000, interval: 250 }).toBe(PODS);
    const shares = await Promise.all(HOSTS.map(async (h) => (await s.report(h))!.targetsProbed));
    expect(shares.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('still prunes a cut pod: its one prober is the quorum', async () => {
    await s.topology.cutPod('p1');
    try {
      await expect.poll(() => s.sliceAddresses(), { timeout: 8000, interval: 100 }).not.toContain(s.pods.p1);
    } finally {
      await s.topology.restorePod('p1');
    }
    await expect.poll(() => s.sliceAddresses(), { timeout: 8000, interval: 100 }).toContain(s.pods.p1);
  });

  it('moves the targets of an agent that goes away to the others', async () => {
    await s.agents.get('n3')!.kill();
    // Once n3's report is stale, n1 and n2 take over all targets between them.
    await expect
      .poll(async () => ((await s.report('n1'))?.targetsProbed ?? 0) + ((await s.report('n2'))?.targetsProbed ?? 0), { timeout: 20_000, interval: 250 })
      .toBe(PODS);
  });
});
