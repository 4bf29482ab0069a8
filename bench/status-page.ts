// The status page at scale: SERVICE_IMPORTS ServiceImports × ENDPOINTS endpoints (each with its synced
// slice) and NODES ProbeReports in a real apiserver, the controller running. No agents probe: the
// reports are written directly (every 100th ServiceImport has one address all nodes see down, every
// 50th one address a single node sees down), so the controller prunes and keeps as in a real cluster.
// Measures the latency of REQUESTS sequential requests of each kind (/status, later pages, filtered
// pages, /status/live, /status.json), the first (cold) request apart, and the controller's RSS before
// the first request and after the last.
// Usage: node --import tsx bench/status-page.ts [serviceImports=5000] [endpoints=20] [nodes=3] [requests=200]
import * as k8s from '@kubernetes/client-node';
import { ControlPlane, freePort } from '../test/harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../test/harness/fixtures.js';
import { createScenario } from '../test/harness/scenario.js';
import type { ProbeReportSpec, ReportedServiceImport } from '../src/contract/probe-report.js';
import { farmAddress, forEachLimited, machine, metricSum, sampleProcess, scrape, sleep } from './scale-support.js';

const SERVICE_IMPORTS = Number(process.argv[2] ?? 5000);
const ENDPOINTS = Number(process.argv[3] ?? 20);
const NODES = Number(process.argv[4] ?? 3);
const REQUESTS = Number(process.argv[5] ?? 200);
const CREATE_CONCURRENCY = 32;
// Reports are written once: they must stay live for the whole run; the controller then passes every 10 s.
const CONFIG = `controller:
  reportStaleAfter: 30m
heartbeatPeriod: 30m`;

const log = (message: string): void => void process.stderr.write(`[status-page] ${message}\n`);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const plane = await ControlPlane.start();
const s = await createScenario({ name: 'stat', subnet: '10.233.27.0/24', pods: 0, nodes: NODES, config: CONFIG, allowCidrs: ['10.234.0.0/15'], controlPlane: plane.state });
try {
  const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
  const names = Array.from({ length: SERVICE_IMPORTS }, (_, i) => `si-${String(i).padStart(5, '0')}`);
  const addressesOf = (i: number): string[] => Array.from({ length: ENDPOINTS }, (_, j) => farmAddress(i * ENDPOINTS + j));
  const createSeconds = await forEachLimited(names, CREATE_CONCURRENCY, async (name, i) => {
    const addresses = addressesOf(i);
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name, namespace: s.namespace, addresses }),
    });
    await discovery.createNamespacedEndpointSlice({ namespace: s.namespace, body: makeEndpointSlice({ name: `${name}-member1`, namespace: s.namespace, service: name, addresses }) });
  });
  log(`created ${SERVICE_IMPORTS} ServiceImports + slices in ${createSeconds.toFixed(1)} s`);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const controller = s.startController('c1', {}, port);
  let configVersion: string | undefined;
  while (!configVersion) {
    await sleep(500);
    const metrics = await scrape(`${base}/metrics`).catch(() => '');
    configVersion = /eps_probe_config_info\{version="([^"]+)"\} 1/.exec(metrics)?.[1];
  }
  // What the agents would report: all nodes see address 0 of every 100th ServiceImport down, the first node address 1 of every 50th.
  const hosts = Object.keys(s.nodeNames);
  const downForAll = names.flatMap((_, i) => (i % 100 === 0 ? [i] : []));
  const downForOne = names.flatMap((_, i) => (i % 50 === 25 ? [i] : []));
  for (const [n, host] of hosts.entries()) {
    const views: ReportedServiceImport[] = [
      ...downForAll.map((i) => ({ namespace: s.namespace, name: names[i]!, unreachable: [addressesOf(i)[0]!] })),
      ...(n === 0 ? downForOne.map((i) => ({ namespace: s.namespace, name: names[i]!, unreachable: [addressesOf(i)[1]!] })) : []),
    ].sort((a, b) => (a.name < b.name ? -1 : 1));
    const spec: ProbeReportSpec = {
      nodeName: s.nodeNames[host]!, agentVersion: 'bench', heartbeatTime: new Date().toISOString(), heartbeatPeriodSeconds: 1800, configVersion,
      probeReplicas: 0, targetsProbed: SERVICE_IMPORTS * ENDPOINTS, unreachableCount: views.length, suspect: false, serviceImports: views,
    };
    await custom.createClusterCustomObject({ group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports', body: { apiVersion: 'epsprobe.kosmos.io/v1alpha1', kind: 'ProbeReport', metadata: { name: spec.nodeName }, spec } });
  }
  // Settled: every decided address pruned (the controller's own gauge), two quiet passes after.
  for (;;) {
    const metrics = await scrape(`${base}/metrics`);
    if (metricSum(metrics, 'eps_probe_serviceimport_disconnected_addresses') === downForAll.length && metricSum(metrics, 'eps_probe_controller_writes_total', { resource: 'endpointslices' }) >= downForAll.length) break;
    await sleep(1000);
  }
  await sleep(25_000);
  const before = await sampleProcess(controller.child.pid!);
  log(`settled; controller RSS ${before.rssMb.toFixed(0)} MB (peak ${before.peakRssMb.toFixed(0)})`);

  const kinds: Array<{ name: string; path: (i: number) => string }> = [
    { name: '/status (first page, problems first)', path: () => '/status' },
    { name: '/status?page=N (any of the pages)', path: (i) => `/status?page=${1 + ((i * 37) % Math.ceil(SERVICE_IMPORTS / 20))}` },
    { name: '/status?address=… (filter scanning every address)', path: (i) => `/status?address=${farmAddress((i * 7919) % (SERVICE_IMPORTS * ENDPOINTS))}` },
    { name: '/status?namespace=…&problems=1', path: () => `/status?namespace=${s.namespace}&problems=1` },
    { name: '/status/live (what the page polls)', path: () => '/status/live' },
    { name: '/status.json', path: (i) => `/status.json?page=${1 + (i % 10)}` },
  ];
  const coldStarted = performance.now();
  const cold = await fetch(`${base}/status`).then((response) => response.text());
  const coldMs = performance.now() - coldStarted;
  const results: string[] = [];
  for (const kind of kinds) {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const started = performance.now();
      const response = await fetch(`${base}${kind.path(i)}`);
      const body = await response.text();
      times.push(performance.now() - started);
      if (response.status !== 200) throw new Error(`${kind.path(i)}: HTTP ${response.status}`);
      bytes = Math.max(bytes, body.length);
    }
    times.sort((a, b) => a - b);
    results.push(`  ${kind.name}: p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${REQUESTS} requests; largest body ${(bytes / 1024).toFixed(0)} KiB`);
    log(results.at(-1)!.trim());
  }
  const after = await sampleProcess(controller.child.pid!);
  const passes = metricSum(await scrape(`${base}/metrics`), 'eps_probe_controller_passes_total', { result: 'done' });

  console.log(`machine: ${machine()}`);
  console.log(`setup: ${SERVICE_IMPORTS} ServiceImports × ${ENDPOINTS} endpoints (${SERVICE_IMPORTS * ENDPOINTS} addresses) with their slices, ${NODES} ProbeReports (${downForAll.length} addresses down for all, pruned; ${downForOne.length} down for one node, kept by quorum), 1 controller (leader), page size 20`);
  console.log(`first request (builds the model): ${coldMs.toFixed(0)} ms, ${(cold.length / 1024).toFixed(0)} KiB`);
  for (const line of results) console.log(line);
  console.log(`controller RSS: ${before.rssMb.toFixed(0)} MB before the first request, ${after.rssMb.toFixed(0)} MB after the last (+${(after.rssMb - before.rssMb).toFixed(0)} MB); peak ${before.peakRssMb.toFixed(0)} → ${after.peakRssMb.toFixed(0)} MB; ${passes} reconcile passes by then`);
} finally {
  await s.destroy();
  await plane.stop();
}
