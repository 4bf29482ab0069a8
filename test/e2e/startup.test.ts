// Start-up and shut-down of the real CLI (agent and controller) against a real apiserver: every way
// start-up can fail ends in one fatal JSON line naming the cause and the fix and exit status 1;
// SIGTERM ends the process with 0 within a second at every stage, also while start-up waits; /healthz
// fails when a watch stays dead. Cases that need a cluster without the ServiceImport CRD run on a
// control plane of their own, so that the shared one keeps its CRDs for the other files.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConfig, controlPlaneState, freshNamespace } from '../harness/cluster.js';
import { ControlPlane, freePort } from '../harness/controlplane.js';
import { startCli, type RunningProcess } from '../harness/processes.js';

/** SIGTERM must end the process within this (the kubelet's grace period is far longer; 1 s is the promise). */
const SIGTERM_EXIT_MS = 1000;

type Role = 'agent' | 'controller';

interface Started {
  process: RunningProcess;
  exited: Promise<number | null>;
}

/**
 * `namespace` (of the ConfigMap and the Lease) must exist where start-up is to succeed; `metricsPort`
 * null leaves the flag out (METRICS_PORT or the default applies).
 */
function start(role: Role, kubeconfig: string, options: { namespace?: string; env?: Record<string, string>; metricsPort?: number | null } = {}): Started {
  const port = options.metricsPort === null ? [] : ['--metrics-port', String(options.metricsPort ?? 0)];
  const cli = startCli(
    [role, '--kubeconfig', kubeconfig, '--identity', `boot-${role}-${Math.random().toString(16).slice(2, 8)}`, '--namespace', options.namespace ?? 'default',
      '--metrics-host', '127.0.0.1', ...port],
    { env: options.env, host: role },
  );
  const exited = new Promise<number | null>((resolve) => cli.child.once('exit', (code) => resolve(code)));
  return { process: cli, exited };
}

/** The process exits with `code` (1) after exactly one fatal line, its last, with `cause` and `fix`; no raw output. */
async function expectFatal(started: Started, expected: { cause: RegExp; fix: RegExp; code?: number }): Promise<void> {
  expect(await started.exited).toBe(expected.code ?? 1);
  const { logs, rawOutput } = started.process;
  expect(rawOutput).toEqual([]);
  const fatal = logs.filter((line) => line.level === 'fatal');
  expect(fatal).toHaveLength(1);
  expect(logs.at(-1)).toBe(fatal[0]);
  expect(fatal[0]).toMatchObject({ cause: expect.stringMatching(expected.cause), fix: expect.stringMatching(expected.fix) });
  expect(fatal[0]!.msg).toMatch(/^(agent|controller) cannot start: /);
}

/** Waits for a log line (if given), sends SIGTERM, and expects exit status 0 within SIGTERM_EXIT_MS. */
async function expectSigtermExit(started: Started, waitingFor?: (line: Record<string, unknown>) => boolean): Promise<void> {
  if (waitingFor) await expect.poll(() => started.process.logs.some(waitingFor), { timeout: 30_000, interval: 20 }).toBe(true);
  const sent = performance.now();
  started.process.child.kill('SIGTERM');
  const code = await started.exited;
  const tookMs = performance.now() - sent;
  expect(code).toBe(0);
  expect(tookMs).toBeLessThan(SIGTERM_EXIT_MS);
  expect(started.process.rawOutput).toEqual([]);
  expect(started.process.logs.filter((line) => line.level === 'fatal')).toEqual([]);
}

const retrying = (line: Record<string, unknown>): boolean => typeof line.msg === 'string' && line.msg.includes('retrying');

let scratch: string;
const running: Started[] = [];

function track(started: Started): Started {
  running.push(started);
  return started;
}

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'eps-boot-'));
});

afterAll(async () => {
  await Promise.all(running.map(({ process }) => process.kill()));
  rmSync(scratch, { recursive: true, force: true });
});

describe('start-up failures that need no apiserver', () => {
  it.each(['agent', 'controller'] as const)('%s: a kubeconfig path that does not exist', async (role) => {
    const started = track(start(role, path.join(scratch, 'missing.kubeconfig')));
    await expectFatal(started, { cause: /cannot load the kubeconfig .*missing\.kubeconfig: ENOENT/, fix: /--kubeconfig/ });
  });

  it.each<{ name: string; env: Record<string, string>; cause: RegExp }>([
    { name: 'not a number', env: { EPS_LEASE_DURATION_MS: 'abc' }, cause: /EPS_LEASE_DURATION_MS must be a positive whole number of milliseconds, got "abc"/ },
    { name: 'zero', env: { EPS_LEASE_RETRY_PERIOD_MS: '0' }, cause: /EPS_LEASE_RETRY_PERIOD_MS must be a positive/ },
    { name: 'renew deadline not below the duration', env: { EPS_LEASE_RENEW_DEADLINE_MS: '20000' }, cause: /must satisfy EPS_LEASE_RETRY_PERIOD_MS < EPS_LEASE_RENEW_DEADLINE_MS < EPS_LEASE_DURATION_MS/ },
  ])('controller: a bad EPS_LEASE_* value ($name)', async ({ env, cause }) => {
    const started = track(start('controller', controlPlaneState().kubeconfig, { env }));
    await expectFatal(started, { cause, fix: /remove/ });
  });

  it.each(['agent', 'controller'] as const)('%s: a bad METRICS_PORT (exit status 2, as for bad flags)', async (role) => {
    const started = track(start(role, controlPlaneState().kubeconfig, { env: { METRICS_PORT: '94x64' }, metricsPort: null }));
    await expectFatal(started, { cause: /METRICS_PORT\) must be a port number, got "94x64"/, fix: /--help/, code: 2 });
  });

  it.each(['agent', 'controller'] as const)('%s: the metrics port is in use', async (role) => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = holder.address() as net.AddressInfo;
      const started = track(start(role, controlPlaneState().kubeconfig, { metricsPort: port }));
      await expectFatal(started, { cause: new RegExp(`127\\.0\\.0\\.1:${port}: the port is in use \\(EADDRINUSE\\)`), fix: /--metrics-port/ });
    } finally {
      holder.close();
    }
  });
});

describe('start-up against the shared apiserver', () => {
  let namespace: string;
  const plane = (): ControlPlane => ControlPlane.attach(controlPlaneState());

  beforeAll(async () => {
    namespace = await freshNamespace('boot');
  });

  async function tokenKubeconfig(serviceAccount: string): Promise<string> {
    return plane().writeTokenKubeconfig(await plane().tokenFor(namespace, serviceAccount), path.join(scratch, `${serviceAccount}.kubeconfig`));
  }

  it.each(['agent', 'controller'] as const)('%s: RBAC denies everything (a ServiceAccount without roles)', async (role) => {
    const started = track(start(role, await tokenKubeconfig(`nobody-${role}`), { namespace }));
    await expectFatal(started, {
      cause: new RegExp(`system:serviceaccount:${namespace}:nobody-${role} may not list configmaps in namespace ${namespace} \\(403 Forbidden\\)`),
      fix: new RegExp(`grant ServiceAccount ${namespace}/nobody-${role} "list" on configmaps in namespace ${namespace}: bind a Role`),
    });
  });

  it('agent: RBAC lacks its ClusterRole (the manifest\'s ServiceAccount name, its namespaced Role only)', async () => {
    const rbac = adminConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: 'eps-probe-agent' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'eps-probe-agent' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'eps-probe-agent' },
        subjects: [{ kind: 'ServiceAccount', name: 'eps-probe-agent', namespace }],
      },
    });
    const started = track(start('agent', await tokenKubeconfig('eps-probe-agent'), { namespace }));
    await expectFatal(started, {
      cause: /may not list (serviceimports\.multicluster\.x-k8s\.io|endpointslices\.discovery\.k8s\.io|probereports\.epsprobe\.kosmos\.io) cluster-wide \(403 Forbidden\)/,
      fix: /deploy\/eps-probe-plugin\.yaml does so with the ClusterRole eps-probe-agent and its ClusterRoleBinding/,
    });
  });

  it('controller: the namespace of its Lease does not exist', async () => {
    const started = track(start('controller', controlPlaneState().kubeconfig, { namespace: `${namespace}-missing` }));
    await expectFatal(started, { cause: new RegExp(`namespace ${namespace}-missing does not exist \\(404 Not Found on read/write Lease`), fix: /--namespace/ });
  });

  it.each(['agent', 'controller'] as const)('%s: the apiserver rejects its token (401)', async (role) => {
    const kubeconfig = plane().writeTokenKubeconfig('not-a-token', path.join(scratch, `bogus-${role}.kubeconfig`));
    const started = track(start(role, kubeconfig, { namespace }));
    await expectFatal(started, { cause: /rejects this process's credentials \(401 Unauthorized\)/, fix: /token/ });
  });

  it.each(['agent', 'controller'] as const)('%s: SIGTERM while start-up retries a 403', async (role) => {
    const started = track(start(role, await tokenKubeconfig(`waiting-${role}`), { namespace }));
    await expectSigtermExit(started, retrying);
  });

  it.each(['agent', 'controller'] as const)('%s: SIGTERM while the apiserver refuses connections', async (role) => {
    const closedPort = await freePort();
    const kubeconfig = plane().writeTokenKubeconfig('unused', path.join(scratch, `refused-${role}.kubeconfig`), { host: '127.0.0.1', port: closedPort });
    const started = track(start(role, kubeconfig, { namespace }));
    await expectSigtermExit(started, (line) => retrying(line) && String(line.cause).includes('ECONNREFUSED'));
  });

  it.each(['agent', 'controller'] as const)('%s: SIGTERM while waiting for an apiserver that never answers (caches not synced)', async (role) => {
    // Accepts connections and never says a word: the first list hangs (client-node sets no timeout).
    const connections = new Set<net.Socket>();
    const silent = net.createServer((socket) => connections.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const kubeconfig = plane().writeTokenKubeconfig('unused', path.join(scratch, `silent-${role}.kubeconfig`), { host: '127.0.0.1', port });
      const metricsPort = await freePort();
      const started = track(start(role, kubeconfig, { namespace, metricsPort }));
      const readyz = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).text().catch(() => '');
      await expect.poll(readyz, { timeout: 15_000 }).toBe(`${role}: caches not synced\n`);
      await expectSigtermExit(started);
    } finally {
      for (const socket of connections) socket.destroy();
      silent.close();
    }
  });

  it('controller: SIGTERM on a standby (waiting for leadership) and on the leader', async () => {
    const leaderPort = await freePort();
    const standbyPort = await freePort();
    const leader = track(start('controller', controlPlaneState().kubeconfig, { namespace, metricsPort: leaderPort }));
    await expect.poll(() => leader.process.logs.some((line) => line.msg === 'became leader'), { timeout: 30_000 }).toBe(true);
    const standby = track(start('controller', controlPlaneState().kubeconfig, { namespace, metricsPort: standbyPort }));
    const ready = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
    await expect.poll(() => ready(standbyPort).catch(() => 0), { timeout: 30_000 }).toBe(200);
    expect(standby.process.logs.some((line) => line.msg === 'became leader')).toBe(false);
    await expectSigtermExit(standby);
    await expectSigtermExit(leader);
    expect(leader.process.logs).toContainEqual(expect.objectContaining({ msg: 'leader lease released' }));
  });
});

describe('on a control plane of its own, without the ServiceImport CRD', () => {
  let own: ControlPlane;
  let kubeconfig: string;

  beforeAll(async () => {
    own = await ControlPlane.start();
    kubeconfig = own.kubeconfig;
  });

  afterAll(async () => {
    await own?.stop();
  });

  const crds = (): k8s.ApiextensionsV1Api => own.adminConfig().makeApiClient(k8s.ApiextensionsV1Api);

  async function deleteCrd(name: string): Promise<void> {
    await crds().deleteCustomResourceDefinition({ name });
    await expect.poll(async () => crds().readCustomResourceDefinition({ name }).then(() => 'present', () => 'gone'), { timeout: 30_000 }).toBe('gone');
  }

  it('/healthz fails once a watch has been dead past the limit (its CRD deleted mid-run)', async () => {
    const ports = { agent: await freePort(), controller: await freePort() };
    const env = { EPS_LIVENESS_WATCH_MS: '3000' };
    const agent = track(start('agent', kubeconfig, { env, metricsPort: ports.agent }));
    const controller = track(start('controller', kubeconfig, { env, metricsPort: ports.controller }));
    const get = async (port: number, path: string): Promise<{ status: number; body: string }> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    for (const port of Object.values(ports)) {
      await expect.poll(() => get(port, '/readyz').then((r) => r.status, () => 0), { timeout: 30_000 }).toBe(200);
      expect(await get(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    }
    await deleteCrd('serviceimports.multicluster.x-k8s.io');
    for (const port of Object.values(ports)) {
      await expect.poll(() => get(port, '/healthz'), { timeout: 30_000 }).toEqual({
        status: 503,
        body: expect.stringMatching(/^watches: watch of serviceimports without an answer from the apiserver for \d+s \(limit 3s\); last error: the apiserver does not serve \/apis\/multicluster\.x-k8s\.io\/v1alpha1\/serviceimports \(404 Not Found\)\n$/),
      });
    }
    // Still alive and stoppable: SIGTERM exits 0.
    await expectSigtermExit(agent);
    await expectSigtermExit(controller);
  });

  it.each(['agent', 'controller'] as const)('%s: the MCS group is served but has no serviceimports resource', async (role) => {
    const started = track(start(role, kubeconfig));
    await expectFatal(started, {
      cause: /serves multicluster\.x-k8s\.io \(v1alpha1\) but no serviceimports resource/,
      fix: /install the ServiceImport CRD/,
    });
    expect(started.process.logs.filter(retrying)).toHaveLength(2);
  });

  it.each(['agent', 'controller'] as const)('%s: SIGTERM while start-up waits for the ServiceImport CRD', async (role) => {
    const started = track(start(role, kubeconfig));
    await expectSigtermExit(started, retrying);
  });

  it.each(['agent', 'controller'] as const)('%s: the MCS group is not served at all', async (role) => {
    if ((await crds().listCustomResourceDefinition()).items.some((crd) => crd.metadata?.name === 'serviceexports.multicluster.x-k8s.io')) {
      await deleteCrd('serviceexports.multicluster.x-k8s.io');
    }
    const started = track(start(role, kubeconfig));
    await expectFatal(started, {
      cause: /does not serve the API group multicluster\.x-k8s\.io/,
      fix: /install the MCS CRDs/,
    });
  });
});
