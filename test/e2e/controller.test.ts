// The controller end to end: three agents in "node" namespaces, four "pods", two controller
// replicas with leader election, against the real apiserver.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { freshNamespace } from '../harness/cluster.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../harness/fixtures.js';
import { createScenario, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;
const FAILURE_THRESHOLD = 2;
const SUCCESS_THRESHOLD = 2;
/** The bounds: threshold × interval + timeout + 1 s. */
const DETECT_BOUND_MS = FAILURE_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + 1000;
const RESTORE_BOUND_MS = SUCCESS_THRESHOLD * INTERVAL_MS + TIMEOUT_MS + 1000;

const CONFIG = `probe:
  mode: tcp
  interval: ${INTERVAL_MS}ms
  timeout: ${TIMEOUT_MS}ms
  fastInterval: 200ms
  failureThreshold: ${FAILURE_THRESHOLD}
  successThreshold: ${SUCCESS_THRESHOLD}
heartbeatPeriod: 1s
selfIsolationShare: 0.8
controller:
  reportStaleAfter: 4s`;

const LEASE_ENV = { EPS_LEASE_DURATION_MS: '3000', EPS_LEASE_RENEW_DEADLINE_MS: '2000', EPS_LEASE_RETRY_PERIOD_MS: '300' };

describe('controller', () => {
  let s: Scenario;
  let original: k8s.V1EndpointSlice;

  async function leaseHolder(): Promise<string | undefined> {
    const lease = await s.kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: 'eps-probe-plugin-controller', namespace: s.namespace }).catch(() => undefined);
    return lease?.spec?.holderIdentity;
  }

  /** Waits until every agent's report lists exactly `expected` under the ServiceImport. */
  async function allReportsSee(expected: string[]): Promise<void> {
    for (const host of ['n1', 'n2', 'n3']) {
      await expect
        .poll(async () => (await s.report(host))?.serviceImports.flatMap((v) => v.unreachable) ?? [], { timeout: 10_000, interval: 100 })
        .toEqual(expected);
    }
  }

  beforeAll(async () => {
    s = await createScenario({ name: 'ctrl', subnet: '10.233.40.0/24', pods: 4, nodes: 3, config: CONFIG, controlPlane: controlPlaneState() });
    original = await s.slice();
    for (const host of ['n1', 'n2', 'n3']) s.startAgent(host);
    s.startController('c1', LEASE_ENV);
    s.startController('c2', LEASE_ENV);
    for (const host of ['n1', 'n2', 'n3']) {
      await until(`report of ${host}`, async () => (await s.report(host))?.targetsProbed === 4);
    }
    await until('a leader', async () => Boolean(await leaseHolder()), 10_000);
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('leaves ServiceImports outside its namespace filter alone, whatever their annotation says', async () => {
    const other = await freshNamespace('ctrl-other');
    await s.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: other, plural: 'serviceimports',
      body: makeServiceImport({ name: 'web', namespace: other, addresses: ['10.233.41.2'], disconnected: '10.233.41.2' }),
    });
    const body = makeEndpointSlice({ name: 'web-x', namespace: other, service: 'web', addresses: ['10.233.41.2', '10.233.41.3'] });
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    await discovery.createNamespacedEndpointSlice({ namespace: other, body });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const slice = await discovery.readNamespacedEndpointSlice({ namespace: other, name: 'web-x' });
    expect((slice.endpoints ?? []).flatMap((e) => e.addresses)).toEqual(['10.233.41.2', '10.233.41.3']);
  });

  it('prunes a cut pod from the annotation and the slice in time, and restores the exact endpoint', async () => {
    const cutAt = Date.now();
    await s.topology.cutPod('p1');
    await expect.poll(() => s.sliceAddresses(), { timeout: DETECT_BOUND_MS, interval: 50 }).not.toContain(s.pods.p1);
    const prunedMs = Date.now() - cutAt;
    expect(await s.disconnected()).toBe(s.pods.p1);
    expect(prunedMs).toBeLessThanOrEqual(DETECT_BOUND_MS);
    const events = await s.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: s.namespace, fieldSelector: 'involvedObject.kind=ServiceImport' });
    expect(events.items.map((e) => e.reason)).toContain('EndpointsDisconnected');

    const restoredAt = Date.now();
    await s.topology.restorePod('p1');
    await expect.poll(() => s.sliceAddresses(), { timeout: RESTORE_BOUND_MS, interval: 50 }).toContain(s.pods.p1);
    expect(Date.now() - restoredAt).toBeLessThanOrEqual(RESTORE_BOUND_MS);
    const restored = await s.slice();
    expect(restored.endpoints).toEqual(original.endpoints);
    expect(restored.metadata?.annotations?.['epsprobe.kosmos.io/pruned-endpoints']).toBeUndefined();
    await expect.poll(() => s.disconnected(), { timeout: 5000 }).toBe('');
  });

  it('keeps the annotation right when addresses fail one after another', async () => {
    await s.topology.cutPod('p2');
    await expect.poll(() => s.disconnected(), { timeout: DETECT_BOUND_MS + 1000, interval: 50 }).toBe(s.pods.p2);
    await s.topology.cutPod('p1');
    const both = [s.pods.p1, s.pods.p2].sort().join(',');
    await expect.poll(() => s.disconnected(), { timeout: DETECT_BOUND_MS + 1000, interval: 50 }).toBe(both);
    await expect.poll(async () => (await s.sliceAddresses()).sort(), { timeout: 2000, interval: 50 }).toEqual([s.pods.p3, s.pods.p4].sort());
    await s.topology.restorePod('p1');
    await s.topology.restorePod('p2');
    await expect.poll(() => s.disconnected(), { timeout: RESTORE_BOUND_MS + 1000, interval: 50 }).toBe('');
    await expect.poll(async () => (await s.slice()).endpoints, { timeout: 2000, interval: 50 }).toEqual(original.endpoints);
  });

  it('does not prune what only one of three agents cannot reach under majority, but does under any', async () => {
    await s.topology.cutPath('n1', 'p3');
    try {
      await expect.poll(async () => (await s.report('n1'))?.unreachableCount, { timeout: 10_000, interval: 100 }).toBe(1);
      // Give the controller several passes: the annotation must stay empty.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(await s.disconnected()).toBe('');
      expect(await s.sliceAddresses()).toContain(s.pods.p3);

      await s.setConfig(`${CONFIG}\n  quorum: any`);
      await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe(s.pods.p3);
      await expect.poll(() => s.sliceAddresses(), { timeout: 2000, interval: 50 }).not.toContain(s.pods.p3);
    } finally {
      await s.setConfig(CONFIG);
      await s.topology.restorePath('n1', 'p3');
    }
    await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
    await expect.poll(async () => (await s.slice()).endpoints, { timeout: 2000, interval: 50 }).toEqual(original.endpoints);
  });

  it('holds the ejection cap: at most half of the addresses are pruned, and says so', async () => {
    for (const pod of ['p1', 'p2', 'p3']) await s.topology.cutPod(pod);
    try {
      await allReportsSee([s.pods.p1!, s.pods.p2!, s.pods.p3!].sort());
      await expect.poll(async () => (await s.disconnected())?.split(',').filter(Boolean).length, { timeout: 5000 }).toBe(2);
      await expect.poll(() => s.sliceAddresses(), { timeout: 2000, interval: 50 }).toHaveLength(2);
      const events = await s.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: s.namespace, fieldSelector: 'reason=EjectionCapped' });
      expect(events.items.length).toBeGreaterThan(0);
    } finally {
      for (const pod of ['p1', 'p2', 'p3']) await s.topology.restorePod(pod);
    }
    await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
    await expect.poll(async () => (await s.slice()).endpoints, { timeout: 2000, interval: 50 }).toEqual(original.endpoints);
  });

  it('stops counting a report once it goes stale', async () => {
    // n3 alone cannot reach p4; under `any` its report prunes p4 until it goes stale.
    await s.setConfig(`${CONFIG}\n  quorum: any`);
    await s.topology.cutPath('n3', 'p4');
    try {
      await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe(s.pods.p4);
      await s.agents.get('n3')!.kill();
      // Stale after 4 s: then no live voter sees p4 unreachable and it is restored.
      await expect.poll(() => s.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
      await expect.poll(() => s.sliceAddresses(), { timeout: 2000, interval: 50 }).toContain(s.pods.p4);
    } finally {
      await s.topology.restorePath('n3', 'p4');
      await s.setConfig(CONFIG);
      s.startAgent('n3');
    }
  });

  it('fails over to the other replica when the leader is killed, which then keeps pruning', async () => {
    const holder = await leaseHolder();
    const leaderId = [...s.controllers.keys()].find((id) => holder?.startsWith(`${id}-`))!;
    expect(leaderId).toBeDefined();
    const killedAt = Date.now();
    await s.controllers.get(leaderId)!.kill();
    await expect.poll(leaseHolder, { timeout: 10_000, interval: 100 }).not.toBe(holder);
    // Within the lease duration (3 s) plus one retry period.
    expect(Date.now() - killedAt).toBeLessThan(3000 + 300 + 1000);

    await s.topology.cutPod('p4');
    try {
      await expect.poll(() => s.sliceAddresses(), { timeout: DETECT_BOUND_MS + 2000, interval: 50 }).not.toContain(s.pods.p4);
    } finally {
      await s.topology.restorePod('p4');
    }
    await expect.poll(() => s.sliceAddresses(), { timeout: RESTORE_BOUND_MS + 2000, interval: 50 }).toContain(s.pods.p4);
  });
});
