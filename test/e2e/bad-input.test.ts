// Garbage in ServiceImports and EndpointSlices, and addresses outside the allow-list: valid parts keep
// working, each invalid item is reported once, and nothing outside the allow-list is ever probed.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../harness/fixtures.js';
import { POD_PORT, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 5s`, 'both');

/** Packets that reached pod p3's namespace from anywhere (an iptables counter inside it). */
function packetsIntoOutsider(s: Scenario): number {
  const out = execFileSync('ip', ['netns', 'exec', s.topology.netnsOf('p3'), 'iptables', '-w', '-L', 'INPUT', '-v', '-n', '-x'], { encoding: 'utf8' });
  const rule = out.split('\n').find((line) => line.includes('eps-outsider'));
  return Number(rule?.trim().split(/\s+/)[0] ?? NaN);
}

describe('bad input and the allow-list', () => {
  let s: Scenario;
  const countLogs = (value: string): number =>
    s.agents.get('n1')!.logs.filter((line) => line.msg === 'invalid address ignored' && line.value === value).length;

  beforeAll(async () => {
    // p1 and p2 (.2, .3) are allowed; p3 (.4) exists and answers, but is outside the allow-list.
    s = await createScenario({
      name: 'bad', subnet: '10.233.45.0/24', pods: 3, nodes: 1, config: CONFIG,
      allowCidrs: ['10.233.45.2/31'], controlPlane: controlPlaneState(),
    });
    execFileSync('ip', ['netns', 'exec', s.topology.netnsOf('p3'), 'iptables', '-w', '-I', 'INPUT', '-m', 'comment', '--comment', 'eps-outsider', '-j', 'ACCEPT']);
    const { p1, p2, p3 } = s.pods as Record<'p1' | 'p2' | 'p3', string>;
    const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    const garbage = ['', ' ', `${p1} `, 'foo', '10.233.45.999', '010.233.45.2', 'FD00::1', '::1', '127.0.0.1', p3, p1, p1, p2];
    // 10k entries: mostly repeats of the same garbage, plus the valid addresses.
    const huge = Array.from({ length: 10_000 }, (_, i) => garbage[i % garbage.length]!);
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: { ...makeServiceImport({ name: 'garbage', namespace: s.namespace, ports: [POD_PORT] }), metadata: { name: 'garbage', namespace: s.namespace, annotations: { 'kosmos.io/address': huge.join(',') } } },
    });
    const slices: k8s.V1EndpointSlice[] = [
      // (An IPv6 address in an IPv4 slice is refused by the apiserver itself, so it cannot reach us.)
      makeEndpointSlice({ name: 'garbage-v4', namespace: s.namespace, service: 'garbage', addresses: [p1, p3] }),
      { ...makeEndpointSlice({ name: 'garbage-fqdn', namespace: s.namespace, service: 'garbage', addresses: ['example.invalid'] }), addressType: 'FQDN' },
      { ...makeEndpointSlice({ name: 'garbage-noports', namespace: s.namespace, service: 'garbage', addresses: [p2] }), ports: [] },
      makeEndpointSlice({ name: 'garbage-dup', namespace: s.namespace, service: 'garbage', addresses: [p1, p2], style: 'kep1645' }),
    ];
    for (const body of slices) await discovery.createNamespacedEndpointSlice({ namespace: s.namespace, body });
    s.startAgent('n1');
    s.startController('c1');
    await until('report of n1', async () => (await s.report('n1'))?.targetsProbed === 2);
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('probes the valid addresses, counts each invalid item once, and keeps working', async () => {
    expect((await s.report('n1'))!.unreachableCount).toBe(0);
    // Each distinct bad value of the annotation is logged once, though it repeats ~770 times.
    for (const value of ['foo', '10.233.45.999', '010.233.45.2', 'FD00::1', `${s.pods.p1} `]) expect(countLogs(value)).toBe(1);
    expect(countLogs('FQDN')).toBe(1); // an FQDN slice cannot be probed
    const metrics = await s.metrics('n1');
    expect(metrics).toMatch(/^eps_probe_invalid_inputs_total\{kind="ServiceImport"\} ([5-9]|1\d)$/m);
    expect(metrics).toMatch(/^eps_probe_invalid_inputs_total\{kind="EndpointSlice"\} [1-9]/m);
    expect(s.agents.get('n1')!.rawOutput).toEqual([]);

    await s.topology.cutPod('p1');
    await expect.poll(async () => (await s.report('n1'))?.serviceImports.flatMap((v) => v.unreachable), { timeout: 5000, interval: 100 })
      .toEqual([s.pods.p1, s.pods.p1]); // listed under both ServiceImports (web and garbage)
    await s.topology.restorePod('p1');
    await expect.poll(async () => (await s.report('n1'))?.unreachableCount, { timeout: 5000, interval: 100 }).toBe(0);
  });

  it('never sends a packet to an address outside the allow-list, whoever names it', async () => {
    // p3 is named by the garbage annotation and slice; loopback by the annotation too.
    const metrics = await s.metrics('n1');
    expect(metrics).toMatch(/^eps_probe_target_refused_total [1-9]/m);
    const refusedLog = s.agents.get('n1')!.logs.find((line) => JSON.stringify(line).includes(s.pods.p3!) && String(line.msg).includes('refused'));
    expect(refusedLog).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(packetsIntoOutsider(s)).toBe(0);
  });
});
