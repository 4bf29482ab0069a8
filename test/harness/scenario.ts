// A whole e2e scenario on the shared control plane: "pods" with TCP listeners and "nodes" in network
// namespaces, a fresh Kubernetes namespace with our ConfigMap, a Kosmos-style ServiceImport with its
// synced EndpointSlice, agents running in the node namespaces and controllers in the root namespace.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ConfigError, configVersion, parseConfig } from '../../src/config/config.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import { ControlPlane, type ControlPlaneState } from './controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from './fixtures.js';
import { startCli, type RunningProcess } from './processes.js';
import { createTopology, type Topology } from './topology.js';

export const POD_PORT = 8080;
export const AGENT_METRICS_PORT = 9464;
export const SERVICE = 'web';
export const SLICE = 'web-member1';

/**
 * The fast probe settings every scenario uses (interval 1 s, timeout 500 ms, thresholds 2/2, fast
 * confirmation 200 ms: detection in ~1.2–2.2 s), plus `rest`: more top-level config.yaml lines.
 */
export function fastProbeConfig(rest: string, mode: 'tcp' | 'icmp' | 'both' = 'tcp'): string {
  return `probe:
  mode: ${mode}
  interval: 1s
  timeout: 500ms
  fastInterval: 200ms
  failureThreshold: 2
  successThreshold: 2
${rest}`;
}

export interface ScenarioOptions {
  /** Topology name (≤ 5 chars) and its subnet, unique per test file. */
  name: string;
  subnet: string;
  pods: number;
  nodes: number;
  /** config.yaml; `allowCidrs` and the namespace filter are added. */
  config: string;
  /** The agents' allow-list; the whole subnet when unset. */
  allowCidrs?: string[];
  /** The control plane to use (tests: `controlPlaneState()` from cluster.ts). */
  controlPlane: ControlPlaneState;
  /** Echo the processes' log lines to stderr. */
  echo?: boolean;
  /**
   * Bearer tokens (e.g. of the manifest's ServiceAccounts) that agents and controllers use instead of
   * the admin certificate. `agent` may mint one token per node, as each agent pod has its own.
   */
  tokens?: { agent: string | ((nodeName: string) => Promise<string>); controller: string };
  /** Namespace of the ConfigMap and the controllers' Lease; the scenario's own namespace when unset. */
  configNamespace?: string;
  /** The program that runs an agent's or a controller's CLI script (StartOptions.command); node when unset. */
  command?: (role: 'agent' | 'controller', name: string) => string[] | undefined;
}

export interface Scenario {
  /** Namespace of the ServiceImport and its slice. */
  namespace: string;
  /** Namespace of the ConfigMap and the Lease. */
  configNamespace: string;
  topology: Topology;
  kc: k8s.KubeConfig;
  /** Pod name (p1..) → address. */
  pods: Record<string, string>;
  /** Node host (n1..) → Kubernetes node name (unique per run); each has its Node object. */
  nodeNames: Record<string, string>;
  /** Node host → its address (for /metrics). */
  nodeAddresses: Record<string, string>;
  agents: Map<string, RunningProcess>;
  controllers: Map<string, RunningProcess>;
  startAgent(host: string): RunningProcess;
  startController(id: string, env?: Record<string, string>, metricsPort?: number): RunningProcess;
  /** Writes config.yaml; resolves with the version agents will report for it (undefined when it is invalid). */
  setConfig(config: string): Promise<string | undefined>;
  report(host: string): Promise<ProbeReportSpec | undefined>;
  serviceImport(): Promise<{ metadata: k8s.V1ObjectMeta }>;
  disconnected(): Promise<string | undefined>;
  slice(): Promise<k8s.V1EndpointSlice>;
  /** Addresses currently in the synced slice. */
  sliceAddresses(): Promise<string[]>;
  metrics(host: string): Promise<string>;
  destroy(): Promise<void>;
}

export async function createScenario(options: ScenarioOptions): Promise<Scenario> {
  const plane = ControlPlane.attach(options.controlPlane);
  const kc = plane.adminConfig();
  const suffix = randomBytes(3).toString('hex');
  const namespace = `${options.name}-${suffix}`;
  const configNamespace = options.configNamespace ?? namespace;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  const topology = await createTopology({ name: options.name, subnet: options.subnet });
  const agents = new Map<string, RunningProcess>();
  const controllers = new Map<string, RunningProcess>();
  const pods: Record<string, string> = {};
  const nodeNames: Record<string, string> = {};
  const nodeAddresses: Record<string, string> = {};
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const scratch = mkdtempSync(path.join(os.tmpdir(), `eps-${options.name}-`));

  for (let i = 1; i <= options.pods; i++) {
    pods[`p${i}`] = (await topology.addPod(`p${i}`)).address;
    await topology.listen(`p${i}`, POD_PORT);
  }
  for (let i = 1; i <= options.nodes; i++) {
    nodeAddresses[`n${i}`] = (await topology.addNode(`n${i}`)).address;
    nodeNames[`n${i}`] = `${options.name}-n${i}-${suffix}`;
    // The controller counts only reports of Nodes that exist.
    await core.createNode({ body: { metadata: { name: nodeNames[`n${i}`] } } });
  }
  const forward = await topology.forwardLoopback(options.controlPlane.apiserverPort);
  const agentKubeconfigs: Record<string, string> = {};
  for (const [host, nodeName] of Object.entries(nodeNames)) {
    const file = path.join(scratch, `agent-${host}.kubeconfig`);
    const token = options.tokens && (typeof options.tokens.agent === 'string' ? options.tokens.agent : await options.tokens.agent(nodeName));
    agentKubeconfigs[host] = token ? plane.writeTokenKubeconfig(token, file, forward) : plane.writeAdminKubeconfigVia(file, forward);
  }
  const controllerKubeconfig = options.tokens
    ? plane.writeTokenKubeconfig(options.tokens.controller, path.join(scratch, 'controller.kubeconfig'))
    : options.controlPlane.kubeconfig;

  const fullConfig = (config: string): string =>
    `${config}\nallowCidrs: [${(options.allowCidrs ?? [options.subnet]).join(', ')}]\nnamespaces: { include: [${namespace}] }\n`;
  await core.createNamespacedConfigMap({
    namespace: configNamespace,
    body: { metadata: { name: 'eps-probe-plugin' }, data: { 'config.yaml': fullConfig(options.config) } },
  });
  const addresses = Object.values(pods);
  await custom.createNamespacedCustomObject({
    group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports',
    body: makeServiceImport({ name: SERVICE, namespace, addresses, ports: [POD_PORT] }),
  });
  await discovery.createNamespacedEndpointSlice({
    namespace,
    body: makeEndpointSlice({ name: SLICE, namespace, service: SERVICE, addresses, port: POD_PORT }),
  });

  const scenario: Scenario = {
    namespace,
    configNamespace,
    topology,
    kc,
    pods,
    nodeNames,
    nodeAddresses,
    agents,
    controllers,
    startAgent(host) {
      const agent = startCli(
        ['agent', '--kubeconfig', agentKubeconfigs[host]!, '--identity', nodeNames[host]!, '--namespace', configNamespace, '--metrics-port', String(AGENT_METRICS_PORT)],
        { topology, host, echo: options.echo, command: options.command?.('agent', host) },
      );
      agents.set(host, agent);
      return agent;
    },
    startController(id, env = {}, metricsPort = 0) {
      const controller = startCli(
        ['controller', '--kubeconfig', controllerKubeconfig, '--identity', `${id}-${suffix}`, '--namespace', configNamespace, '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1'],
        { env, echo: options.echo, host: id, command: options.command?.('controller', id) },
      );
      controllers.set(id, controller);
      return controller;
    },
    async setConfig(config) {
      const text = fullConfig(config);
      await core.patchNamespacedConfigMap(
        { name: 'eps-probe-plugin', namespace: configNamespace, body: { data: { 'config.yaml': text } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      try {
        return configVersion(parseConfig(text));
      } catch (err) {
        if (err instanceof ConfigError) return undefined;
        throw err;
      }
    },
    async report(host) {
      try {
        const object = (await custom.getClusterCustomObject({
          group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports', name: nodeNames[host]!,
        })) as { spec: ProbeReportSpec };
        return object.spec;
      } catch {
        return undefined;
      }
    },
    async serviceImport() {
      return (await custom.getNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports', name: SERVICE })) as { metadata: k8s.V1ObjectMeta };
    },
    async disconnected() {
      return (await scenario.serviceImport()).metadata.annotations?.['kosmos.io/disconnected-address'];
    },
    slice: () => discovery.readNamespacedEndpointSlice({ namespace, name: SLICE }),
    async sliceAddresses() {
      return ((await scenario.slice()).endpoints ?? []).flatMap((e) => e.addresses);
    },
    async metrics(host) {
      const response = await fetch(`http://${nodeAddresses[host]}:${AGENT_METRICS_PORT}/metrics`);
      return response.text();
    },
    async destroy() {
      await Promise.all([...agents.values(), ...controllers.values()].map((p) => p.stop()));
      await topology.destroy();
      // Reports are cluster-scoped: left behind, they would count as invalid in later test files.
      for (const name of Object.values(nodeNames)) {
        await custom.deleteClusterCustomObject({ group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports', name }).catch(() => undefined);
        await core.deleteNode({ name }).catch(() => undefined);
      }
      // Its kubeconfigs hold credentials.
      rmSync(scratch, { recursive: true, force: true });
    },
  };
  return scenario;
}
