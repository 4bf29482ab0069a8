// `make demo`: the whole story on this machine. A local control plane, three "pods" in network
// namespaces behind a Kosmos-style ServiceImport and synced EndpointSlice, two agents in "node"
// namespaces and the controller; then a link is cut and restored while you watch, in the terminal
// and on the controller's status page. With `--keep` (`make demo KEEP=1`) everything stays up
// until Ctrl-C, to look around.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ControlPlane, controlPlaneBinaries, freePort } from '../test/harness/controlplane.js';
import { CLI } from '../test/harness/processes.js';
import { createScenario, SERVICE, SLICE, type Scenario, fastProbeConfig } from '../test/harness/scenario.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 5s`);

const bold = (text: string): string => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const step = (text: string): void => console.log(`\n${bold(`==> ${text}`)}`);

/** The kubectl built with the control plane, so the demo does not depend on the machine's. */
const KUBECTL = path.join(controlPlaneBinaries(), 'kubectl');

/** Shows what a user would type, and its output. */
function kubectl(kubeconfig: string, args: string[]): void {
  console.log(`$ kubectl ${args.join(' ')}`);
  try {
    console.log(execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' }).trimEnd());
  } catch (err) {
    console.log(`(kubectl failed: ${(err as Error).message.split('\n')[0]})`);
  }
}

/** Waits for `done`, printing a progress line with the elapsed time; returns the time it took. */
async function waitWithProgress(what: string, done: () => Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const elapsed = Date.now() - started;
    if (await done()) {
      if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
      console.log(`${what}: done in ${(elapsed / 1000).toFixed(2)} s`);
      return elapsed;
    }
    if (elapsed > timeoutMs) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K${what}... ${(elapsed / 1000).toFixed(1)} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The terminal view, as a user would run it. */
function statusCommand(kubeconfig: string, namespace: string): void {
  const args = ['status', '--kubeconfig', kubeconfig, '--namespace', namespace, '--config-namespace', namespace];
  console.log(`$ eps-probe-plugin ${args.join(' ')}`);
  try {
    console.log(execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' }).trimEnd());
  } catch (err) {
    console.log(`(status failed: ${(err as Error).message.split('\n')[0]})`);
  }
}

async function main(keep: boolean): Promise<void> {
  step('Starting a local kube-apiserver + etcd (built from the Go module proxy on first run)');
  const plane = await ControlPlane.start();
  let scenario: Scenario | undefined;
  const cleanup = async (): Promise<void> => {
    step('Cleaning up: processes, network namespaces, control plane');
    await scenario?.destroy();
    await plane.stop();
  };
  // Ctrl-C ends the wait of --keep, or else the demo wherever it is.
  let endKeep: (() => void) | undefined;
  process.on('SIGINT', () => {
    if (endKeep) endKeep();
    else void cleanup().then(() => process.exit(130));
  });
  try {
    console.log(`apiserver at ${plane.state.server}; kubeconfig ${plane.kubeconfig}`);
    step('Creating 3 pods (network namespaces on a bridge, 10.233.90.0/24, blackholed in the root namespace)');
    scenario = await createScenario({ name: 'demo', subnet: '10.233.90.0/24', pods: 3, nodes: 2, config: CONFIG, controlPlane: plane.state });
    const s = scenario;
    console.log(`pods: ${Object.entries(s.pods).map(([name, ip]) => `${name}=${ip}`).join('  ')}`);
    console.log(`namespace ${s.namespace}: ServiceImport ${SERVICE} and its Kosmos-synced EndpointSlice ${SLICE}`);

    step('Starting two agents (one per "node" namespace) and the controller');
    s.startAgent('n1');
    s.startAgent('n2');
    const statusPort = await freePort();
    s.startController('controller', {}, statusPort);
    const statusUrl = `http://127.0.0.1:${statusPort}/status`;
    console.log(`status page: ${bold(statusUrl)} (open it now: it updates itself)`);
    await waitWithProgress('agents complete their first round and publish reports', async () => {
      const reports = await Promise.all(['n1', 'n2'].map((host) => s.report(host)));
      return reports.every((r) => r?.targetsProbed === 3);
    });
    const kubeconfig = plane.kubeconfig;
    const show = (): void => {
      kubectl(kubeconfig, ['get', 'probereports']);
      kubectl(kubeconfig, ['-n', s.namespace, 'get', 'serviceimport', SERVICE, '-o', `jsonpath={.metadata.annotations.kosmos\\.io/disconnected-address}{"\\n"}`]);
      kubectl(kubeconfig, ['-n', s.namespace, 'get', 'endpointslice', SLICE, '-o', 'jsonpath={.endpoints[*].addresses[0]}{"\\n"}']);
    };
    show();

    step(`Cutting pod p2 (${s.pods.p2}) off the network: its link goes down`);
    await s.topology.cutPod('p2');
    await waitWithProgress('controller prunes p2 from the slice', async () => !(await s.sliceAddresses()).includes(s.pods.p2!));
    show();
    statusCommand(kubeconfig, s.namespace);

    step('Restoring the link');
    await s.topology.restorePod('p2');
    await waitWithProgress('controller restores p2 in the slice', async () => (await s.sliceAddresses()).includes(s.pods.p2!));
    show();
    kubectl(kubeconfig, ['-n', s.namespace, 'get', 'events', '--field-selector', 'involvedObject.kind=ServiceImport', '-o', 'custom-columns=REASON:.reason,MESSAGE:.message']);
    if (keep) {
      step(`Kept running until Ctrl-C: status page ${statusUrl}, export KUBECONFIG=${kubeconfig}`);
      await new Promise<void>((resolve) => (endKeep = resolve));
    }
  } finally {
    await cleanup();
  }
  console.log('\nDemo finished.');
}

await main(process.argv.includes('--keep'));
