// Many ServiceImports in a real apiserver: 5,000 ServiceImports × 20 endpoints (100k endpoints on
// distinct addresses of a farm namespace that answers for a whole /15 with TCP RSTs, see
// scale-support.ts), probed by AGENTS agents (default 3) in "node" namespaces with probeReplicas 0,
// and the controller. Measures the time from agent start to the first report and to a full round,
// then over a steady window the API writes (metrics of agents and controller, and watches), probe
// throughput and CPU/RSS of every process.
// With AS_DEPLOYED=1 each agent and the controller run as deploy/eps-probe-plugin.yaml runs them: in
// their own memory cgroup of the manifest's `limits.memory`, with the node flags of its `command`
// (AGENT_MEMORY_LIMIT_MIB / CONTROLLER_MEMORY_LIMIT_MIB override the limits). TCP_THREADS sets the
// agents' probe.tcpThreads (default 0), TCP_PROBE their probe.tcpProbe (default connect).
// Usage: [AS_DEPLOYED=1] [AGENTS=3] [TCP_THREADS=0] [TCP_PROBE=connect|half-open] node --import tsx bench/scale-mcs.ts [serviceImports=5000] [endpoints=20] [steadyMinutes=3]
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane, freePort } from '../test/harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../test/harness/fixtures.js';
import { CLI } from '../test/harness/processes.js';
import { createScenario } from '../test/harness/scenario.js';
import {
  FARM_ADDRESSES,
  FARM_CIDR,
  addFarm,
  describeWindow,
  farmAddress,
  forEachLimited,
  machine,
  manifestContainer,
  memoryCgroup,
  metricSum,
  sampleAll,
  keepWatching,
  scrape,
  sleep,
} from './scale-support.js';

const SERVICE_IMPORTS = Number(process.argv[2] ?? 5000);
const ENDPOINTS = Number(process.argv[3] ?? 20);
const STEADY_MINUTES = Number(process.argv[4] ?? 3);
const AGENTS = Number(process.env.AGENTS ?? 3);
const TCP_THREADS = Number(process.env.TCP_THREADS ?? 0);
const TCP_PROBE = process.env.TCP_PROBE ?? 'connect';
const INTERVAL_S = 10;
const ENDPOINT_COUNT = SERVICE_IMPORTS * ENDPOINTS;
// Beyond the farm's 131,070 addresses, endpoints of different ServiceImports share addresses, and
// every agent probes each address once.
const TARGETS = Math.min(ENDPOINT_COUNT, FARM_ADDRESSES);
/** Creations in flight: enough to keep the apiserver busy without a flood of 429s. */
const CREATE_CONCURRENCY = 32;
const FIRST_REPORT_TIMEOUT_MS = 10 * 60_000;
const CONFIG = `probe:
  mode: tcp
  interval: ${INTERVAL_S}s
  timeout: 1s
  fastInterval: 200ms
  failureThreshold: 3
  successThreshold: 2
  concurrency: 2048
  tcpThreads: ${TCP_THREADS}
  tcpProbe: ${TCP_PROBE}
  halfOpenUnavailable: fail
probeReplicas: 0
heartbeatPeriod: 30s`;

const log = (message: string): void => void process.stderr.write(`[scale-mcs] ${message}\n`);

const AS_DEPLOYED = process.env.AS_DEPLOYED === '1';
/** Per role: node flags and memory limit when AS_DEPLOYED. */
const deployed = Object.fromEntries(
  (['agent', 'controller'] as const).map((role) => {
    const manifest = manifestContainer(role);
    const override = process.env[`${role.toUpperCase()}_MEMORY_LIMIT_MIB`];
    return [role, { ...manifest, memoryLimitMiB: override ? Number(override) : manifest.memoryLimitMiB }];
  }),
) as Record<'agent' | 'controller', { nodeFlags: string[]; memoryLimitMiB: number }>;

const plane = await ControlPlane.start();
/** Memory cgroups by process name (`agent-n1`, `controller`), when AS_DEPLOYED. */
const cgroups = new Map<string, ReturnType<typeof memoryCgroup>>();
const s = await createScenario({
  name: 'scale', subnet: '10.233.80.0/24', pods: 0, nodes: AGENTS, config: CONFIG, allowCidrs: [FARM_CIDR], controlPlane: plane.state,
  command: AS_DEPLOYED
    ? (role, name) => {
        const cgroup = memoryCgroup(`eps-${role}-${name}`, deployed[role].memoryLimitMiB);
        cgroups.set(role === 'agent' ? `agent-${name}` : 'controller', cgroup);
        return cgroup.command(process.execPath, ...deployed[role].nodeFlags);
      }
    : undefined,
});
const hosts = Object.keys(s.nodeNames);
let farm: { remove(): void } | undefined;
const watches: Array<{ abort(): void }> = [];
try {
  // Topology names every host's namespace eps-<topology>-<host>.
  farm = await addFarm(s.topology, hosts.map((host) => `eps-scale-${host}`));
  // One probe through the CLI before anything else: the farm must answer (refused = reachable).
  log(execFileSync('ip', ['netns', 'exec', `eps-scale-${hosts[0]}`, process.execPath, CLI, 'probe', '--tcp', '--timeout', '500', `${farmAddress(TARGETS - 1)}:80`], { encoding: 'utf8' }).trim());

  const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
  const names = Array.from({ length: SERVICE_IMPORTS }, (_, i) => `si-${String(i).padStart(5, '0')}`);
  const addressesOf = (i: number): string[] => Array.from({ length: ENDPOINTS }, (_, j) => farmAddress((i * ENDPOINTS + j) % FARM_ADDRESSES));
  const createSeconds = await forEachLimited(names, CREATE_CONCURRENCY, async (name, i) => {
    const addresses = addressesOf(i);
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name, namespace: s.namespace, addresses }),
    });
    await discovery.createNamespacedEndpointSlice({
      namespace: s.namespace, body: makeEndpointSlice({ name: `${name}-member1`, namespace: s.namespace, service: name, addresses }),
    });
  });
  log(`created ${SERVICE_IMPORTS} ServiceImports + slices in ${createSeconds.toFixed(1)} s`);

  // Watches from "now" count every write the processes cause. A list's resourceVersion is etcd's
  // revision, so one list gives the starting point of every watch.
  const { metadata: { resourceVersion: rv } } = (await custom.listClusterCustomObject({
    group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports', limit: 1,
  })) as { metadata: { resourceVersion: string } };
  const seen = { reports: 0, serviceImports: 0, slices: 0, events: 0 };
  const firstReportAt = new Map<string, number>();
  const count = (kind: keyof typeof seen) => (phase: string): void => {
    if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') seen[kind]++;
  };
  watches.push(
    keepWatching(s.kc, '/apis/epsprobe.kosmos.io/v1alpha1/probereports', rv, (phase, report) => {
      count('reports')(phase);
      const node = report.metadata?.name;
      if (phase === 'ADDED' && node && !firstReportAt.has(node)) firstReportAt.set(node, performance.now());
    }),
    keepWatching(s.kc, `/apis/${MCS_GROUP}/${MCS_VERSION}/namespaces/${s.namespace}/serviceimports`, rv, count('serviceImports')),
    keepWatching(s.kc, `/apis/discovery.k8s.io/v1/namespaces/${s.namespace}/endpointslices`, rv, count('slices')),
    keepWatching(s.kc, '/api/v1/events', rv, count('events')),
  );

  const controllerPort = await freePort();
  const controller = s.startController('c1', {}, controllerPort);
  cgroups.get('controller')?.adopt(controller.child.pid!);
  const controllerMetrics = (): Promise<string> => scrape(`http://127.0.0.1:${controllerPort}/metrics`);
  const started = performance.now();
  for (const host of hosts) {
    const agent = s.startAgent(host);
    // Created by agentCommand during startAgent; the agent waits until it is in.
    cgroups.get(`agent-${host}`)?.adopt(agent.child.pid!);
  }
  const pids: Record<string, number> = {
    ...Object.fromEntries(hosts.map((host) => [`agent-${host}`, s.agents.get(host)!.child.pid!])),
    controller: controller.child.pid!,
    apiserver: plane.state.pids.apiserver!,
    etcd: plane.state.pids.etcd!,
  };
  const startSample = await sampleAll(pids);
  const elapsed = (at: number): string => `${((at - started) / 1000).toFixed(1)} s`;

  // Until every agent has reported: per agent, when probes_total first reached the target count
  // (every target probed about once: a full round), and how its first round ended (logs).
  const fullRoundAt = new Map<string, number>();
  while (firstReportAt.size < AGENTS || fullRoundAt.size < AGENTS) {
    if (performance.now() - started > FIRST_REPORT_TIMEOUT_MS) {
      log(`gave up waiting after ${FIRST_REPORT_TIMEOUT_MS / 60_000} min: reports ${firstReportAt.size}/${AGENTS}, full rounds ${fullRoundAt.size}/${AGENTS}`);
      break;
    }
    for (const host of hosts) {
      const agent = s.agents.get(host)!;
      if (agent.child.exitCode !== null || agent.child.signalCode !== null) throw new Error(`agent ${host} exited (${agent.child.exitCode ?? agent.child.signalCode})`);
      if (fullRoundAt.has(host)) continue;
      const probes = await s.metrics(host).then((text) => metricSum(text, 'eps_probe_probes_total')).catch(() => 0);
      if (probes >= TARGETS) fullRoundAt.set(host, performance.now());
    }
    await sleep(1000);
  }
  const firstRound = hosts.map((host) => {
    const logs = s.agents.get(host)!.logs;
    const incomplete = logs.find((l) => l.msg === 'first probe round incomplete at its deadline');
    const report = firstReportAt.get(s.nodeNames[host]!);
    return `${host}: first report ${report ? elapsed(report) : 'none'}, probes ≥ targets after ${fullRoundAt.has(host) ? elapsed(fullRoundAt.get(host)!) : 'never'}` +
      (incomplete ? `, first round hit its deadline with ${String(incomplete.pending)} targets unknown` : ', first round complete before its deadline');
  });
  const startupSample = await sampleAll(pids);
  const startupSeconds = (performance.now() - started) / 1000;

  // Settle one heartbeat period, then the steady window.
  await sleep(30_000);
  const metricsBefore = { agents: await Promise.all(hosts.map((h) => s.metrics(h))), controller: await controllerMetrics() };
  const seenBefore = { ...seen };
  const before = await sampleAll(pids);
  const windowStarted = performance.now();
  for (let minute = 1; minute <= STEADY_MINUTES; minute++) {
    await sleep(60_000);
    log(`steady minute ${minute}/${STEADY_MINUTES}: ${describeWindow(before, await sampleAll(pids), (performance.now() - windowStarted) / 1000)}`);
  }
  const windowSeconds = (performance.now() - windowStarted) / 1000;
  const after = await sampleAll(pids);
  const metricsAfter = { agents: await Promise.all(hosts.map((h) => s.metrics(h))), controller: await controllerMetrics() };
  const perMinute = (delta: number): string => (delta / (windowSeconds / 60)).toFixed(1);
  const agentDelta = (name: string, labels: Record<string, string> = {}): number =>
    hosts.reduce((sum, _, i) => sum + metricSum(metricsAfter.agents[i]!, name, labels) - metricSum(metricsBefore.agents[i]!, name, labels), 0);
  const controllerDelta = (name: string, labels: Record<string, string> = {}): number =>
    metricSum(metricsAfter.controller, name, labels) - metricSum(metricsBefore.controller, name, labels);
  const probes = agentDelta('eps_probe_probes_total');
  const lateness = agentDelta('eps_probe_probe_lateness_seconds_sum') / Math.max(1, agentDelta('eps_probe_probe_lateness_seconds_count'));
  const passes = controllerDelta('eps_probe_controller_pass_duration_seconds_count');
  const passMean = controllerDelta('eps_probe_controller_pass_duration_seconds_sum') / Math.max(1, passes);
  const reports = await Promise.all(hosts.map((h) => s.report(h)));

  console.log(`machine: ${machine()}`);
  console.log(`setup: ${SERVICE_IMPORTS} ServiceImports × ${ENDPOINTS} endpoints = ${ENDPOINT_COUNT} endpoints on ${TARGETS} distinct addresses = targets per agent (farm, TCP RST), ${AGENTS} agents, 1 controller, probeReplicas 0, interval ${INTERVAL_S} s, timeout 1 s, concurrency 2048, tcpThreads ${TCP_THREADS}, tcpProbe ${TCP_PROBE}`);
  console.log(`created ${SERVICE_IMPORTS} ServiceImports + ${SERVICE_IMPORTS} EndpointSlices in ${createSeconds.toFixed(1)} s (concurrency ${CREATE_CONCURRENCY})`);
  for (const line of firstRound) console.log(`start-up ${line}`);
  console.log(`start-up window (${startupSeconds.toFixed(0)} s): ${describeWindow(startSample, startupSample, startupSeconds)}`);
  console.log(`steady window: ${(windowSeconds / 60).toFixed(1)} min`);
  console.log(`  probes: ${(probes / windowSeconds).toFixed(0)}/s over ${AGENTS} agents (needed ${((AGENTS * TARGETS) / INTERVAL_S).toFixed(0)}/s for one probe per target per interval); ` +
    `results: ${['success', 'refused', 'failure', 'timeout', 'error'].map((r) => `${r} ${agentDelta('eps_probe_probes_total', { result: r })}`).join(', ')}; mean lateness ${lateness.toFixed(2)} s`);
  console.log(`  report writes/min (agent metrics): heartbeat ${perMinute(agentDelta('eps_probe_report_writes_total', { reason: 'heartbeat' }))}, ` +
    `change ${perMinute(agentDelta('eps_probe_report_writes_total', { reason: 'change' }))}, create ${perMinute(agentDelta('eps_probe_report_writes_total', { reason: 'create' }))}`);
  console.log(`  controller writes/min (metrics): ServiceImport ${perMinute(controllerDelta('eps_probe_controller_writes_total', { resource: 'serviceimports' }))}, ` +
    `EndpointSlice ${perMinute(controllerDelta('eps_probe_controller_writes_total', { resource: 'endpointslices' }))}; ${passes} passes, mean ${(passMean * 1000).toFixed(0)} ms`);
  console.log(`  watched writes/min: ProbeReports ${perMinute(seen.reports - seenBefore.reports)}, ServiceImports ${perMinute(seen.serviceImports - seenBefore.serviceImports)}, ` +
    `EndpointSlices ${perMinute(seen.slices - seenBefore.slices)}, Events ${perMinute(seen.events - seenBefore.events)}`);
  console.log(`  full lists (informer re-lists) in the window: agents ${['serviceimports', 'endpointslices', 'probereports'].map((r) => `${r} ${agentDelta('eps_probe_informer_lists_total', { resource: r })}`).join(', ')}; ` +
    `controller ${['serviceimports', 'endpointslices', 'probereports'].map((r) => `${r} ${controllerDelta('eps_probe_informer_lists_total', { resource: r })}`).join(', ')}`);
  console.log(`  processes: ${describeWindow(before, after, windowSeconds)}`);
  console.log(`  reports at the end: ${reports.map((r, i) => `${hosts[i]} targets ${r?.targetsProbed} unreachable ${r?.unreachableCount} suspect ${r?.suspect}`).join('; ')}`);
  if (AS_DEPLOYED) {
    const running = (process: { child: { exitCode: number | null; signalCode: string | null } }): string => (process.child.exitCode === null && process.child.signalCode === null ? 'running' : 'exited');
    console.log(`  as deployed: agents node ${deployed.agent.nodeFlags.join(' ')} in ${deployed.agent.memoryLimitMiB} MiB, controller node ${deployed.controller.nodeFlags.join(' ')} in ${deployed.controller.memoryLimitMiB} MiB; ` +
      `cgroup peak usage ${[...cgroups].map(([name, cgroup]) => `${name} ${cgroup.peakMiB().toFixed(0)} MiB`).join(', ')}; ` +
      `at the end: ${hosts.map((host) => `agent-${host} ${running(s.agents.get(host)!)}`).join(', ')}, controller ${running(controller)}`);
  }
} finally {
  for (const request of watches) request.abort();
  await s.destroy();
  farm?.remove();
  await plane.stop();
  for (const cgroup of cgroups.values()) cgroup.remove();
}
