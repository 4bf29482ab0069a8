// Gray-failure soak: real apiserver + etcd, 3 agent nodes, the controller, 30 "pods" in 3 "remote
// clusters" (one synced EndpointSlice each), for 10 minutes under:
// - every pod link: 5% loss (iptables `statistic`) and 20 ms ± 10 ms delay (bench/pktdelay through an
//   NFQUEUE rule: this kernel has no netem), on the pod's egress;
// - node n3's agent limited to 10% of one core (a CPU cgroup) for the whole run (another share: 4th argument);
// - the apiserver stopped (SIGSTOP) for 30 s twice, etcd for 5 s once;
// - 20 cut/restore cycles of a random single pod, and one whole remote cluster cut for 60 s.
// It prints false disconnections (an address published while its pod was not cut), missed cuts (a cut
// never published within 60 s), cut → disconnected and restore → reconnected latencies per condition,
// and API writes per minute in a steady minute. The configuration is the manifest's defaults.
// Both phases run in one command, the same schedule each: abstainWhenStarved on, then off.
// Usage: node --import tsx bench/soak.ts [minutes per phase=10] [phases=true,false] [starved share of a core=0.1]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/controlplane.js';
import { makeEndpointSlice } from '../test/harness/fixtures.js';
import { POD_PORT, SERVICE, SLICE, createScenario, type Scenario } from '../test/harness/scenario.js';
import { cpuCgroup, machine } from './scale-support.js';

const MINUTES = Number(process.argv[2] ?? 10);
/** abstainWhenStarved in each phase: the starved agent's rule on, then off, in one run. */
const PHASES = (process.argv[3] ?? 'true,false').split(',').map((v) => v === 'true');
const STARVED_CORES = Number(process.argv[4] ?? 0.1);
const CLUSTERS = ['c1', 'c2', 'c3'];
const PODS_PER_CLUSTER = 10;
const NODES = ['n1', 'n2', 'n3'];
const STARVED_NODE = 'n3';
const DETECTION_LIMIT_MS = 60_000;
const POLL_MS = 100;
const CONFIG = 'heartbeatPeriod: 30s';

type Condition = 'steady' | 'apiserver-paused' | 'etcd-paused' | 'cluster-cut';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** bench/pktdelay, built once into the cache from the Go module proxy. */
function pktdelayBinary(): string {
  const out = path.join(os.homedir(), '.cache/eps-probe-plugin/pktdelay');
  mkdirSync(out, { recursive: true });
  const binary = path.join(out, 'pktdelay');
  execFileSync('go', ['build', '-o', binary, '.'], {
    cwd: path.join(import.meta.dirname, 'pktdelay'),
    env: { ...process.env, CGO_ENABLED: '0' },
    stdio: 'inherit',
  });
  return binary;
}

/** Loss and delay on a pod's egress: what `tc netem loss 5% delay 20ms 10ms` would do. */
async function impairPod(s: Scenario, pod: string, binary: string): Promise<void> {
  const ns = s.topology.netnsOf(pod);
  const iptables = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-w', ...args]);
  iptables('-A', 'OUTPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.05', '-j', 'DROP');
  iptables('-A', 'OUTPUT', '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass');
  const delay = s.topology.spawnIn(pod, binary, ['-queue', '0', '-delay', '20ms', '-jitter', '10ms'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    delay.stdout!.once('data', () => resolve());
    delay.once('exit', (code) => reject(new Error(`pktdelay in ${pod} exited with ${code}`)));
  });
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** "p50 / p99" from ≥ 100 samples, otherwise "p50 / max of N" (a p99 of fewer samples is its maximum). */
function summary(values: readonly number[]): string {
  if (values.length === 0) return 'no samples';
  const p50 = (percentile(values, 50) / 1000).toFixed(2);
  return values.length >= 100
    ? `p50 ${p50} s, p99 ${(percentile(values, 99) / 1000).toFixed(2)} s (${values.length} samples)`
    : `p50 ${p50} s, max of ${values.length} ${(Math.max(...values) / 1000).toFixed(2)} s`;
}

const plane = await ControlPlane.start();
const pktdelay = pktdelayBinary();
const starved = cpuCgroup('eps-soak-starved', STARVED_CORES);
const pids = plane.state.pids;
/** Never leave the control plane stopped, however the run ends (it may be gone already). */
const resumeAll = (): void => {
  for (const pid of [pids.apiserver, pids.etcd]) {
    try {
      if (pid) process.kill(pid, 'SIGCONT');
    } catch {
      // already exited
    }
  }
};
process.on('exit', resumeAll);

/** One soak run on a fresh scenario: `abstain` sets abstainWhenStarved. */
async function soak(abstain: boolean): Promise<void> {
  const config = `${CONFIG}\nabstainWhenStarved: ${abstain}`;
  const s = await createScenario({
    name: 'soak',
    subnet: '10.233.26.0/24',
    pods: CLUSTERS.length * PODS_PER_CLUSTER,
    nodes: NODES.length,
    config,
    controlPlane: plane.state,
    command: (role, host) => (role === 'agent' && host === STARVED_NODE ? starved.command(process.execPath) : undefined),
  });
  try {
    // Three remote clusters: one synced slice each, labelled with its source cluster.
    const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
    await discovery.deleteNamespacedEndpointSlice({ namespace: s.namespace, name: SLICE });
    const clusterOf = new Map<string, string>();
    const podsOf = new Map<string, string[]>();
    for (const [c, cluster] of CLUSTERS.entries()) {
      const pods = Array.from({ length: PODS_PER_CLUSTER }, (_, i) => `p${c * PODS_PER_CLUSTER + i + 1}`);
      podsOf.set(cluster, pods);
      for (const pod of pods) clusterOf.set(s.pods[pod]!, cluster);
      const slice = makeEndpointSlice({ name: `${SERVICE}-${cluster}`, namespace: s.namespace, service: SERVICE, addresses: pods.map((p) => s.pods[p]!), port: POD_PORT });
      slice.metadata!.labels!['multicluster.kubernetes.io/source-cluster'] = cluster;
      await discovery.createNamespacedEndpointSlice({ namespace: s.namespace, body: slice });
    }
    const podOf = new Map(Object.entries(s.pods).map(([pod, address]) => [address, pod]));
    for (const pod of Object.keys(s.pods)) await impairPod(s, pod, pktdelay);

    for (const host of NODES) {
      const agent = s.startAgent(host);
      if (host === STARVED_NODE) starved.adopt(agent.child.pid!);
    }
    s.startController('c1');
    const settledAt = Date.now() + 120_000;
    for (;;) {
      const reports = await Promise.all(NODES.map((h) => s.report(h)));
      const disconnected = (await s.disconnected()) ?? '';
      if (reports.every((r) => r?.targetsProbed === clusterOf.size) && disconnected === '') break;
      if (Date.now() > settledAt) throw new Error(`agents did not settle: targets ${JSON.stringify(reports.map((r) => r?.targetsProbed))}, disconnected "${disconnected}"`);
      await sleep(500);
    }

    // The observer: the published set, polled; a poll that hangs (apiserver stopped) is abandoned.
    const cutSince = new Map<string, number>(); // address -> cut time
    const lastRestore = new Map<string, number>(); // address -> when its last cut ended
    // A verdict reached in the seconds after a restore belongs to the cut (late), not to a false alarm.
    const cutOrJustRestored = (address: string, now: number): boolean => cutSince.has(address) || now - (lastRestore.get(address) ?? -Infinity) < 10_000;
    const published = new Map<string, number>(); // address -> time it entered the annotation
    const falseDisconnections: Array<{ address: string; at: number }> = [];
    const appeared = new Map<string, number[]>();
    const left = new Map<string, number[]>();
    // False votes: per node, the times it started listing an address as unreachable that was not cut.
    const falseVotes = new Map<string, number>(NODES.map((host) => [host, 0]));
    const voting = new Map<string, Set<string>>(NODES.map((host) => [host, new Set()]));
    let observing = true;
    const voteObserver = (async () => {
      while (observing) {
        await Promise.all(NODES.map(async (host) => {
          const report = await Promise.race([s.report(host), sleep(1000).then(() => undefined)]);
          if (!report) return;
          const now = new Set(report.serviceImports.flatMap((entry) => entry.unreachable));
          const before = voting.get(host)!;
          for (const address of now) if (!before.has(address) && !cutOrJustRestored(address, Date.now())) falseVotes.set(host, falseVotes.get(host)! + 1);
          voting.set(host, now);
        }));
        await sleep(250);
      }
    })();
    const observer = (async () => {
      while (observing) {
        const value = await Promise.race([s.disconnected().then((v) => v ?? '', () => undefined), sleep(1000).then(() => undefined)]);
        if (value !== undefined) {
          const now = Date.now();
          const current = new Set(value.split(',').filter(Boolean));
          for (const address of current) {
            if (published.has(address)) continue;
            published.set(address, now);
            appeared.set(address, [...(appeared.get(address) ?? []), now]);
            if (!cutOrJustRestored(address, now)) falseDisconnections.push({ address, at: now });
          }
          for (const address of [...published.keys()]) {
            if (current.has(address)) continue;
            published.delete(address);
            left.set(address, [...(left.get(address) ?? []), now]);
          }
        }
        await sleep(POLL_MS);
      }
    })();

    // Writes per minute in a steady minute, from the apiserver's own request counters.
    const writeCounts = async (): Promise<Map<string, number>> => {
      const text = await apiserverMetrics(plane);
      const counts = new Map<string, number>();
      for (const match of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
        const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        if (!['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY'].includes(labels.verb ?? '')) continue;
        if (!['probereports', 'serviceimports', 'endpointslices', 'events', 'leases'].includes(labels.resource ?? '')) continue;
        counts.set(labels.resource!, (counts.get(labels.resource!) ?? 0) + Number(match[2]));
      }
      return counts;
    };
    const before = await writeCounts();
    await sleep(60_000);
    const after = await writeCounts();
    const writesPerMinute = Object.fromEntries([...after].map(([resource, n]) => [resource, n - (before.get(resource) ?? 0)]));

    // The schedule, in seconds from here, scaled to the run's length.
    const start = Date.now();
    const at = (fraction: number): number => start + fraction * MINUTES * 60_000;
    const pauses: Array<{ kind: 'apiserver-paused' | 'etcd-paused'; from: number; to: number }> = [];
    const pause = async (kind: 'apiserver-paused' | 'etcd-paused', pid: number | undefined, ms: number): Promise<void> => {
      if (!pid) throw new Error(`no pid for ${kind}`);
      const from = Date.now();
      process.kill(pid, 'SIGSTOP');
      await sleep(ms);
      process.kill(pid, 'SIGCONT');
      pauses.push({ kind, from, to: Date.now() });
    };
    const faults = (async () => {
      await sleep(Math.max(0, at(0.2) + 1000 - Date.now()));
      await pause('apiserver-paused', pids.apiserver, 30_000);
      await sleep(Math.max(0, at(0.4) + 1000 - Date.now()));
      await pause('etcd-paused', pids.etcd, 5000);
      await sleep(Math.max(0, at(0.6) + 1000 - Date.now()));
      await pause('apiserver-paused', pids.apiserver, 30_000);
    })();

    const samples: Array<{ condition: Condition; address: string; cutAt: number; detectMs?: number; restoreMs?: number }> = [];
    const waitFor = async (condition: () => boolean, limitMs: number): Promise<number | undefined> => {
      const from = Date.now();
      while (Date.now() - from < limitMs) {
        if (condition()) return Date.now() - from;
        await sleep(POLL_MS / 2);
      }
      return undefined;
    };
    const cutAndRestore = async (pods: string[], holdMs: number): Promise<Array<{ address: string; cutAt: number; detectMs?: number; restoreMs?: number }>> => {
      const addresses = pods.map((p) => s.pods[p]!);
      const cutAt = Date.now();
      for (const pod of pods) {
        await s.topology.cutPod(pod);
        cutSince.set(s.pods[pod]!, cutAt);
      }
      const results = addresses.map((address) => ({ address, cutAt, detectMs: undefined as number | undefined, restoreMs: undefined as number | undefined }));
      await Promise.all(results.map(async (r) => {
        r.detectMs = await waitFor(() => (appeared.get(r.address) ?? []).some((t) => t >= cutAt), DETECTION_LIMIT_MS);
        if (r.detectMs !== undefined) r.detectMs = (appeared.get(r.address) ?? []).find((t) => t >= cutAt)! - cutAt;
      }));
      await sleep(Math.max(0, cutAt + holdMs - Date.now()));
      for (const pod of pods) await s.topology.restorePod(pod);
      const restoredAt = Date.now();
      for (const address of addresses) {
        cutSince.delete(address);
        lastRestore.set(address, restoredAt);
      }
      await Promise.all(results.map(async (r) => {
        const waited = await waitFor(() => !published.has(r.address), DETECTION_LIMIT_MS);
        r.restoreMs = waited === undefined ? undefined : Math.max(0, ((left.get(r.address) ?? []).find((t) => t >= restoredAt) ?? restoredAt) - restoredAt);
      }));
      return results;
    };

    const singles = [...clusterOf.keys()].map((a) => podOf.get(a)!);
    for (let cycle = 0; cycle < 20; cycle++) {
      await sleep(Math.max(0, at((cycle / 20) * 0.8) - Date.now()));
      const pod = singles[Math.floor(Math.random() * singles.length)]!;
      for (const r of await cutAndRestore([pod], 2000)) samples.push({ condition: 'steady', ...r });
    }
    await sleep(Math.max(0, at(0.82) - Date.now()));
    const wholeCluster = CLUSTERS[2]!;
    for (const r of await cutAndRestore(podsOf.get(wholeCluster)!, 60_000)) samples.push({ condition: 'cluster-cut', ...r });
    await faults;
    await sleep(Math.max(0, at(1) - Date.now()));
    observing = false;
    await Promise.all([observer, voteObserver]);

    // A cut whose detection window overlaps a pause belongs to that pause's condition.
    for (const sample of samples) {
      if (sample.condition !== 'steady') continue;
      const end = sample.cutAt + (sample.detectMs ?? DETECTION_LIMIT_MS);
      const overlapping = pauses.find((p) => p.from <= end && p.to >= sample.cutAt);
      if (overlapping) sample.condition = overlapping.kind;
    }

    const probeCounts = await Promise.all(NODES.map(async (host) => {
      const text = await s.metrics(host).catch(() => '');
      const count = (result: string): number =>
        [...text.matchAll(new RegExp(`^eps_probe_probes_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
      const total = ['success', 'failure', 'timeout', 'refused', 'error'].reduce((sum, r) => sum + count(r), 0);
      return `${host}${host === STARVED_NODE ? ' (starved)' : ''}: ${total} probes, ${(100 * count('timeout') / Math.max(1, total)).toFixed(1)}% timeouts, ${count('error')} errors, ${falseVotes.get(host)} false unreachable votes`;
    }));
    // How often and how long the starved agent abstained: its NodeStarved Event counts the times.
    const starvedEvents = (await s.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${s.nodeNames[STARVED_NODE]},reason=NodeStarved` })).items;
    const abstentions = starvedEvents.reduce((sum, event) => sum + (event.count ?? 1), 0);
    const missed = samples.filter((x) => x.detectMs === undefined);
    console.log(`soak: ${MINUTES} min, ${machine()}`);
    console.log(`config: the manifest's defaults (${config.replaceAll('\n', '; ')}); quorum majority of ${NODES.length} nodes; ${STARVED_NODE} at ${STARVED_CORES * 100}% of a core`);
    console.log(`false disconnections: ${falseDisconnections.length}${falseDisconnections.length ? ` ${JSON.stringify(falseDisconnections.map((f) => ({ ...f, cluster: clusterOf.get(f.address), at: (f.at - start) / 1000 })))}` : ''}`);
    console.log(`missed cuts: ${missed.length} of ${samples.length}${missed.length ? ` ${missed.map((m) => m.address).join(',')}` : ''}`);
    for (const condition of ['steady', 'apiserver-paused', 'etcd-paused', 'cluster-cut'] as Condition[]) {
      const these = samples.filter((x) => x.condition === condition);
      if (these.length === 0) continue;
      console.log(`${condition}: cut -> disconnected ${summary(these.flatMap((x) => (x.detectMs === undefined ? [] : [x.detectMs])))}; restore -> reconnected ${summary(these.flatMap((x) => (x.restoreMs === undefined ? [] : [x.restoreMs])))}`);
    }
    console.log(`writes in a steady minute: ${JSON.stringify(writesPerMinute)}`);
    for (const line of probeCounts) console.log(line);
    console.log(`${STARVED_NODE} became starved (stall beyond half of probe.timeout) ${abstentions} time(s)${abstentions ? `: ${starvedEvents.map((e) => e.message).join(' | ')}` : ''}`);
  } finally {
    resumeAll();
    await s.destroy();
  }
}

try {
  for (const abstain of PHASES) {
    console.log(`\n== phase: abstainWhenStarved ${abstain} ==`);
    await soak(abstain);
  }
} finally {
  resumeAll();
  starved.remove();
  await plane.stop();
}

/** The apiserver's own /metrics, read with the admin certificate. */
function apiserverMetrics(controlPlane: ControlPlane): Promise<string> {
  const file = (name: string): Buffer => readFileSync(path.join(controlPlane.state.dir, name));
  return new Promise((resolve, reject) => {
    const request = https.get(`${controlPlane.state.server}/metrics`, { ca: file('ca.crt'), cert: file('admin.crt'), key: file('admin.key') }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}
