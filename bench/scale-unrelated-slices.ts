// Like kube-proxy, the agent watches every EndpointSlice of the cluster and picks out the synced MCS
// ones. This measures what the others cost it (and the controller, which does the same): a real
// apiserver, one ServiceImport over 4 "pods", one agent in a "node" namespace and the controller;
// then 50,000 unrelated EndpointSlices (5 endpoints each, plain Service style) are created, left
// idle, and churned at 50 updates/s. Per phase: CPU share and RSS of agent, controller, apiserver,
// the agent's informer cache size, its report writes and its probe lateness.
// Usage: node --import tsx bench/scale-unrelated-slices.ts [slices=50000] [updatesPerSecond=50] [phaseSeconds=60]
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { ControlPlane, freePort } from '../test/harness/controlplane.js';
import { makeEndpointSlice } from '../test/harness/fixtures.js';
import { createScenario } from '../test/harness/scenario.js';
import { describeWindow, forEachLimited, machine, metricSum, sampleAll, scrape, sleep, type ProcessSample } from './scale-support.js';

const SLICES = Number(process.argv[2] ?? 50_000);
const UPDATES_PER_SECOND = Number(process.argv[3] ?? 50);
const PHASE_SECONDS = Number(process.argv[4] ?? 60);
/** Unrelated slices go into this many namespaces, as Services of many teams would. */
const NAMESPACES = 50;
const CREATE_CONCURRENCY = 48;
const CONFIG = `probe:
  mode: tcp
  interval: 2s
heartbeatPeriod: 30s`;

const log = (message: string): void => void process.stderr.write(`[unrelated] ${message}\n`);
/** Addresses of unrelated pods: never probed (not synced slices, and outside allowCidrs anyway). */
const podAddress = (n: number): string => `10.244.${(n >> 8) & 0xff}.${n & 0xff}`;

const plane = await ControlPlane.start();
const s = await createScenario({ name: 'unrel', subnet: '10.233.81.0/24', pods: 4, nodes: 1, config: CONFIG, controlPlane: plane.state });
try {
  const core = s.kc.makeApiClient(k8s.CoreV1Api);
  const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
  const controllerPort = await freePort();
  const controller = s.startController('c1', {}, controllerPort);
  const agent = s.startAgent('n1');
  const pids = { agent: agent.child.pid!, controller: controller.child.pid!, apiserver: plane.state.pids.apiserver!, etcd: plane.state.pids.etcd! };
  while (!(await s.report('n1'))) await sleep(500);
  await sleep(10_000);

  const rows: string[] = [];
  /** Runs one phase (`during` runs while it is measured) and records agent/controller figures. */
  const phase = async (name: string, during: () => Promise<unknown> = () => sleep(PHASE_SECONDS * 1000)): Promise<void> => {
    const agentBefore = await s.metrics('n1');
    const before: Record<string, ProcessSample> = await sampleAll(pids);
    const started = performance.now();
    await during();
    const seconds = (performance.now() - started) / 1000;
    const after = await sampleAll(pids);
    const agentAfter = await s.metrics('n1');
    const delta = (metric: string, labels: Record<string, string> = {}): number => metricSum(agentAfter, metric, labels) - metricSum(agentBefore, metric, labels);
    const lateness = delta('eps_probe_probe_lateness_seconds_sum') / Math.max(1, delta('eps_probe_probe_lateness_seconds_count'));
    const controllerText = await scrape(`http://127.0.0.1:${controllerPort}/metrics`);
    rows.push(`${name} (${seconds.toFixed(0)} s): ${describeWindow(before, after, seconds)}; ` +
      `agent cache ${metricSum(agentAfter, 'eps_probe_informer_objects', { resource: 'endpointslices' })} slices, ` +
      `report writes ${delta('eps_probe_report_writes_total')} (change ${delta('eps_probe_report_writes_total', { reason: 'change' })}), ` +
      `mean probe lateness ${(lateness * 1000).toFixed(0)} ms, agent re-lists ${delta('eps_probe_informer_lists_total')}, ` +
      `controller writes so far ${metricSum(controllerText, 'eps_probe_controller_writes_total')}, ` +
      `controller pass mean ${((metricSum(controllerText, 'eps_probe_controller_pass_duration_seconds_sum') / Math.max(1, metricSum(controllerText, 'eps_probe_controller_pass_duration_seconds_count'))) * 1000).toFixed(0)} ms (cumulative)`);
    log(rows.at(-1)!);
  };

  await phase('idle, MCS slices only');

  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `${s.namespace}-svc${i}`);
  for (const name of namespaces) await core.createNamespace({ body: { metadata: { name } } });
  const slices = Array.from({ length: SLICES }, (_, i) => ({ namespace: namespaces[i % NAMESPACES]!, name: `svc-${i}-abcde`, service: `svc-${i}` }));
  let createSeconds = 0;
  await phase(`creating ${SLICES} unrelated slices`, async () => {
    createSeconds = await forEachLimited(slices, CREATE_CONCURRENCY, ({ namespace, name, service }, i) =>
      discovery.createNamespacedEndpointSlice({
        namespace,
        body: makeEndpointSlice({ name, namespace, service, style: 'plain', addresses: Array.from({ length: 5 }, (_, j) => podAddress(i * 5 + j)) }),
      }));
  });
  await sleep(10_000);
  await phase(`idle with ${SLICES} unrelated slices`);

  // Churn: a merge patch of one random slice's endpoints every 1/rate s, as rolling updates would.
  let updates = 0;
  let failed = 0;
  await phase(`churn ${UPDATES_PER_SECOND} updates/s`, async () => {
    const limit = pLimit(32);
    const pending: Array<Promise<unknown>> = [];
    const started = performance.now();
    for (let n = 0; performance.now() - started < PHASE_SECONDS * 1000; n++) {
      const { namespace, name } = slices[Math.floor(Math.random() * slices.length)]!;
      const body = { endpoints: [{ addresses: [podAddress(SLICES * 5 + n)], conditions: { ready: true } }] };
      pending.push(limit(() => discovery.patchNamespacedEndpointSlice({ namespace, name, body }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
        .then(() => updates++, () => failed++)));
      await sleep(Math.max(0, started + ((n + 1) * 1000) / UPDATES_PER_SECOND - performance.now()));
    }
    await Promise.all(pending);
  });
  await sleep(10_000);
  await phase('idle after churn');

  console.log(`machine: ${machine()}`);
  console.log(`setup: 1 ServiceImport over 4 pods, 1 agent (interval 2 s), 1 controller; ${SLICES} unrelated EndpointSlices × 5 endpoints in ${NAMESPACES} namespaces, ` +
    `created in ${createSeconds.toFixed(0)} s (concurrency ${CREATE_CONCURRENCY}); churn ${updates} updates done (${failed} failed) at a target of ${UPDATES_PER_SECOND}/s`);
  for (const row of rows) console.log(row);
  const report = await s.report('n1');
  console.log(`agent report at the end: targets ${report?.targetsProbed}, unreachable ${report?.unreachableCount}, suspect ${report?.suspect}`);
} finally {
  await s.destroy();
  await plane.stop();
}
