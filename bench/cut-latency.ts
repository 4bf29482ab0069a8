// End-to-end detection and recovery latency: real apiserver + etcd, 3 agents in "node" namespaces,
// the controller, 4 "pods". Each round cuts one pod's link and measures the time until the synced
// EndpointSlice no longer contains it (watched, not polled), then restores the link and measures
// the time until the endpoint is back. Also counts API writes per change from the watch streams.
// Usage: node --import tsx bench/cut-latency.ts [cuts=20]
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/controlplane.js';
import { createScenario, SLICE, fastProbeConfig } from '../test/harness/scenario.js';

const CUTS = Number(process.argv[2] ?? 20);
const CONFIG = fastProbeConfig(`heartbeatPeriod: 30s`);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const plane = await ControlPlane.start();
const s = await createScenario({ name: 'lat', subnet: '10.233.70.0/24', pods: 4, nodes: 3, config: CONFIG, controlPlane: plane.state });
try {
  const kc = plane.adminConfig();
  const watch = new k8s.Watch(kc);
  let sliceAddresses: string[] = [];
  const waiters = new Set<() => void>();
  const writes = { slices: 0, serviceImports: 0, reports: 0 };
  const onSlice = (phase: string, slice: k8s.V1EndpointSlice): void => {
    if (slice.metadata?.name !== SLICE) return;
    if (phase === 'MODIFIED') writes.slices++;
    sliceAddresses = (slice.endpoints ?? []).flatMap((e) => e.addresses);
    for (const wake of waiters) wake();
  };
  const requests = [
    await watch.watch(`/apis/discovery.k8s.io/v1/namespaces/${s.namespace}/endpointslices`, {}, onSlice, () => undefined),
    await watch.watch(`/apis/multicluster.x-k8s.io/v1alpha1/namespaces/${s.namespace}/serviceimports`, {}, (phase) => {
      if (phase === 'MODIFIED') writes.serviceImports++;
    }, () => undefined),
    await watch.watch('/apis/epsprobe.kosmos.io/v1alpha1/probereports', {}, (phase) => {
      if (phase === 'MODIFIED') writes.reports++;
    }, () => undefined),
  ];
  const until = (condition: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (condition()) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    });

  for (const host of ['n1', 'n2', 'n3']) s.startAgent(host);
  s.startController('c1');
  for (;;) {
    const reports = await Promise.all(['n1', 'n2', 'n3'].map((h) => s.report(h)));
    if (reports.every((r) => r?.targetsProbed === 4)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));

  const detect: number[] = [];
  const recover: number[] = [];
  const before = { ...writes };
  for (let i = 0; i < CUTS; i++) {
    const pod = `p${(i % 4) + 1}`;
    const address = s.pods[pod]!;
    // A random phase relative to the agents' probe timers.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
    let started = performance.now();
    await s.topology.cutPod(pod);
    await until(() => !sliceAddresses.includes(address));
    detect.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000));
    started = performance.now();
    await s.topology.restorePod(pod);
    await until(() => sliceAddresses.includes(address));
    recover.push(performance.now() - started);
    // Let every agent's view settle before the next cut.
    for (;;) {
      const reports = await Promise.all(['n1', 'n2', 'n3'].map((h) => s.report(h)));
      if (reports.every((r) => r?.unreachableCount === 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.stderr.write(`cut ${i + 1}/${CUTS}: pruned after ${detect.at(-1)!.toFixed(0)} ms, restored after ${recover.at(-1)!.toFixed(0)} ms\n`);
  }
  for (const request of requests) request.abort();
  const changes = CUTS * 2;
  const format = (values: number[]): string =>
    `p50 ${(percentile(values, 50) / 1000).toFixed(2)} s, p99 ${(percentile(values, 99) / 1000).toFixed(2)} s, max ${(Math.max(...values) / 1000).toFixed(2)} s`;
  console.log(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  console.log('config: interval 1 s, timeout 500 ms, failureThreshold 2, successThreshold 2, fastInterval 200 ms, quorum majority, 3 agents');
  console.log(`cuts: ${CUTS}`);
  console.log(`cut -> pruned slice:      ${format(detect)}`);
  console.log(`restore -> restored slice: ${format(recover)}`);
  console.log(
    `API writes per change: ${((writes.reports - before.reports) / changes).toFixed(2)} report updates, ` +
      `${((writes.serviceImports - before.serviceImports) / changes).toFixed(2)} ServiceImport patches, ` +
      `${((writes.slices - before.slices) / changes).toFixed(2)} EndpointSlice updates`,
  );
} finally {
  await s.destroy();
  await plane.stop();
}
