// The image's agent as deployed: builds the image (hack/build-image.sh, timed; the layer cache applies),
// runs the DaemonSet's container with podman the way a kubelet would (test/harness/kubelet.ts: its
// securityContext, 512Mi limit, command, env, ServiceAccount) in a "node" namespace against its own
// apiserver, and measures the agent's memory inside the container: idle (no ServiceImport), then with
// SERVICE_IMPORTS × ENDPOINTS distinct targets on the farm (scale-support.ts: TCP RSTs for a /15).
// Memory: VmRSS of the container's node process, and the container's memory cgroup (usage, peak).
// Usage: node --import tsx bench/image-rss.ts [serviceImports=500] [endpoints=20] [settleSeconds=60]
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../test/harness/fixtures.js';
import { Kubelet, applyManifestRbac, buildImage, containerCgroup, forwardApiserverInto, manifestPod, podman } from '../test/harness/kubelet.js';
import { createScenario } from '../test/harness/scenario.js';
import { FARM_CIDR, addFarm, farmAddress, forEachLimited, machine, metricSum, sampleProcess, sleep } from './scale-support.js';

const SERVICE_IMPORTS = Number(process.argv[2] ?? 500);
const ENDPOINTS = Number(process.argv[3] ?? 20);
const SETTLE_SECONDS = Number(process.argv[4] ?? 60);
const TARGETS = SERVICE_IMPORTS * ENDPOINTS;
const IMAGE = 'localhost/eps-probe-plugin:bench';
const CONFIG = `probe:
  mode: tcp
  interval: 10s
  timeout: 1s
heartbeatPeriod: 30s`;

const log = (message: string): void => void process.stderr.write(`[image-rss] ${message}\n`);

async function memory(pid: number): Promise<string> {
  const sample = await sampleProcess(pid);
  const { memory: cgroup } = containerCgroup(pid);
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  return `RSS ${sample.rssMb.toFixed(0)} MB (peak ${sample.peakRssMb.toFixed(0)}), cgroup usage ${mib(cgroup.usage)} MiB (peak ${mib(cgroup.peak)})`;
}

const buildStarted = performance.now();
buildImage(IMAGE);
const buildSeconds = (performance.now() - buildStarted) / 1000;
const sizeMb = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE])).trim()) / 1e6;

const plane = await ControlPlane.start();
const agentPod = manifestPod('DaemonSet');
await applyManifestRbac(plane.adminConfig());
const token = await plane.tokenFor(agentPod.namespace, agentPod.serviceAccountName);
const s = await createScenario({
  name: 'img', subnet: '10.233.22.0/24', pods: 0, nodes: 1, config: CONFIG, allowCidrs: [FARM_CIDR], controlPlane: plane.state, configNamespace: agentPod.namespace,
});
const kubelet = new Kubelet(IMAGE, { caFile: path.join(plane.state.dir, 'ca.crt'), port: plane.state.apiserverPort });
let farm: { remove(): void } | undefined;
try {
  farm = await addFarm(s.topology, [s.topology.netnsOf('n1')]);
  await forwardApiserverInto(s.topology, 'n1', plane.state.apiserverPort);
  const agent = kubelet.runPod(agentPod, {
    name: `eps-img-bench-${s.namespace}`,
    netns: `/run/netns/${s.topology.netnsOf('n1')}`,
    fields: { 'spec.nodeName': s.nodeNames.n1!, 'metadata.namespace': agentPod.namespace },
    token,
  });
  const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    const deadline = performance.now() + 10 * 60_000;
    while (!(await check().catch(() => false))) {
      if (agent.process.child.exitCode !== null) throw new Error(`the agent exited (${agent.process.child.exitCode}): ${agent.process.rawOutput.join('\n')}`);
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(1000);
    }
  };
  await waitFor('the first report', async () => (await s.report('n1')) !== undefined);
  const pid = await agent.pid();
  await sleep(SETTLE_SECONDS * 1000);
  const idle = await memory(pid);
  log(`idle: ${idle}`);

  const custom = s.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = s.kc.makeApiClient(k8s.DiscoveryV1Api);
  const names = Array.from({ length: SERVICE_IMPORTS }, (_, i) => `si-${String(i).padStart(5, '0')}`);
  await forEachLimited(names, 32, async (name, i) => {
    const addresses = Array.from({ length: ENDPOINTS }, (_, j) => farmAddress(i * ENDPOINTS + j));
    await custom.createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name, namespace: s.namespace, addresses }),
    });
    await discovery.createNamespacedEndpointSlice({
      namespace: s.namespace, body: makeEndpointSlice({ name: `${name}-member1`, namespace: s.namespace, service: name, addresses }),
    });
  });
  await waitFor(`${TARGETS} targets probed`, async () => (await s.report('n1'))?.targetsProbed === TARGETS);
  // Two full rounds (interval 10 s), then the settle time.
  await waitFor('two full rounds', async () => metricSum(await s.metrics('n1'), 'eps_probe_probes_total') >= 2 * TARGETS);
  await sleep(SETTLE_SECONDS * 1000);
  const loaded = await memory(pid);
  const probes = metricSum(await s.metrics('n1'), 'eps_probe_probes_total');

  console.log(`machine: ${machine()}`);
  console.log(`image ${IMAGE}: built in ${buildSeconds.toFixed(0)} s (this run; layer cache as found), ${sizeMb.toFixed(0)} MB`);
  console.log(`agent container as the DaemonSet runs it (limits.memory ${agentPod.container.resources?.limits?.memory}, command ${agentPod.container.command?.join(' ')})`);
  console.log(`  idle (no targets, ${SETTLE_SECONDS} s after its first report): ${idle}`);
  console.log(`  ${TARGETS} targets (${SERVICE_IMPORTS} ServiceImports × ${ENDPOINTS}, interval 10 s, ${SETTLE_SECONDS} s after two full rounds, ${probes} probes so far): ${loaded}`);
} finally {
  await kubelet.destroy();
  await s.destroy();
  farm?.remove();
  await plane.stop();
}
