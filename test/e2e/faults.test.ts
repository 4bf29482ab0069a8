// Faults on a control plane of this file's own (it kills and restarts apiserver and etcd):
// crashes while links change, agent restarts, racing writers, flapping links.
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import { ControlPlane } from '../harness/controlplane.js';
import { kosmosPrune } from '../harness/fixtures.js';
import { createScenario, SLICE, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s
selfIsolationShare: 0.8
controller:
  reportStaleAfter: 30s`);

const HOSTS = ['n1', 'n2', 'n3'];

interface WatchedEvents {
  /** Why the watch failed or ended before stop(): a dead watch sees nothing, which looks like "nothing changed". */
  problems: string[];
  stop(): void;
}

/**
 * Watches `path` until stop(); every error, ERROR event or early end is kept in `problems` (the
 * client also ends a watch that hears nothing for 30 s, so keep the watched stretch shorter).
 */
async function watchEvents<T>(kc: k8s.KubeConfig, path: string, onEvent: (phase: string, object: T) => void): Promise<WatchedEvents> {
  const problems: string[] = [];
  let stopped = false;
  const request = await new k8s.Watch(kc).watch(path, {}, (phase, object: T) => {
    if (phase === 'ERROR') problems.push(`ERROR event: ${JSON.stringify(object)}`);
    else onEvent(phase, object);
  }, (err: unknown) => {
    if (!stopped) problems.push(`watch of ${path} ended: ${String(err ?? 'closed by the server')}`);
  });
  return {
    problems,
    stop() {
      stopped = true;
      request.abort();
    },
  };
}

describe('faults', () => {
  let plane: ControlPlane;
  let s: Scenario;
  let original: k8s.V1EndpointSlice;

  async function converged(expectedDisconnected: string[]): Promise<void> {
    const expected = [...expectedDisconnected].sort().join(',');
    await expect.poll(() => s.disconnected(), { timeout: 20_000, interval: 100 }).toBe(expected);
    await expect
      .poll(async () => (await s.slice()).endpoints, { timeout: 10_000, interval: 100 })
      .toEqual(kosmosPrune(original.endpoints ?? [], new Set(expected.split(','))));
  }

  /** Probes of all agents that got no answer (timeout or failure), from their metrics. */
  async function missedProbes(): Promise<number> {
    let missed = 0;
    for (const host of HOSTS) {
      for (const match of (await s.metrics(host)).matchAll(/^eps_probe_probes_total\{[^}]*result="(?:timeout|failure)"[^}]*\} (\S+)$/gm)) missed += Number(match[1]);
    }
    return missed;
  }

  beforeAll(async () => {
    plane = await ControlPlane.start();
    s = await createScenario({ name: 'fault', subnet: '10.233.60.0/24', pods: 4, nodes: 3, config: CONFIG, controlPlane: plane.state });
    original = await s.slice();
    for (const host of HOSTS) s.startAgent(host);
    s.startController('c1');
    for (const host of HOSTS) await until(`report of ${host}`, async () => (await s.report(host))?.targetsProbed === 4);
  });

  // A failed test must not leave a link cut for the next one.
  afterEach(async () => {
    for (const pod of Object.keys(s?.pods ?? {})) await s.topology.restorePod(pod);
  });

  afterAll(async () => {
    await s?.destroy();
    await plane?.stop();
  });

  it('converges after kill -9 of the apiserver while links are cut and restored', async () => {
    await s.topology.cutPod('p1');
    await converged([s.pods.p1!]);
    await plane.kill('apiserver');
    // While the apiserver is down: p1 comes back, p2 goes away.
    await s.topology.restorePod('p1');
    await s.topology.cutPod('p2');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await plane.startApiserver();
    await converged([s.pods.p2!]);
    await s.topology.restorePod('p2');
    await converged([]);
  });

  it('converges after kill -9 of etcd while links are cut and restored', async () => {
    await s.topology.cutPod('p3');
    await plane.kill('etcd');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await plane.startEtcd();
    await converged([s.pods.p3!]);
    await plane.kill('etcd');
    await s.topology.restorePod('p3');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await plane.startEtcd();
    await converged([]);
  });

  it('an agent restart neither flaps its report nor changes the annotation', async () => {
    await s.topology.cutPod('p4');
    await converged([s.pods.p4!]);
    // The majority has it; wait for n1 itself too, so that what follows is about the restart only.
    await expect.poll(async () => (await s.report('n1'))?.serviceImports.flatMap((v) => v.unreachable), { timeout: 10_000, interval: 100 }).toEqual([s.pods.p4]);
    const annotationValues: string[] = [];
    const reportsOfN1: Array<Pick<ProbeReportSpec, 'heartbeatTime'> & { unreachable: string[] }> = [];
    const annotations = await watchEvents(s.kc, `/apis/multicluster.x-k8s.io/v1alpha1/namespaces/${s.namespace}/serviceimports`, (_phase, si: k8s.KubernetesObject) => {
      annotationValues.push(si.metadata?.annotations?.['kosmos.io/disconnected-address'] ?? '<none>');
    });
    const reports = await watchEvents(s.kc, '/apis/epsprobe.kosmos.io/v1alpha1/probereports', (_phase, report: { metadata: { name: string }; spec: ProbeReportSpec }) => {
      if (report.metadata.name === s.nodeNames.n1) {
        reportsOfN1.push({ heartbeatTime: report.spec.heartbeatTime, unreachable: report.spec.serviceImports.flatMap((v) => v.unreachable) });
      }
    });
    try {
      await s.agents.get('n1')!.stop();
      const restartedAt = new Date();
      s.startAgent('n1');
      await until('restarted agent ready', async () => {
        const response = await fetch(`http://${s.nodeAddresses.n1}:9464/readyz`).catch(() => undefined);
        return response?.status === 200;
      });
      // The restarted agent writes its report (a heartbeat every 2 s) and the watch sees it.
      await expect.poll(() => reportsOfN1.some((r) => new Date(r.heartbeatTime) > restartedAt), { timeout: 10_000, interval: 100 }).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Every report n1 wrote before, during and after its restart still lists p4; the annotation never moved.
      expect(reportsOfN1.map((r) => r.unreachable)).toEqual(reportsOfN1.map(() => [s.pods.p4]));
      expect(annotationValues.length).toBeGreaterThan(0); // the watch's first event: the ServiceImport as it is
      expect(annotationValues.filter((value) => value !== s.pods.p4)).toEqual([]);
      // The same watch sees the annotation move once p4 is back: it was live all along.
      await s.topology.restorePod('p4');
      await expect.poll(() => annotationValues.at(-1), { timeout: 20_000, interval: 100 }).toBe('');
      expect([...annotations.problems, ...reports.problems]).toEqual([]);
    } finally {
      annotations.stop();
      reports.stop();
    }
    await converged([]);
  });

  it('converges with a Kosmos-style re-sync racing the controller on the same slice, losing no endpoint', async () => {
    await s.topology.cutPod('p1');
    await converged([s.pods.p1!]);
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    // Kosmos rebuilds the slice from the control-plane copy with fresh metadata (our record is wiped)
    // and prunes by the annotation; a stale writer may even put the pruned endpoint back.
    for (let i = 0; i < 10; i++) {
      const current = await discovery.readNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE });
      const endpoints = i % 2 === 0 ? kosmosPrune(original.endpoints ?? [], new Set(((await s.disconnected()) ?? '').split(','))) : original.endpoints ?? [];
      const rebuilt: k8s.V1EndpointSlice = {
        ...original,
        metadata: { name: SLICE, namespace: s.namespace, labels: original.metadata!.labels, annotations: { 'kosmos.io/service-import': 'ture' }, resourceVersion: current.metadata!.resourceVersion },
        endpoints,
      };
      await discovery.replaceNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE, body: rebuilt }).catch((err: { code?: number }) => {
        if (err.code !== 409) throw err; // a conflict is what a racing writer sees; Kosmos retries
      });
    }
    await converged([s.pods.p1!]);
    await s.topology.restorePod('p1');
    await converged([]);
    expect((await s.slice()).endpoints).toEqual(original.endpoints);
  });

  it('a link flapping faster than the thresholds causes no annotation churn', async () => {
    const heartbeatsBefore = new Map<string, Date>();
    for (const host of HOSTS) heartbeatsBefore.set(host, new Date((await s.report(host))!.heartbeatTime));
    const missedBefore = await missedProbes();
    const changes: string[] = [];
    const annotations = await watchEvents(s.kc, `/apis/multicluster.x-k8s.io/v1alpha1/namespaces/${s.namespace}/serviceimports`, (phase, si: k8s.KubernetesObject) => {
      if (phase === 'MODIFIED') changes.push(si.metadata?.annotations?.['kosmos.io/disconnected-address'] ?? '');
    });
    try {
      // Down 400 ms in every 2 s: a probe caught in the gap times out (500 ms) and the next one, a
      // fast interval (200 ms) later, succeeds: two failures in a row never happen.
      const end = Date.now() + 12_000;
      while (Date.now() < end) {
        await s.topology.cutPod('p2');
        await new Promise((resolve) => setTimeout(resolve, 400));
        await s.topology.restorePod('p2');
        await new Promise((resolve) => setTimeout(resolve, 1600));
      }
      expect(changes.filter((value) => value !== '')).toEqual([]);
      expect(await s.disconnected()).toBe('');
      // "Nothing changed" means something only if the agents were alive and watching meanwhile: each
      // wrote heartbeats, is ready (its watches have news), has heard from the apiserver about the
      // reports within seconds, and the agents did catch p2 in its gaps.
      for (const host of HOSTS) {
        expect(new Date((await s.report(host))!.heartbeatTime).getTime()).toBeGreaterThan(heartbeatsBefore.get(host)!.getTime());
        expect((await fetch(`http://${s.nodeAddresses[host]}:9464/readyz`)).status).toBe(200);
        const age = /^eps_probe_informer_last_activity_age_seconds\{resource="probereports"\} (\S+)$/m.exec(await s.metrics(host));
        expect(Number(age?.[1])).toBeLessThan(5);
      }
      expect(await missedProbes()).toBeGreaterThan(missedBefore);
      // A real outage of p2 reaches the annotation through the same agents, controller and watch.
      await s.topology.cutPod('p2');
      await expect.poll(() => changes.at(-1), { timeout: 20_000, interval: 100 }).toBe(s.pods.p2);
      expect(annotations.problems).toEqual([]);
    } finally {
      await s.topology.restorePod('p2');
      annotations.stop();
    }
    await converged([]);
  });

  it('misses nothing changed while its watch was frozen and its resourceVersion compacted away', async () => {
    const agent = s.agents.get('n2')!;
    // Freeze the agent, change what it watches, restart the apiserver and compact etcd meanwhile:
    // the frozen watch's resourceVersion is gone when the agent resumes.
    process.kill(agent.child.pid!, 'SIGSTOP');
    try {
      const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
      const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
      const remaining = [s.pods.p1!, s.pods.p2!, s.pods.p3!];
      await custom.patchNamespacedCustomObject(
        { group: 'multicluster.x-k8s.io', version: 'v1alpha1', namespace: s.namespace, plural: 'serviceimports', name: 'web', body: { metadata: { annotations: { 'kosmos.io/address': remaining.join(',') } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      const slice = await s.slice();
      slice.endpoints = (slice.endpoints ?? []).filter((e) => !e.addresses.includes(s.pods.p4!));
      await discovery.replaceNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE, body: slice });
      await plane.kill('apiserver');
      await plane.compactEtcd();
      await plane.startApiserver();
    } finally {
      process.kill(agent.child.pid!, 'SIGCONT');
    }
    await expect.poll(async () => (await s.report('n2'))?.targetsProbed, { timeout: 30_000, interval: 200 }).toBe(3);
  });
});
