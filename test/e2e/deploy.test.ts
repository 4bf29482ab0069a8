// deploy/eps-probe-plugin.yaml on the real apiserver: kubectl accepts every object (server-side dry
// run), and the agent and controller work end to end with exactly the manifest's ServiceAccounts,
// RBAC and admission policies, which refuse them what they must not do (test/e2e/admission.test.ts
// goes through the policies one by one).
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_CONFIG, parseConfig } from '../../src/config/config.js';
import { controlPlaneState, serviceAccountConfig } from '../harness/cluster.js';
import { ControlPlane } from '../harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION } from '../harness/fixtures.js';
import { MANIFEST, MANIFEST_NAMESPACE as NAMESPACE, applyAccessControl, kubectl, manifest } from '../harness/manifest.js';
import { SERVICE, SLICE, createScenario, type Scenario, fastProbeConfig } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const CONFIG = fastProbeConfig(`heartbeatPeriod: 2s`);

/** Uncomments the commented-out keys of config.yaml (`#key: value`, `#  key: value`); prose (`# text`) stays. */
function uncommentDefaults(configYaml: string): string {
  return configYaml.replace(/^#(?=\S| {2})/gm, '');
}

/** Dotted paths of the leaves of a mapping (lists are leaves). */
function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => leafPaths(child, prefix ? `${prefix}.${key}` : key));
}

describe('deploy/eps-probe-plugin.yaml', () => {
  const configYaml = manifest.find((o) => o.kind === 'ConfigMap')?.data?.['config.yaml'] ?? '';

  it('ships a ConfigMap whose config.yaml is valid and shows every key with its real default', () => {
    const shipped = parseConfig(configYaml);
    expect(shipped.allowCidrs).toEqual(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']);
    expect({ ...shipped, allowCidrs: [] }).toEqual(DEFAULT_CONFIG);

    const documented = uncommentDefaults(configYaml);
    expect({ ...parseConfig(documented), allowCidrs: [] }).toEqual(DEFAULT_CONFIG);
    // Config keys are the code's field names without the `Ms` unit (interval <-> intervalMs).
    const codeKeys = leafPaths(DEFAULT_CONFIG).map((key) => key.replace(/Ms$/, '')).sort();
    expect(leafPaths(parse(documented)).sort()).toEqual(codeKeys);
  });
});

describe('deploy/eps-probe-plugin.yaml on the apiserver', () => {
  let s: Scenario | undefined;
  const plane = ControlPlane.attach(controlPlaneState());
  /** Pods the agents' tokens are bound to. */
  const pods: string[] = [];

  beforeAll(async () => {
    // The namespace, RBAC and admission policies for real (dry-run objects in a namespace need the namespace to exist).
    await applyAccessControl();
  });

  afterAll(async () => {
    await s?.destroy();
    for (const pod of pods) await plane.deletePod(NAMESPACE, pod);
  });

  it('passes kubectl apply --dry-run=server with strict validation, every object', async () => {
    const { stdout } = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', MANIFEST]);
    const applied = stdout.split('\n').filter((line) => line.endsWith('(server dry run)'));
    expect(applied).toHaveLength(manifest.length);
    for (const object of manifest) {
      expect(applied.some((line) => line.startsWith(`${object.kind.toLowerCase()}.`) || line.startsWith(`${object.kind.toLowerCase()}/`))).toBe(true);
    }
  });

  describe('with the ServiceAccounts of the manifest', () => {
    let agentKc: k8s.KubeConfig;
    let controllerKc: k8s.KubeConfig;
    const tokens: string[] = [];

    beforeAll(async () => {
      // Each agent's token names its node, as the projected token of a DaemonSet pod does.
      const agentToken = async (nodeName: string): Promise<string> => {
        const { token, pod } = await plane.podBoundToken(NAMESPACE, 'eps-probe-agent', nodeName);
        pods.push(pod);
        tokens.push(token);
        return token;
      };
      const controllerToken = await plane.tokenFor(NAMESPACE, 'eps-probe-controller');
      tokens.push(controllerToken);
      s = await createScenario({
        name: 'dep',
        subnet: '10.233.50.0/24',
        pods: 2,
        nodes: 1,
        config: CONFIG,
        controlPlane: controlPlaneState(),
        tokens: { agent: agentToken, controller: controllerToken },
        configNamespace: NAMESPACE,
      });
      agentKc = await serviceAccountConfig(NAMESPACE, 'eps-probe-agent');
      controllerKc = await serviceAccountConfig(NAMESPACE, 'eps-probe-controller');
      s.startAgent('n1');
      s.startController('c1');
      await until('the first report', async () => (await s!.report('n1'))?.targetsProbed === 2);
    });

    /** Log lines of every process that mention a refused request. */
    const forbidden = (): string[] =>
      [...s!.agents.values(), ...s!.controllers.values()].flatMap((p) => p.logs.map((line) => JSON.stringify(line)).filter((line) => /forbidden|\b403\b/i.test(line)));

    it('prunes a cut pod and restores it, and records Events, refused nothing', async () => {
      await s!.topology.cutPod('p1');
      await expect.poll(() => s!.sliceAddresses(), { timeout: 10_000, interval: 100 }).toEqual([s!.pods.p2]);
      expect(await s!.disconnected()).toBe(s!.pods.p1);
      await s!.topology.restorePod('p1');
      await expect.poll(() => s!.disconnected(), { timeout: 10_000, interval: 100 }).toBe('');
      await expect.poll(async () => (await s!.sliceAddresses()).sort(), { timeout: 5000, interval: 100 }).toEqual([s!.pods.p1, s!.pods.p2].sort());

      const events = await s!.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: s!.namespace });
      expect(events.items.map((e) => e.reason)).toEqual(expect.arrayContaining(['EndpointsDisconnected', 'EndpointsReconnected']));
      expect(forbidden()).toEqual([]);
    });

    it('lets both record Events about a rejected ConfigMap, and the agent about its suspect node', async () => {
      const core = s!.kc.makeApiClient(k8s.CoreV1Api);
      await s!.setConfig(`${CONFIG}\nprobeReplicas: -1`);
      await expect
        .poll(async () => (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: 'reason=ConfigRejected' })).items.map((e) => e.reportingComponent).sort(), { timeout: 10_000 })
        .toEqual(['eps-probe-agent', 'eps-probe-controller']);
      await s!.setConfig(CONFIG);

      // Every target unreachable at once: the node suspects itself (Event in `default`, the report being cluster-scoped).
      await s!.topology.cutPod('p1');
      await s!.topology.cutPod('p2');
      try {
        await expect
          .poll(async () => (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `reason=NodeSuspect,involvedObject.name=${s!.nodeNames.n1}` })).items.length, { timeout: 10_000 })
          .toBeGreaterThan(0);
      } finally {
        await s!.topology.restorePod('p1');
        await s!.topology.restorePod('p2');
      }
      expect(forbidden()).toEqual([]);
    });

    it('never writes a token into its logs or metrics', async () => {
      const logs = [...s!.agents.values(), ...s!.controllers.values()].flatMap((p) => [...p.logs.map((line) => JSON.stringify(line)), ...p.rawOutput]);
      expect(logs.length).toBeGreaterThan(10);
      const metrics = await s!.metrics('n1');
      for (const token of tokens) {
        // A JWT's signature part is unique to the token; none of it may leak.
        const signature = token.split('.')[2]!;
        expect(signature.length).toBeGreaterThan(20);
        expect(logs.filter((line) => line.includes(signature))).toEqual([]);
        expect(metrics.includes(signature)).toBe(false);
      }
      expect(logs.filter((line) => /authorization|bearer/i.test(line))).toEqual([]);
    });

    const report = (): string => s!.nodeNames.n1!;
    const sliceOf = (kc: k8s.KubeConfig): Promise<k8s.V1EndpointSlice> => kc.makeApiClient(k8s.DiscoveryV1Api).readNamespacedEndpointSlice({ namespace: s!.namespace, name: SLICE });
    const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const annotate = { metadata: { annotations: { 'kosmos.io/disconnected-address': '10.233.50.99' } } };
    const reportBody = (name: string) => ({ apiVersion: 'epsprobe.kosmos.io/v1alpha1', kind: 'ProbeReport', metadata: { name }, spec: { nodeName: name, heartbeatTime: new Date().toISOString() } });
    const reports = { group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports' };

    // Not in this table: an agent writing another node's ProbeReport, the controller updating a slice
    // that is not synced. RBAC cannot say that; the admission policies do (test/e2e/admission.test.ts).
    it.each<[string, 'agent' | 'controller', (kc: k8s.KubeConfig) => Promise<unknown>]>([
      ['agent: update an EndpointSlice', 'agent', async (kc) =>
        kc.makeApiClient(k8s.DiscoveryV1Api).replaceNamespacedEndpointSlice({ namespace: s!.namespace, name: SLICE, body: await sliceOf(s!.kc) })],
      ['agent: patch a ServiceImport', 'agent', (kc) =>
        kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace: s!.namespace, plural: 'serviceimports', name: SERVICE, body: annotate }, mergePatch)],
      ['agent: delete a ProbeReport', 'agent', (kc) => kc.makeApiClient(k8s.CustomObjectsApi).deleteClusterCustomObject({ ...reports, name: report() })],
      ['agent: read a ConfigMap other than its own', 'agent', (kc) => kc.makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({ namespace: NAMESPACE, name: 'kube-root-ca.crt' })],
      ['agent: list Secrets', 'agent', (kc) => kc.makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: NAMESPACE })],
      ['agent: write a Lease', 'agent', (kc) =>
        kc.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({ namespace: NAMESPACE, body: { metadata: { name: 'eps-probe-plugin-controller-x' } } })],
      ['controller: delete an EndpointSlice', 'controller', (kc) => kc.makeApiClient(k8s.DiscoveryV1Api).deleteNamespacedEndpointSlice({ namespace: s!.namespace, name: SLICE })],
      ['controller: create an EndpointSlice', 'controller', async (kc) => {
        const { metadata, ...rest } = await sliceOf(s!.kc);
        return kc.makeApiClient(k8s.DiscoveryV1Api).createNamespacedEndpointSlice({ namespace: s!.namespace, body: { ...rest, metadata: { name: `${metadata!.name}-copy` } } });
      }],
      ['controller: create a ProbeReport', 'controller', (kc) => kc.makeApiClient(k8s.CustomObjectsApi).createClusterCustomObject({ ...reports, body: reportBody('dep-forged') })],
      ['controller: patch a ProbeReport', 'controller', (kc) =>
        kc.makeApiClient(k8s.CustomObjectsApi).patchClusterCustomObject({ ...reports, name: report(), body: { spec: { suspect: true } } }, mergePatch)],
      ['controller: delete a ServiceImport', 'controller', (kc) =>
        kc.makeApiClient(k8s.CustomObjectsApi).deleteNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace: s!.namespace, plural: 'serviceimports', name: SERVICE })],
      ['controller: take a Lease outside its namespace', 'controller', (kc) =>
        kc.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({ namespace: s!.namespace, body: { metadata: { name: 'eps-probe-plugin-controller' } } })],
      ['controller: list Secrets', 'controller', (kc) => kc.makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: NAMESPACE })],
    ])('refuses %s (403)', async (_name, identity, request) => {
      await expect(request(identity === 'agent' ? agentKc : controllerKc)).rejects.toMatchObject({ code: 403 });
    });
  });
});
