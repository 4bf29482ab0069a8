// The admission policies of deploy/eps-probe-plugin.yaml on the real apiserver, applied with the
// manifest's RBAC, met with real pod-bound tokens of the manifest's ServiceAccounts: an agent writes
// only its own node's report, the controller updates only synced multi-cluster EndpointSlices.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_GROUP, REPORT_KIND, REPORT_PLURAL, REPORT_VERSION, type ProbeReport } from '../../src/contract/probe-report.js';
import { adminConfig, controlPlaneState, freshNamespace, tokenConfig } from '../harness/cluster.js';
import { ControlPlane } from '../harness/controlplane.js';
import { makeEndpointSlice } from '../harness/fixtures.js';
import { MANIFEST_NAMESPACE, applyAccessControl } from '../harness/manifest.js';
import { startCli } from '../harness/processes.js';
import { until } from '../harness/wait.js';

const AGENT_POLICY = 'eps-probe-agent-own-report';
const CONTROLLER_POLICY = 'eps-probe-controller-synced-slices';
const reports = { group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL };
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function reportBody(name: string, nodeName = name): ProbeReport {
  return {
    apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`,
    kind: REPORT_KIND,
    metadata: { name },
    spec: {
      nodeName, agentVersion: 'test', heartbeatTime: new Date().toISOString(), heartbeatPeriodSeconds: 30, configVersion: 'default',
      probeReplicas: 0, targetsProbed: 0, unreachableCount: 0, suspect: false, serviceImports: [],
    },
  };
}

/** A client-node error's HTTP status and the apiserver's message. */
async function refusal(request: Promise<unknown>): Promise<{ code?: number; message: string }> {
  try {
    await request;
  } catch (err) {
    const { code, body } = err as { code?: number; body?: string };
    return { code, message: (JSON.parse(body ?? '{}') as { message?: string }).message ?? '' };
  }
  throw new Error('the request was allowed');
}

describe('admission policies of the manifest', () => {
  const plane = ControlPlane.attach(controlPlaneState());
  const admin = adminConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const suffix = randomBytes(3).toString('hex');
  /** Nodes that exist, and a name that is none. */
  const nodeA = `trst-a-${suffix}`;
  const nodeB = `trst-b-${suffix}`;
  const noNode = `trst-none-${suffix}`;
  const pods: string[] = [];
  let namespace: string;
  /** The agent's token of a pod on nodeA; the same ServiceAccount's token bound to no pod; the controller's of a pod on nodeB. */
  let agentA: k8s.CustomObjectsApi;
  let agentUnbound: k8s.CustomObjectsApi;
  let controller: k8s.DiscoveryV1Api;

  async function podToken(serviceAccount: string, nodeName: string): Promise<string> {
    const { token, pod } = await plane.podBoundToken(MANIFEST_NAMESPACE, serviceAccount, nodeName);
    pods.push(pod);
    return token;
  }

  beforeAll(async () => {
    await applyAccessControl();
    for (const name of [nodeA, nodeB]) await core.createNode({ body: { metadata: { name } } });
    agentA = tokenConfig(await podToken('eps-probe-agent', nodeA)).makeApiClient(k8s.CustomObjectsApi);
    agentUnbound = tokenConfig(await plane.tokenFor(MANIFEST_NAMESPACE, 'eps-probe-agent')).makeApiClient(k8s.CustomObjectsApi);
    controller = tokenConfig(await podToken('eps-probe-controller', nodeB)).makeApiClient(k8s.DiscoveryV1Api);
    namespace = await freshNamespace('trst');
    // The apiserver loads new policies asynchronously: wait until the agent's is in force.
    await until('the agent policy in force', async () => {
      const { message } = await refusal(agentUnbound.createClusterCustomObject({ ...reports, body: reportBody(`trst-probe-${suffix}`) })).catch(() => ({ message: '' }));
      return message.includes(AGENT_POLICY);
    });
  });

  afterAll(async () => {
    const custom = admin.makeApiClient(k8s.CustomObjectsApi);
    // Reports the tests create, and those a failing test may have let through.
    for (const name of [nodeA, nodeB, noNode, `${nodeB}-2`, `trst-probe-${suffix}`]) {
      await custom.deleteClusterCustomObject({ ...reports, name }).catch(() => undefined);
    }
    for (const pod of pods) await plane.deletePod(MANIFEST_NAMESPACE, pod);
    for (const name of [nodeA, nodeB]) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("lets an agent create and update its own node's report", async () => {
    await agentA.createClusterCustomObject({ ...reports, body: reportBody(nodeA) });
    const heartbeatTime = new Date(Date.now() + 1000).toISOString();
    const updated = (await agentA.patchClusterCustomObject({ ...reports, name: nodeA, body: { spec: { heartbeatTime, unreachableCount: 1 } } }, mergePatch)) as ProbeReport;
    expect(updated.spec).toMatchObject({ nodeName: nodeA, heartbeatTime, unreachableCount: 1 });
  });

  it("refuses an agent another node's report, to create or to update", async () => {
    await admin.makeApiClient(k8s.CustomObjectsApi).createClusterCustomObject({ ...reports, body: reportBody(nodeB) });
    const created = await refusal(agentA.createClusterCustomObject({ ...reports, body: reportBody(`${nodeB}-2`) }));
    expect(created).toMatchObject({ code: 403, message: expect.stringContaining(AGENT_POLICY) });
    const patched = await refusal(agentA.patchClusterCustomObject({ ...reports, name: nodeB, body: { spec: { suspect: true } } }, mergePatch));
    expect(patched).toMatchObject({ code: 403, message: expect.stringContaining(`the agent on node ${nodeA} may write only the ProbeReport named ${nodeA}, not ${nodeB}`) });
  });

  it('refuses an agent a report named after no Node (its token names its own node)', async () => {
    const { code, message } = await refusal(agentA.createClusterCustomObject({ ...reports, body: reportBody(noNode) }));
    expect({ code, message }).toMatchObject({ code: 403, message: expect.stringContaining(`not ${noNode}`) });
  });

  it('refuses an agent a spec.nodeName other than the report name, on create and on update', async () => {
    const created = await refusal(agentA.createClusterCustomObject({ ...reports, body: reportBody(`${nodeA}`, nodeB) }));
    expect(created).toMatchObject({ code: 403, message: expect.stringContaining(AGENT_POLICY) });
    const patched = await refusal(agentA.patchClusterCustomObject({ ...reports, name: nodeA, body: { spec: { nodeName: nodeB } } }, mergePatch));
    expect(patched).toMatchObject({ code: 403, message: expect.stringContaining(`spec.nodeName of ProbeReport ${nodeA} must be ${nodeA}`) });
  });

  it('refuses the agent ServiceAccount a token that names no node', async () => {
    const { code, message } = await refusal(agentUnbound.patchClusterCustomObject({ ...reports, name: nodeA, body: { spec: { suspect: true } } }, mergePatch));
    expect({ code, message }).toMatchObject({ code: 403, message: expect.stringContaining('names no node') });
  });

  it('stops an agent whose first report the policy refuses, with one fatal line naming the policy and the fix', async () => {
    // The ServiceAccount's token bound to no pod names no node: every report write is refused.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eps-trst-'));
    try {
      const kubeconfig = plane.writeTokenKubeconfig(await plane.tokenFor(MANIFEST_NAMESPACE, 'eps-probe-agent'), path.join(dir, 'agent.kubeconfig'));
      const agent = startCli(['agent', '--kubeconfig', kubeconfig, '--identity', nodeA, '--namespace', MANIFEST_NAMESPACE, '--metrics-port', '0', '--metrics-host', '127.0.0.1']);
      const code = await new Promise<number | null>((resolve) => agent.child.once('exit', resolve));
      expect(code).toBe(1);
      const fatal = agent.logs.filter((line) => line.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(agent.logs.at(-1)).toBe(fatal[0]);
      expect(fatal[0]).toMatchObject({
        cause: expect.stringMatching(new RegExp(`admission policy refuses this agent's ProbeReport ${nodeA}: .*${AGENT_POLICY}`)),
        fix: expect.stringContaining('bound to the pod'),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an agent to delete any report, even its own (RBAC)', async () => {
    for (const name of [nodeA, nodeB]) {
      const { code, message } = await refusal(agentA.deleteClusterCustomObject({ ...reports, name }));
      expect({ code, message }).toMatchObject({ code: 403, message: expect.stringContaining('cannot delete resource') });
    }
  });

  describe('the controller and EndpointSlices', () => {
    const discovery = (): k8s.DiscoveryV1Api => admin.makeApiClient(k8s.DiscoveryV1Api);
    /** The controller's kind of write: a full update with one endpoint fewer. */
    async function pruneOne(name: string, change: (slice: k8s.V1EndpointSlice) => void = () => undefined): Promise<k8s.V1EndpointSlice> {
      const slice = await discovery().readNamespacedEndpointSlice({ namespace, name });
      slice.endpoints = (slice.endpoints ?? []).slice(1);
      change(slice);
      return controller.replaceNamespacedEndpointSlice({ namespace, name, body: slice });
    }

    beforeAll(async () => {
      const addresses = ['10.233.20.2', '10.233.20.3', '10.233.20.4'];
      for (const style of ['kosmos', 'kep1645', 'plain'] as const) {
        await discovery().createNamespacedEndpointSlice({ namespace, body: makeEndpointSlice({ name: `web-${style}`, namespace, service: 'web', addresses, style }) });
      }
      await until('the controller policy in force', async () => {
        const { message } = await refusal(pruneOne('web-plain')).catch(() => ({ message: '' }));
        return message.includes(CONTROLLER_POLICY);
      });
    });

    it.each(['kosmos', 'kep1645'])('lets the controller update a synced slice (%s)', async (style) => {
      const updated = await pruneOne(`web-${style}`);
      expect((updated.endpoints ?? []).flatMap((e) => e.addresses)).toEqual(['10.233.20.3', '10.233.20.4']);
    });

    it('refuses the controller a slice of an ordinary Service', async () => {
      const { code, message } = await refusal(pruneOne('web-plain'));
      expect({ code, message }).toMatchObject({ code: 403, message: expect.stringContaining(CONTROLLER_POLICY) });
    });

    it("refuses the controller to remove a synced slice's marker", async () => {
      const { code, message } = await refusal(pruneOne('web-kosmos', (slice) => delete slice.metadata!.annotations!['kosmos.io/service-import']));
      expect({ code, message }).toMatchObject({ code: 403, message: expect.stringContaining(CONTROLLER_POLICY) });
    });
  });
});
