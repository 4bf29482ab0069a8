// The image, built with podman (hack/build-image.sh) and run the way a kubelet runs the manifest: two
// agents as DaemonSet pods inside "node" network namespaces and the controller as the Deployment's pod,
// each with exactly its securityContext, env, command/args and limits from deploy/eps-probe-plugin.yaml
// (test/harness/kubelet.ts translates them), the manifest's ServiceAccounts and RBAC, against the real
// apiserver. Cgroup v1 (hybrid) here applies the memory and CPU limits; the test checks they did.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { adminConfig, controlPlaneState } from '../harness/cluster.js';
import { ControlPlane } from '../harness/controlplane.js';
import {
  Kubelet, applyManifestRbac, buildImage, containerCgroup, cpuCores, forwardApiserverInto, manifestPod, memoryBytes, podman, securityFlags,
  type ManifestPod, type PodContainer,
} from '../harness/kubelet.js';
import { POD_PORT, createScenario, fastProbeConfig, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const IMAGE = 'localhost/eps-probe-plugin:e2e';
/** The runtime stage of the Dockerfile before this image (node:24 bookworm-slim + a second node), measured with the local base: docs/benchmarks.md. */
const PREVIOUS_RUNTIME_MB = 506;
const NET_RAW = 0x2000n;
const CONFIG = fastProbeConfig('heartbeatPeriod: 2s', 'both');
/** The same with icmpUnavailable: fail (the extra line continues the `probe:` mapping). */
const CONFIG_FAIL = fastProbeConfig('  icmpUnavailable: fail\nheartbeatPeriod: 2s', 'both');

const agentPod = manifestPod('DaemonSet');
const controllerPod = manifestPod('Deployment');

/** Capability sets and ids of a process, from the host's /proc. */
function processStatus(pid: number): Record<string, string> {
  const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').map((line) => line.split(':\t'));
  return Object.fromEntries(lines.filter((parts) => parts.length === 2)) as Record<string, string>;
}

function counter(metrics: string, labels: string): number {
  const match = new RegExp(`^eps_probe_probes_total\\{${labels}\\} (\\d+)$`, 'm').exec(metrics);
  return Number(match?.[1] ?? 0);
}

describe('the image, run as the manifest says', () => {
  let kubelet: Kubelet;
  let s: Scenario;
  const tokens: Record<string, string> = {};
  const agents = new Map<string, PodContainer>();
  let controller: PodContainer;

  function runAgent(host: string, name: string, add?: string[]): PodContainer {
    return kubelet.runPod(agentPod, {
      name: `eps-img-${name}-${s.namespace}`,
      netns: `/run/netns/${s.topology.netnsOf(host)}`,
      fields: { 'spec.nodeName': s.nodeNames[host]!, 'metadata.name': `eps-probe-agent-${host}`, 'metadata.namespace': agentPod.namespace, 'status.podIP': s.nodeAddresses[host]! },
      token: tokens[agentPod.serviceAccountName]!,
      add,
    });
  }

  /** The manifest's Lease and ConfigMap: deploy.test.ts uses them too, one file at a time. */
  async function removeSharedObjects(): Promise<void> {
    const kc = adminConfig();
    const namespace = agentPod.namespace;
    await kc.makeApiClient(k8s.CoreV1Api).deleteNamespacedConfigMap({ namespace, name: 'eps-probe-plugin' }).catch(() => undefined);
    await kc.makeApiClient(k8s.CoordinationV1Api).deleteNamespacedLease({ namespace, name: 'eps-probe-plugin-controller' }).catch(() => undefined);
  }

  beforeAll(async () => {
    const image = buildImage(IMAGE);
    const state = controlPlaneState();
    await applyManifestRbac(adminConfig());
    await removeSharedObjects();
    const plane = ControlPlane.attach(state);
    for (const pod of [agentPod, controllerPod]) tokens[pod.serviceAccountName] = await plane.tokenFor(pod.namespace, pod.serviceAccountName);

    s = await createScenario({
      name: 'img', subnet: '10.233.22.0/24', pods: 2, nodes: 3, config: CONFIG, controlPlane: state, configNamespace: agentPod.namespace,
    });
    const controllerAddress = (await s.topology.addNode('ctl')).address;
    for (const host of ['n1', 'n2', 'n3', 'ctl']) await forwardApiserverInto(s.topology, host, state.apiserverPort);
    kubelet = new Kubelet(image, { caFile: path.join(state.dir, 'ca.crt'), port: state.apiserverPort });

    for (const host of ['n1', 'n2']) agents.set(host, runAgent(host, host));
    const podName = `eps-probe-controller-${s.namespace}`;
    controller = kubelet.runPod(controllerPod, {
      name: `eps-img-controller-${s.namespace}`,
      netns: `/run/netns/${s.topology.netnsOf('ctl')}`,
      fields: { 'metadata.name': podName, 'metadata.namespace': controllerPod.namespace, 'status.podIP': controllerAddress },
      token: tokens[controllerPod.serviceAccountName]!,
    });
    for (const host of ['n1', 'n2']) await until(`the report of ${host}`, async () => (await s.report(host))?.targetsProbed === 2, 60_000);
  }, 20 * 60_000);

  afterAll(async () => {
    await kubelet?.destroy();
    await s?.destroy();
    await removeSharedObjects();
  });

  it(`holds no shell, package manager, npm or compiler, is at most 60% of the previous ${PREVIOUS_RUNTIME_MB} MB, and node-net-raw keeps its file capability`, async () => {
    const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE])).trim());
    console.log(`[image] ${IMAGE}: ${(size / 1e6).toFixed(0)} MB`);
    expect(size / 1e6).toBeLessThanOrEqual(PREVIOUS_RUNTIME_MB * 0.6);
    const root = (await podman(['image', 'mount', IMAGE])).trim();
    try {
      const files: Array<{ file: string; executable: boolean }> = [];
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          const file = path.join(dir, entry.name);
          if (entry.isDirectory()) walk(file);
          else files.push({ file: path.relative(root, file), executable: entry.isSymbolicLink() || (statSync(file).mode & 0o111) !== 0 });
        }
      };
      walk(root);
      // Outside the app only node, the launcher and shared libraries (they carry the executable bit too).
      const programs = files.filter(({ file, executable }) => executable && !file.startsWith('app/') && !/\.so(\.\d+)*$/.test(file));
      expect(programs.map(({ file }) => file).sort()).toEqual(['usr/local/bin/node', 'usr/local/bin/node-net-raw']);
      const tools = /^(sh|bash|dash|busybox|env|npm|npx|apt|apt-get|dpkg|gcc|cc|g\+\+|make|python3?)$/;
      expect(files.filter(({ file }) => tools.test(path.basename(file)) || file.includes('node_modules/npm/'))).toEqual([]);
      // Seen from the host: COPY --from keeps the security.capability attribute of the build stage.
      expect(execFileSync('getcap', [path.join(root, 'usr/local/bin/node-net-raw')], { encoding: 'utf8' })).toMatch(/ cap_net_raw=p$/m);
      expect(execFileSync('getcap', [path.join(root, 'usr/local/bin/node')], { encoding: 'utf8' })).toBe('');
    } finally {
      await podman(['image', 'unmount', IMAGE]);
    }
  });

  it('gives node NET_RAW through node-net-raw alone under Kubernetes capability sets (podman alone would make it ambient)', async () => {
    const kubernetesFlags = securityFlags(agentPod);
    const podmanFlags = kubernetesFlags.filter((flag) => !flag.startsWith('--annotation='));
    const effective = async (entrypoint: string, flags: string[]): Promise<bigint> => {
      const status = await kubelet.podman([
        'run', '--rm', '--network=none', `--entrypoint=${entrypoint}`, ...flags, IMAGE,
        '-e', "process.stdout.write(require('fs').readFileSync('/proc/self/status', 'utf8'))",
      ]);
      return BigInt(`0x${/^CapEff:\t([0-9a-f]+)$/m.exec(status)![1]}`);
    };
    expect(await effective('node', kubernetesFlags)).toBe(0n);
    expect(await effective('node-net-raw', kubernetesFlags)).toBe(NET_RAW);
    expect(await effective('node', podmanFlags)).toBe(NET_RAW);
  });

  it("runs agents and controller as the manifest's user, with no_new_privs, its capabilities, a read-only root and its limits", async () => {
    const cases: Array<[ManifestPod, PodContainer, bigint]> = [
      [agentPod, agents.get('n1')!, NET_RAW],
      [controllerPod, controller, 0n],
    ];
    for (const [pod, container, capabilities] of cases) {
      const pid = await container.pid();
      const status = processStatus(pid);
      const user = String(pod.container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser);
      expect(status.Uid!.split('\t')).toEqual([user, user, user, user]);
      expect(status.NoNewPrivs).toBe('1');
      expect(BigInt(`0x${status.CapBnd}`)).toBe(capabilities);
      expect(BigInt(`0x${status.CapEff}`)).toBe(capabilities);
      const { limits } = pod.container.resources!;
      const cgroup = containerCgroup(pid);
      expect(cgroup.memory.limit).toBe(memoryBytes(limits!.memory!));
      expect(cgroup.cpus).toBe(cpuCores(limits!.cpu!));
      const readOnly = await podman(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', container.name]);
      expect(readOnly.trim()).toBe('true');
    }
  });

  it('prunes a cut pod and restores it, ICMP answers, and the readinessProbe passes', async () => {
    const icmpBefore = await Promise.all(['n1', 'n2'].map(async (host) => counter(await s.metrics(host), 'protocol="icmp",result="success"')));
    await s.topology.cutPod('p1');
    await expect.poll(() => s.sliceAddresses(), { timeout: 15_000, interval: 200 }).toEqual([s.pods.p2]);
    expect(await s.disconnected()).toBe(s.pods.p1);
    await s.topology.restorePod('p1');
    await expect.poll(() => s.disconnected(), { timeout: 15_000, interval: 200 }).toBe('');
    await expect.poll(async () => (await s.sliceAddresses()).sort(), { timeout: 5000, interval: 200 }).toEqual([s.pods.p1, s.pods.p2].sort());

    for (const [index, host] of ['n1', 'n2'].entries()) {
      const metrics = await s.metrics(host);
      expect(counter(metrics, 'protocol="icmp",result="success"')).toBeGreaterThan(icmpBefore[index]!);
      const probe = agentPod.container.readinessProbe!.httpGet!;
      const port = agentPod.container.ports!.find((p) => p.name === probe.port || p.containerPort === probe.port)!.containerPort;
      expect((await fetch(`http://${s.nodeAddresses[host]}:${port}${probe.path}`)).status).toBe(200);
    }
    const refused = [...agents.values(), controller].flatMap((c) => c.process.logs.map((line) => JSON.stringify(line)).filter((line) => /forbidden|\b403\b/i.test(line)));
    expect(refused).toEqual([]);
  });

  it('without NET_RAW falls back to TCP and says so once (icmpUnavailable: fallback-tcp)', async () => {
    const agent = runAgent('n3', 'n3-fallback', []);
    try {
      await expect.poll(async () => counter(await s.metrics('n3').catch(() => ''), 'protocol="tcp",result="success"'), { timeout: 30_000, interval: 200 }).toBeGreaterThan(4);
      const said = agent.process.logs.filter((line) => JSON.stringify(line).includes('NET_RAW'));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({ msg: expect.stringMatching(/ICMP/) });
      expect(counter(await s.metrics('n3'), 'protocol="icmp",result="success"')).toBe(0);
    } finally {
      await agent.process.stop();
    }
  });

  it('without NET_RAW exits with one fatal line naming NET_RAW (icmpUnavailable: fail)', async () => {
    await s.setConfig(CONFIG_FAIL);
    const agent = runAgent('n3', 'n3-fail', []);
    const code = await new Promise<number | null>((resolve) => agent.process.child.once('exit', resolve));
    expect(code).toBe(1);
    const fatal = agent.process.logs.filter((line) => line.level === 'fatal');
    expect(fatal).toHaveLength(1);
    expect(JSON.stringify(fatal[0])).toContain('NET_RAW');
    expect(agent.process.rawOutput).toEqual([]);
  });

  it("runs the `version` and `probe` commands as README says", async () => {
    expect((await podman(['run', '--rm', '--network=none', IMAGE, 'version'])).trim()).toBe(VERSION);
    // On a node: the image's probe command in the node's network.
    const tcp = await podman(['run', '--rm', `--network=ns:/run/netns/${s.topology.netnsOf('n1')}`, IMAGE,
      'probe', '--tcp', '--timeout', '500', '--json', `${s.pods.p1}:${POD_PORT}`, `${s.pods.p2}:${POD_PORT}`]);
    expect(JSON.parse(tcp)).toEqual([
      expect.objectContaining({ address: s.pods.p1, protocol: 'tcp', result: 'success' }),
      expect.objectContaining({ address: s.pods.p2, protocol: 'tcp', result: 'success' }),
    ]);
    // In the agent's pod (kubectl exec): ICMP through node-net-raw.
    const icmp = await podman(['exec', agents.get('n1')!.name, 'node-net-raw', 'dist/eps-probe-plugin.js', 'probe', '--icmp', '--json', s.pods.p2!]);
    expect(JSON.parse(icmp)).toEqual([expect.objectContaining({ address: s.pods.p2, protocol: 'icmp', result: 'success' })]);
  });

  it("probes half-open in the agent's pod: the native part is in the image and NET_RAW reaches it", async () => {
    const endpoints = [POD_PORT, POD_PORT + 1].map((port) => `${s.pods.p1!}:${port}`);
    const json = await podman(['exec', agents.get('n1')!.name, 'node-net-raw', 'dist/eps-probe-plugin.js', 'probe', '--tcp', '--half-open', '--json', '--timeout', '500', ...endpoints]);
    expect((JSON.parse(json) as Array<{ protocol: string; result: string }>).map((row) => `${row.protocol} ${row.result}`)).toEqual(['tcp success', 'tcp refused']);
  });
});
