// 1,000 nodes without a cluster: probeReplicas 3 vs 0 over the real rendezvous, view and aggregation
// code, with agent timing taken from the configuration (interval, timeout, fastInterval, thresholds,
// heartbeat, jitter as in the engine). Prints per mode: targets per node, probes/s cluster-wide,
// report writes/s (heartbeats, and per cut), the time from a cut to the first node's verdict and to
// the controller's (quorum over the voters, controller debounce), and the CPU time of the agent's
// shard computation and of the controller's aggregate() pass at that size.
// Usage: node --import tsx bench/sharding-sim.ts [nodes=1000] [targets=20000] [cuts=20]
// What is not modelled: API latency (cut-latency.ts measures it end to end), CPU saturation of an
// agent (probe lateness), and the unknown→reachable start-up.
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { nextDelayMs, observe, type Health } from '../src/probe/hysteresis.js';
import { aggregate } from '../src/report/aggregate.js';
import { membersDigest, targetSetDigest } from '../src/report/coverage.js';
import { rendezvous } from '../src/report/rendezvous.js';
import type { ProbeReportSpec } from '../src/contract/probe-report.js';
import { buildNodeView, type TargetState } from '../src/report/view.js';
import { machine } from './scale-support.js';

const NODES = Number(process.argv[2] ?? 1000);
const TARGETS = Number(process.argv[3] ?? 20_000);
const CUTS = Number(process.argv[4] ?? 20);
const ENDPOINTS_PER_IMPORT = 20;
/** The engine's jitter on every re-plan (src/probe/engine.ts). */
const JITTER = 0.1;
/** The controller's debounce (src/controller/controller.ts): a burst of report changes costs one pass. */
const CONTROLLER_DEBOUNCE_MS = 20;
const config = DEFAULT_CONFIG;
const probe = config.probe;

const nodes = Array.from({ length: NODES }, (_, i) => `node-${String(i).padStart(4, '0')}`);
const addresses = Array.from({ length: TARGETS }, (_, i) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`);
const ownerOf = (index: number): string => `bench/si-${Math.floor(index / ENDPOINTS_PER_IMPORT)}`;
const targetDigest = targetSetDigest(addresses);
const serviceImports = Array.from({ length: Math.ceil(TARGETS / ENDPOINTS_PER_IMPORT) }, (_, i) => ({
  key: `bench/si-${i}`,
  addresses: addresses.slice(i * ENDPOINTS_PER_IMPORT, (i + 1) * ENDPOINTS_PER_IMPORT),
}));

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const jittered = (ms: number): number => ms * (1 + JITTER * (2 * Math.random() - 1));

/**
 * One node's probing of an address cut at time 0 (every probe from then on times out): returns when
 * the node's state turns unreachable. The target is settled (reachable) and its next probe is at a
 * uniformly random point of its interval, as after the engine's spread start and jittered re-plans.
 */
function detectionMs(): number {
  let health: Health = { state: 'reachable', lastVerdict: 'success', run: probe.successThreshold };
  let at = Math.random() * jittered(probe.intervalMs);
  for (;;) {
    const finished = at + probe.timeoutMs;
    health = observe(health, 'failure', probe);
    if (health.state === 'unreachable') return finished;
    at = finished + jittered(nextDelayMs(health, 'failure', { intervalMs: probe.intervalMs, fastIntervalMs: probe.fastIntervalMs }));
  }
}

function report(node: string, replicas: number, view: ReturnType<typeof buildNodeView>, now: Date): ProbeReportSpec {
  return {
    nodeName: node, agentVersion: 'sim', heartbeatTime: now.toISOString(), heartbeatPeriodSeconds: config.heartbeatPeriodMs / 1000,
    configVersion: 'sim', probeReplicas: replicas, membersDigest: replicas > 0 ? membersDigest(nodes) : '', targetSetDigest: targetDigest, ...view,
  };
}

function cpuMs<T>(work: () => T): { result: T; ms: number } {
  const started = process.cpuUsage();
  const result = work();
  const used = process.cpuUsage(started);
  return { result, ms: (used.user + used.system) / 1000 };
}

function simulate(replicas: number): void {
  const now = new Date();
  // Which addresses each node probes: the agent's rule (src/agent/agent.ts syncTargets).
  const shard = cpuMs(() => {
    const ring = replicas > 0 ? rendezvous(nodes, replicas) : undefined;
    addresses.filter((address) => !ring || ring.isAssigned(address, nodes[0]!));
    return ring;
  });
  const ring = shard.result;
  const assignees = (address: string): string[] => (ring ? ring.assignees(address) : nodes);
  const perNode = new Map<string, number>(nodes.map((n) => [n, 0]));
  for (const address of addresses) for (const node of assignees(address)) perNode.set(node, perNode.get(node)! + 1);
  const loads = [...perNode.values()];
  const probesPerSecond = loads.reduce((a, b) => a + b, 0) / (probe.intervalMs / 1000);

  // Views as the agents publish them: all reachable, or one address unreachable.
  const cleanView = (node: string): ReturnType<typeof buildNodeView> =>
    ({ ...buildNodeView({ states: [], suspectShare: config.selfIsolationShare }), targetsProbed: perNode.get(node)!, targetsJudged: perNode.get(node)! });
  const reports = new Map(nodes.map((node) => [node, report(node, replicas, cleanView(node), now)]));
  const steadyPass = cpuMs(() => aggregate({
    reports: [...reports.values()], now, staleAfterMs: config.controller.reportStaleAfterMs, quorum: config.controller.quorum,
    maxEjectionShare: config.controller.maxEjectionShare, selfIsolationShare: config.selfIsolationShare, probeReplicas: replicas, serviceImports, previous: new Map(),
  }));

  const firstNode: number[] = [];
  const verdict: number[] = [];
  const passMs: number[] = [];
  let writesPerCut = 0;
  for (let cut = 0; cut < CUTS; cut++) {
    const down = Math.floor(Math.random() * TARGETS);
    const address = addresses[down]!;
    const key = ownerOf(down);
    // The view of a node that probes every address and sees `address` unreachable, from the real view
    // code; a sharded node's view differs only in targetsProbed, set per node below.
    const states: TargetState[] = addresses.map((a, i) => ({ address: a, owners: [ownerOf(i)], state: i === down ? 'unreachable' : 'reachable' }));
    const cutView = buildNodeView({ states, suspectShare: config.selfIsolationShare });
    const detections = assignees(address).map((node) => ({ node, at: detectionMs() })).sort((a, b) => a.at - b.at);
    writesPerCut += detections.length;
    firstNode.push(detections[0]!.at);
    const current = new Map(reports);
    let decidedAt: number | undefined;
    // Controller passes: one per burst of report changes (debounce), in simulated time.
    for (let i = 0; i < detections.length && decidedAt === undefined;) {
      const passAt = detections[i]!.at + CONTROLLER_DEBOUNCE_MS;
      for (; i < detections.length && detections[i]!.at <= passAt; i++) {
        const { node } = detections[i]!;
        current.set(node, report(node, replicas, { ...cutView, targetsProbed: perNode.get(node)!, targetsJudged: perNode.get(node)! }, now));
      }
      const pass = cpuMs(() => aggregate({
        reports: [...current.values()], now, staleAfterMs: config.controller.reportStaleAfterMs, quorum: config.controller.quorum,
        maxEjectionShare: config.controller.maxEjectionShare, selfIsolationShare: config.selfIsolationShare, probeReplicas: replicas, serviceImports, previous: new Map(),
      }));
      passMs.push(pass.ms);
      if (pass.result.verdicts.get(key)?.disconnected.has(address)) decidedAt = passAt;
    }
    verdict.push(decidedAt ?? Number.NaN);
  }

  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const heartbeats = NODES / (config.heartbeatPeriodMs / 1000);
  console.log(`probeReplicas ${replicas}:`);
  console.log(`  targets per node: min ${Math.min(...loads)}, mean ${(loads.reduce((a, b) => a + b, 0) / NODES).toFixed(1)}, max ${Math.max(...loads)}; ` +
    `agent shard computation (${TARGETS} targets × ${NODES} members): ${shard.ms.toFixed(0)} ms CPU per target-set sync`);
  console.log(`  probes/s cluster-wide: ${probesPerSecond.toFixed(0)} (per node mean ${(probesPerSecond / NODES).toFixed(1)})`);
  console.log(`  report writes/s: ${heartbeats.toFixed(1)} heartbeats in steady state; a cut address adds ${(writesPerCut / CUTS).toFixed(0)} change writes, its restore as many again`);
  console.log(`  cut -> first node unreachable: p50 ${seconds(percentile(firstNode, 50))}, p99 ${seconds(percentile(firstNode, 99))}`);
  console.log(`  cut -> controller verdict (${config.controller.quorum} of ${replicas || NODES} voters, API latency excluded): ` +
    `p50 ${seconds(percentile(verdict, 50))}, p99 ${seconds(percentile(verdict, 99))}, max ${seconds(Math.max(...verdict))}`);
  console.log(`  aggregate() per pass (${NODES} reports, ${TARGETS} addresses): all reachable ${steadyPass.ms.toFixed(0)} ms CPU (first call, cold JIT); during cuts p50 ${percentile(passMs, 50).toFixed(0)} ms, ` +
    `p99 ${percentile(passMs, 99).toFixed(0)} ms; ${(passMs.length / CUTS).toFixed(1)} passes per cut until the verdict`);
}

console.log(`machine: ${machine()}`);
console.log(`model: ${NODES} nodes, ${TARGETS} addresses (${serviceImports.length} ServiceImports × ${ENDPOINTS_PER_IMPORT}), ${CUTS} cuts per mode; ` +
  `config defaults: interval ${probe.intervalMs} ms, timeout ${probe.timeoutMs} ms, fastInterval ${probe.fastIntervalMs} ms, ` +
  `failureThreshold ${probe.failureThreshold}, heartbeat ${config.heartbeatPeriodMs / 1000} s, quorum ${config.controller.quorum}, jitter ±${JITTER * 100}%`);
for (const replicas of [0, 3]) simulate(replicas);
