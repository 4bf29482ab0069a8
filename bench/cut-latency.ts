// End-to-end detection and recovery latency: real apiserver + etcd, 3 agents in "node" namespaces,
// the controller, 4 "pods". Each round cuts one pod's link and measures the time until the synced
// EndpointSlice no longer contains it (watched, not polled), then restores the link and measures
// the time until the endpoint is back. Also counts API writes per change from the watch streams.
// Each change is split at the deciding agent's verdict, from the agents' "target reachability changed"
// log lines (their time is when that probe result was recorded): the quorum needs 2 of the 3 agents,
// so a cut is decided by the second agent to log unreachable; a restore, with u agents holding the
// address unreachable, by the (u − 1)-th to log reachable. Probe physics: cut (or restore) → that
// verdict; pipeline: verdict → its ProbeReport write seen on a watch → ServiceImport annotation seen
// → the slice seen without (or with) the address. Percentiles need ≥ 100 changes; with fewer the
// summary gives the median and "max of N".
// Usage: node --import tsx bench/cut-latency.ts [cuts=100]
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/controlplane.js';
import { createScenario, SLICE, fastProbeConfig } from '../test/harness/scenario.js';

const CUTS = Number(process.argv[2] ?? 100);
const HOSTS = ['n1', 'n2', 'n3'];
/** Agents whose verdicts make the controller's quorum (majority of 3). */
const QUORUM = 2;
const CONFIG = fastProbeConfig(`heartbeatPeriod: 30s`);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** p50 and p99 from ≥ 100 samples; below that a p99 would only be the maximum, so it says so. */
function summary(values: number[]): string {
  const ms = (v: number): string => `${v.toFixed(0)} ms`;
  const tail = values.length >= 100 ? `p99 ${ms(percentile(values, 99))}, max ${ms(Math.max(...values))}` : `max of ${values.length} ${ms(Math.max(...values))}`;
  return `p50 ${ms(percentile(values, 50))}, ${tail}`;
}

/** One change (cut or restore), every time in Date.now() milliseconds. */
interface ChangeTimes {
  start: number;
  /** The deciding agent's verdict (its log line). */
  verdict: number;
  /** Its ProbeReport update, as seen on the watch. */
  report: number;
  /** The ServiceImport's annotation update, as seen on the watch. */
  serviceImport: number;
  slice: number;
}

const plane = await ControlPlane.start();
const s = await createScenario({ name: 'lat', subnet: '10.233.70.0/24', pods: 4, nodes: 3, config: CONFIG, controlPlane: plane.state });
try {
  const kc = plane.adminConfig();
  const watch = new k8s.Watch(kc);
  let sliceAddresses: string[] = [];
  const waiters = new Set<() => void>();
  const writes = { slices: 0, serviceImports: 0, reports: 0 };
  /** Arrival times of watch events: ServiceImport updates, and ProbeReport updates by report name. */
  const serviceImportSeen: number[] = [];
  const reportSeen = new Map<string, number[]>();
  const onSlice = (phase: string, slice: k8s.V1EndpointSlice): void => {
    if (slice.metadata?.name !== SLICE) return;
    if (phase === 'MODIFIED') writes.slices++;
    sliceAddresses = (slice.endpoints ?? []).flatMap((e) => e.addresses);
    for (const wake of waiters) wake();
  };
  const requests = [
    await watch.watch(`/apis/discovery.k8s.io/v1/namespaces/${s.namespace}/endpointslices`, {}, onSlice, () => undefined),
    await watch.watch(`/apis/multicluster.x-k8s.io/v1alpha1/namespaces/${s.namespace}/serviceimports`, {}, (phase) => {
      if (phase !== 'MODIFIED') return;
      writes.serviceImports++;
      serviceImportSeen.push(Date.now());
    }, () => undefined),
    await watch.watch('/apis/epsprobe.kosmos.io/v1alpha1/probereports', {}, (phase, report: k8s.KubernetesObject) => {
      if (phase !== 'MODIFIED') return;
      writes.reports++;
      const name = report.metadata?.name ?? '';
      reportSeen.set(name, [...(reportSeen.get(name) ?? []), Date.now()]);
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

  const detect: ChangeTimes[] = [];
  const recover: ChangeTimes[] = [];
  const before = { ...writes };
  const firstAfter = (times: readonly number[], after: number): number => times.find((t) => t >= after) ?? NaN;
  /** When each agent logged `current` for `address` at or after `since` (Infinity: not logged), earliest first. */
  const verdicts = (address: string, current: 'reachable' | 'unreachable', since: number): Array<{ host: string; time: number }> =>
    HOSTS.map((host) => {
      // Log times are ISO strings with milliseconds.
      const time = s.agents
        .get(host)!
        .logs.filter((l) => l.msg === 'target reachability changed' && l.address === address && l.current === current)
        .map((l) => Date.parse(l.time as string))
        .find((t) => t >= since);
      return { host, time: time ?? Infinity };
    }).sort((x, y) => x.time - y.time);
  /** The agent whose verdict of `current` (at or after `since`) was the `rank`-th (1-based), if logged. */
  const decidingAgent = (address: string, current: 'reachable' | 'unreachable', since: number, rank: number): { host: string; time: number } | undefined => {
    const verdict = verdicts(address, current, since)[rank - 1];
    return verdict && Number.isFinite(verdict.time) ? verdict : undefined;
  };
  /** Times of one change, once the slice shows it: the deciding agent verdict (log), then the first writes after it. */
  const changeTimes = (start: number, slice: number, deciding: { host: string; time: number } | undefined): ChangeTimes => ({
    start,
    verdict: deciding?.time ?? NaN,
    report: deciding ? firstAfter(reportSeen.get(s.nodeNames[deciding.host]!) ?? [], deciding.time) : NaN,
    serviceImport: deciding ? firstAfter(serviceImportSeen, deciding.time) : NaN,
    slice,
  });
  for (let i = 0; i < CUTS; i++) {
    const pod = `p${(i % 4) + 1}`;
    const address = s.pods[pod]!;
    // A random phase relative to the agents' probe timers.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
    const cutAt = Date.now();
    await s.topology.cutPod(pod);
    await until(() => !sliceAddresses.includes(address));
    detect.push(changeTimes(cutAt, Date.now(), decidingAgent(address, 'unreachable', cutAt, QUORUM)));
    await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000));
    const restoreAt = Date.now();
    await s.topology.restorePod(pod);
    await until(() => sliceAddresses.includes(address));
    // With u agents holding the address unreachable, the (u − quorum + 1)-th reachable verdict leaves fewer than a quorum.
    const unreachableAgents = verdicts(address, 'unreachable', cutAt).filter((v) => v.time < restoreAt).length;
    recover.push(changeTimes(restoreAt, Date.now(), decidingAgent(address, 'reachable', restoreAt, unreachableAgents - QUORUM + 1)));
    // Let every agent's view settle before the next cut.
    for (;;) {
      const reports = await Promise.all(HOSTS.map((h) => s.report(h)));
      if (reports.every((r) => r?.unreachableCount === 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const line = (t: ChangeTimes): string => `${t.slice - t.start} ms (probe ${t.verdict - t.start} + pipeline ${t.slice - t.verdict})`;
    process.stderr.write(`cut ${i + 1}/${CUTS}: pruned after ${line(detect.at(-1)!)}, restored after ${line(recover.at(-1)!)}\n`);
  }
  for (const request of requests) request.abort();
  const changes = CUTS * 2;
  const parts = (label: string, times: ChangeTimes[]): void => {
    // A change whose deciding verdict or write was not found (NaN) is left out of that part, and counted.
    const part = (from: keyof ChangeTimes, to: keyof ChangeTimes): number[] => times.map((t) => t[to] - t[from]).filter((v) => Number.isFinite(v));
    const unmatched = times.filter((t) => !Number.isFinite(t.verdict) || !Number.isFinite(t.report) || !Number.isFinite(t.serviceImport)).length;
    console.log(`${label}${unmatched ? ` (${unmatched} of ${times.length} without a deciding verdict or write found: left out of the split)` : ''}`);
    console.log(`  total (start -> slice):                 ${summary(part('start', 'slice'))}`);
    console.log(`  probe physics (start -> verdict):      ${summary(part('start', 'verdict'))}`);
    console.log(`  pipeline (verdict -> slice):           ${summary(part('verdict', 'slice'))}`);
    console.log(`    verdict -> ProbeReport seen:         ${summary(part('verdict', 'report'))}`);
    console.log(`    ProbeReport -> ServiceImport seen:   ${summary(part('report', 'serviceImport'))}`);
    console.log(`    ServiceImport -> slice seen:         ${summary(part('serviceImport', 'slice'))}`);
  };
  console.log(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('config: interval 1 s, timeout 500 ms, failureThreshold 2, successThreshold 2, fastInterval 200 ms, quorum majority, 3 agents');
  console.log(`cuts: ${CUTS} (the deciding verdict is the ${QUORUM}nd agent's)`);
  parts('cut -> pruned slice', detect);
  parts('restore -> restored slice', recover);
  console.log(
    `API writes per change: ${((writes.reports - before.reports) / changes).toFixed(2)} report updates, ` +
      `${((writes.serviceImports - before.serviceImports) / changes).toFixed(2)} ServiceImport patches, ` +
      `${((writes.slices - before.slices) / changes).toFixed(2)} EndpointSlice updates`,
  );
} finally {
  await s.destroy();
  await plane.stop();
}
