// Controller load at 1,000 nodes: kwok (sigs.k8s.io/kwok v0.8.0, built apart: see
// docs/benchmarks.md) keeps 1,000 fake Nodes Ready against the real local apiserver, and this process
// plays their 1,000 agents: it creates one ProbeReport per node and rewrites each once per heartbeat
// period at a spread phase (what idle agents do), while the controller runs over 1,000 ServiceImports
// × 20 endpoints. Measures the controller's passes, writes, CPU and RSS, and the apiserver's cost.
// Usage: node --import tsx bench/kwok-reports.ts KWOK_BINARY [nodes=1000] [minutes=3]
import { execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane, freePort } from '../test/harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../test/harness/fixtures.js';
import { createScenario } from '../test/harness/scenario.js';
import { configVersion, parseConfig } from '../src/config/config.js';
import { membersDigest, targetSetDigest } from '../src/report/coverage.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_PLURAL, REPORT_VERSION, type ProbeReport } from '../src/contract/probe-report.js';
import { describeWindow, farmAddress, forEachLimited, machine, metricSum, sampleAll, scrape, sleep } from './scale-support.js';

const KWOK = process.argv[2];
if (!KWOK) throw new TypeError('usage: kwok-reports.ts KWOK_BINARY [nodes] [minutes]');
const NODES = Number(process.argv[3] ?? 1000);
const MINUTES = Number(process.argv[4] ?? 3);
const SERVICE_IMPORTS = 1000;
const ENDPOINTS = 20;
const HEARTBEAT_S = 30;
const REPLICAS = 3;
const CONFIG = `probeReplicas: ${REPLICAS}
heartbeatPeriod: ${HEARTBEAT_S}s`;
const log = (message: string): void => void process.stderr.write(`[kwok] ${message}\n`);

const plane = await ControlPlane.start();
// No pods or nodes in the topology: the scenario gives the namespace, the ConfigMap and the controller.
const s = await createScenario({ name: 'kwok', subnet: '10.233.82.0/24', pods: 0, nodes: 0, config: CONFIG, controlPlane: plane.state });
let kwok: ReturnType<typeof spawn> | undefined;
try {
  // The Stages kwok needs (it exits with "no stages found" without them), from its own module source.
  const stages = path.join(execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim(), 'sigs.k8s.io/kwok@v0.8.0/kustomize/stage/node');
  const stageFile = path.join(plane.state.dir, 'kwok-stages.yaml');
  writeFileSync(stageFile, ['fast/node-initialize.yaml', 'heartbeat-with-lease/node-heartbeat-with-lease.yaml']
    .map((file) => readFileSync(path.join(stages, file), 'utf8')).join('\n---\n'));
  const kwokLog = openSync(path.join(plane.state.dir, 'kwok.log'), 'a');
  kwok = spawn(KWOK, [`--kubeconfig=${plane.kubeconfig}`, `--config=${stageFile}`, '--manage-all-nodes=true', '--node-lease-duration-seconds=40'], { stdio: ['ignore', kwokLog, kwokLog] });

  const core = s.kc.makeApiClient(k8s.CoreV1Api);
  const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
  const nodes = Array.from({ length: NODES }, (_, i) => `kwok-node-${String(i).padStart(4, '0')}`);
  const nodeSeconds = await forEachLimited(nodes, 32, (name) =>
    core.createNode({ body: { metadata: { name, labels: { type: 'kwok' } }, spec: { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] } } }));
  let ready = 0;
  const readyStarted = performance.now();
  while (ready < NODES && performance.now() - readyStarted < 300_000) {
    await sleep(2000);
    const list = await core.listNode();
    ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  }
  log(`${NODES} nodes created in ${nodeSeconds.toFixed(0)} s; ${ready} Ready after ${((performance.now() - readyStarted) / 1000).toFixed(0)} s`);

  const imports = Array.from({ length: SERVICE_IMPORTS }, (_, i) => `si-${i}`);
  await forEachLimited(imports, 32, async (name, i) => {
    const addresses = Array.from({ length: ENDPOINTS }, (_, j) => farmAddress(i * ENDPOINTS + j));
    await custom.createNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports', body: makeServiceImport({ name, namespace: s.namespace, addresses }) });
    await discovery.createNamespacedEndpointSlice({ namespace: s.namespace, body: makeEndpointSlice({ name: `${name}-member1`, namespace: s.namespace, service: name, addresses }) });
  });
  // What an idle agent publishes: its share of the targets, nothing unreachable, the version of the
  // configuration in force and the scope of its votes (the controller counts only reports made under
  // its own configuration, membership and target set).
  const { data } = await core.readNamespacedConfigMap({ name: 'eps-probe-plugin', namespace: s.configNamespace });
  const version = configVersion(parseConfig(data!['config.yaml']!));
  const targetDigest = targetSetDigest(imports.flatMap((_, i) => Array.from({ length: ENDPOINTS }, (_, j) => farmAddress(i * ENDPOINTS + j))));
  const share = Math.round((SERVICE_IMPORTS * ENDPOINTS * REPLICAS) / NODES);
  const spec = (nodeName: string): ProbeReport['spec'] => ({
    nodeName, agentVersion: 'bench', heartbeatTime: new Date().toISOString(), heartbeatPeriodSeconds: HEARTBEAT_S, configVersion: version,
    probeReplicas: REPLICAS, membersDigest: membersDigest(nodes), targetSetDigest: targetDigest, targetsProbed: share, targetsJudged: share,
    unreachableCount: 0, suspect: false, serviceImports: [],
  });
  await forEachLimited(nodes, 32, (name) => custom.createClusterCustomObject({
    group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL,
    body: { apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, metadata: { name }, spec: spec(name) } satisfies ProbeReport,
  }));

  // Heartbeats: every report rewritten once per period, spread evenly (NODES / HEARTBEAT_S per second).
  let heartbeats = 0;
  let failures = 0;
  let next = 0;
  const heartbeat = setInterval(() => {
    const name = nodes[next++ % NODES]!;
    custom.patchClusterCustomObject(
      { group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, name, body: { spec: { heartbeatTime: new Date().toISOString() } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    ).then(() => heartbeats++, () => failures++);
  }, (HEARTBEAT_S * 1000) / NODES);

  const controllerPort = await freePort();
  const controller = s.startController('c1', {}, controllerPort);
  const pids = { controller: controller.child.pid!, apiserver: plane.state.pids.apiserver!, etcd: plane.state.pids.etcd!, kwok: kwok.pid! };
  const metrics = (): Promise<string> => scrape(`http://127.0.0.1:${controllerPort}/metrics`);
  // Until the controller has synced and passed at least once, then one minute to settle.
  for (;;) {
    const text = await metrics().catch(() => '');
    if (metricSum(text, 'eps_probe_controller_passes_total', { result: 'done' }) > 0) break;
    await sleep(1000);
  }
  await sleep(60_000);
  const metricsBefore = await metrics();
  const before = await sampleAll(pids);
  const heartbeatsBefore = heartbeats;
  const started = performance.now();
  await sleep(MINUTES * 60_000);
  const seconds = (performance.now() - started) / 1000;
  const after = await sampleAll(pids);
  const metricsAfter = await metrics();
  clearInterval(heartbeat);
  const delta = (name: string, labels: Record<string, string> = {}): number => metricSum(metricsAfter, name, labels) - metricSum(metricsBefore, name, labels);
  const passes = delta('eps_probe_controller_pass_duration_seconds_count');

  console.log(`machine: ${machine()}`);
  console.log(`setup: ${NODES} kwok Nodes (${ready} Ready), ${NODES} ProbeReports (probeReplicas ${REPLICAS}, heartbeat ${HEARTBEAT_S} s, written by the bench), ` +
    `${SERVICE_IMPORTS} ServiceImports × ${ENDPOINTS} endpoints, 1 controller`);
  console.log(`window ${(seconds / 60).toFixed(1)} min: ${((heartbeats - heartbeatsBefore) / seconds).toFixed(1)} report heartbeats/s (${failures} failed in all)`);
  console.log(`controller: ${passes} passes (${delta('eps_probe_controller_passes_total', { result: 'done' })} done, ${delta('eps_probe_controller_passes_total', { result: 'skipped' })} skipped: not leader), mean ${((delta('eps_probe_controller_pass_duration_seconds_sum') / Math.max(1, passes)) * 1000).toFixed(0)} ms; ` +
    `writes ${delta('eps_probe_controller_writes_total')}; reports ${['live', 'suspect', 'stale', 'other-config'].map((state) => `${state} ${metricSum(metricsAfter, 'eps_probe_controller_reports', { state })}`).join(', ')}`);
  console.log(`processes: ${describeWindow(before, after, seconds)}`);
} finally {
  kwok?.kill('SIGKILL');
  await s.destroy();
  await plane.stop();
}
