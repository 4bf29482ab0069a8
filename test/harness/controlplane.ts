// A real kube-apiserver + etcd on loopback, built from the Go module proxy by hack/build-controlplane.sh.
// Modelled on controller-runtime's envtest: generated certs, RBAC on, an admin client certificate,
// service-account signing keys so TokenRequest works. No controller-manager runs.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ControlPlaneOptions {
  /** Extra IP addresses for the serving certificate (e.g. a bridge gateway that forwards to loopback). */
  extraSans?: string[];
  /** etcd compaction interval of the apiserver (e.g. `30s` to provoke 410 Gone in tests). */
  etcdCompactionInterval?: string;
  /** Keep processes running after this Node.js process exits (the command-line `start`). */
  detached?: boolean;
  /** Where data, certs and logs go; a fresh temporary directory when unset. */
  dir?: string;
}

export interface ControlPlaneState {
  dir: string;
  kubeconfig: string;
  server: string;
  apiserverPort: number;
  etcdPort: number;
  etcdPeerPort: number;
  pids: { etcd?: number; apiserver?: number };
}

/** Builds (first run) or finds the cached binaries; prints build progress on stderr. */
export function controlPlaneBinaries(): string {
  const out = execFileSync('bash', [path.join(repoRoot, 'hack/build-controlplane.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop()!;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

/** CA, serving cert (loopback + extra SANs), admin client cert (system:masters), SA key pair. */
async function generateCerts(dir: string, extraSans: string[]): Promise<void> {
  const sans = ['IP:127.0.0.1', 'DNS:localhost', ...extraSans.map((ip) => `IP:${ip}`)].join(',');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=eps-test-ca'], dir);
  await openssl(['req', '-x509', '-CA', 'ca.crt', '-CAkey', 'ca.key', ...ec, '-keyout', 'server.key', '-out', 'server.crt',
    '-days', '30', '-subj', '/CN=kube-apiserver', '-addext', `subjectAltName=${sans}`], dir);
  await openssl(['req', '-x509', '-CA', 'ca.crt', '-CAkey', 'ca.key', ...ec, '-keyout', 'admin.key', '-out', 'admin.crt',
    '-days', '30', '-subj', '/O=system:masters/CN=admin', '-addext', 'extendedKeyUsage=clientAuth'], dir);
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function kubeconfigYaml(server: string, dir: string, user: { certFile?: string; keyFile?: string; token?: string }, tlsServerName?: string): string {
  const ca = readFileSync(path.join(dir, 'ca.crt')).toString('base64');
  const userLines = user.token
    ? `    token: ${user.token}`
    : `    client-certificate-data: ${readFileSync(user.certFile!).toString('base64')}\n    client-key-data: ${readFileSync(user.keyFile!).toString('base64')}`;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    ...(tlsServerName ? [`    tls-server-name: ${tlsServerName}`] : []),
    'users:',
    '- name: user',
    '  user:',
    userLines,
    'contexts:',
    '- name: local',
    '  context: { cluster: local, user: user }',
    'current-context: local',
    '',
  ].join('\n');
}

export class ControlPlane {
  private etcd?: ChildProcess;
  private apiserver?: ChildProcess;

  private constructor(
    readonly state: ControlPlaneState,
    private readonly bin: string,
    private readonly options: ControlPlaneOptions,
  ) {}

  get kubeconfig(): string {
    return this.state.kubeconfig;
  }

  /** A KubeConfig for the admin (system:masters). */
  adminConfig(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.state.kubeconfig);
    return kc;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const bin = controlPlaneBinaries();
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'eps-controlplane-'));
    mkdirSync(dir, { recursive: true });
    await generateCerts(dir, options.extraSans ?? []);
    const [apiserverPort, etcdPort, etcdPeerPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiserverPort}`;
    const kubeconfig = path.join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, dir, { certFile: path.join(dir, 'admin.crt'), keyFile: path.join(dir, 'admin.key') }));
    const state: ControlPlaneState = { dir, kubeconfig, server, apiserverPort, etcdPort, etcdPeerPort, pids: {} };
    const plane = new ControlPlane(state, bin, options);
    if (!options.detached) process.on('exit', plane.killSync);
    try {
      await plane.startEtcd();
      await plane.startApiserver();
      await plane.installCrds();
    } catch (err) {
      plane.killSync();
      throw err;
    }
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state, null, 2));
    return plane;
  }

  private spawnLogged(name: string, args: string[]): ChildProcess {
    const log = openSync(path.join(this.state.dir, `${name}.log`), 'a');
    const child = spawn(path.join(this.bin, name), args, {
      stdio: ['ignore', log, log],
      detached: this.options.detached ?? false,
    });
    if (this.options.detached) child.unref();
    return child;
  }

  async startEtcd(): Promise<void> {
    const { dir, etcdPort, etcdPeerPort } = this.state;
    const client = `http://127.0.0.1:${etcdPort}`;
    const peer = `http://127.0.0.1:${etcdPeerPort}`;
    this.etcd = this.spawnLogged('etcd', [
      '--name=default', `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=default=${peer}`,
      '--unsafe-no-fsync=true', '--log-level=warn',
    ]);
    this.state.pids.etcd = this.etcd.pid;
    await this.waitFor(`${client}/health`, 'etcd', this.etcd);
  }

  async startApiserver(): Promise<void> {
    const { dir, apiserverPort, etcdPort } = this.state;
    const file = (name: string): string => path.join(dir, name);
    this.apiserver = this.spawnLogged('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--secure-port=${apiserverPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
      `--cert-dir=${file('certs')}`, `--tls-cert-file=${file('server.crt')}`, `--tls-private-key-file=${file('server.key')}`,
      `--client-ca-file=${file('ca.crt')}`,
      '--authorization-mode=RBAC', '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      // The endpoint reconciler refuses a loopback advertise address; no in-cluster client needs it here.
      '--endpoint-reconciler-type=none',
      `--service-account-issuer=https://127.0.0.1:${apiserverPort}/`,
      `--service-account-key-file=${file('sa.pub')}`, `--service-account-signing-key-file=${file('sa.key')}`,
      ...(this.options.etcdCompactionInterval ? [`--etcd-compaction-interval=${this.options.etcdCompactionInterval}`] : []),
    ]);
    this.state.pids.apiserver = this.apiserver.pid;
    await this.waitFor(`${this.state.server}/readyz`, 'kube-apiserver', this.apiserver);
    const core = this.adminConfig().makeApiClient(k8s.CoreV1Api);
    await this.poll('default namespace', async () => {
      await core.readNamespace({ name: 'default' });
      return true;
    });
  }

  /**
   * Compacts etcd at its current revision (through its JSON gateway), so that every older
   * resourceVersion is gone: a watch resuming from one gets 410 Gone.
   */
  async compactEtcd(): Promise<void> {
    const base = `http://127.0.0.1:${this.state.etcdPort}/v3/kv`;
    const post = async (path: string, body: unknown): Promise<{ header: { revision: string } }> => {
      const response = await fetch(`${base}/${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`etcd ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as { header: { revision: string } };
    };
    const { header } = await post('range', { key: Buffer.from('/').toString('base64') });
    await post('compaction', { revision: header.revision, physical: true });
  }

  /** Kills one process abruptly (kill -9), as a crash would. */
  async kill(name: 'etcd' | 'apiserver'): Promise<void> {
    const child = name === 'etcd' ? this.etcd : this.apiserver;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  private async waitFor(url: string, name: string, child: ChildProcess): Promise<void> {
    const ca = readFileSync(path.join(this.state.dir, 'ca.crt'));
    const client = url.startsWith('https:') ? https : http;
    await this.poll(`${name} at ${url}`, () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}; see ${this.state.dir}/${name}.log`);
      return new Promise<boolean>((resolve) => {
        const request = client.get(url, { ca, timeout: 1000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        request.on('error', () => resolve(false));
        request.on('timeout', () => {
          request.destroy();
          resolve(false);
        });
      });
    });
  }

  private async poll(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        if (await check()) return;
      } catch (err) {
        if (err instanceof Error && err.message.includes('exited with')) throw err;
        lastError = err;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`timed out waiting for ${what}`, { cause: lastError });
  }

  /** Installs the MCS CRDs and every CRD of our manifest, and waits until they are served. */
  async installCrds(): Promise<void> {
    const files = ['deploy/crds/mcs-serviceimports.yaml', 'deploy/crds/mcs-serviceexports.yaml', 'deploy/eps-probe-plugin.yaml'];
    const crds = files
      .flatMap((file) => parseAllDocuments(readFileSync(path.join(repoRoot, file), 'utf8')).map((doc) => doc.toJS()))
      .filter((doc): doc is k8s.V1CustomResourceDefinition => doc?.kind === 'CustomResourceDefinition');
    const api = this.adminConfig().makeApiClient(k8s.ApiextensionsV1Api);
    for (const crd of crds) {
      try {
        await api.createCustomResourceDefinition({ body: crd });
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
    }
    for (const crd of crds) {
      await this.poll(`CRD ${crd.metadata!.name} established`, async () => {
        const current = await api.readCustomResourceDefinition({ name: crd.metadata!.name! });
        return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      });
      // A new resource's watch cache answers 429 until it has initialised; tests start after that.
      const version = crd.spec.versions.find((v) => v.storage)!.name;
      const watch = new k8s.Watch(this.adminConfig());
      await this.poll(`watch of ${crd.metadata!.name}`, async () => {
        const request = await watch.watch(`/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}`, {}, () => undefined, () => undefined);
        request.abort();
        return true;
      });
    }
  }

  /**
   * Mints a token for a ServiceAccount (created if missing) through the TokenRequest API, bound to
   * `boundObjectRef` when given.
   */
  async tokenFor(namespace: string, serviceAccount: string, boundObjectRef?: k8s.V1BoundObjectReference): Promise<string> {
    const core = this.adminConfig().makeApiClient(k8s.CoreV1Api);
    try {
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
    const response = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef } },
    });
    const token = response.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    return token;
  }

  /**
   * The token a pod of `serviceAccount` running on `nodeName` gets from its kubelet: a TokenRequest
   * bound to a Pod whose spec.nodeName is set, so that it carries the user extra
   * `authentication.kubernetes.io/node-name`. The Pod (in `namespace`) is only created, never run (no
   * kubelet); remove it with `deletePod`, which also revokes the token.
   */
  async podBoundToken(namespace: string, serviceAccount: string, nodeName: string): Promise<{ token: string; pod: string }> {
    const core = this.adminConfig().makeApiClient(k8s.CoreV1Api);
    const pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { generateName: `${serviceAccount}-` },
        spec: { nodeName, serviceAccountName: serviceAccount, containers: [{ name: 'main', image: 'not-run.invalid/none' }] },
      },
    });
    const name = pod.metadata!.name!;
    const token = await this.tokenFor(namespace, serviceAccount, { kind: 'Pod', apiVersion: 'v1', name, uid: pod.metadata!.uid });
    return { token, pod: name };
  }

  /** Deletes a Pod at once (no kubelet confirms a graceful deletion here). */
  async deletePod(namespace: string, name: string): Promise<void> {
    const core = this.adminConfig().makeApiClient(k8s.CoreV1Api);
    try {
      await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /**
   * Writes a kubeconfig that authenticates with a token. `server` overrides the address (for a process
   * in a network namespace reaching a forwarder); the certificate is then checked against `localhost`.
   */
  writeTokenKubeconfig(token: string, file: string, server?: { host: string; port: number }): string {
    const url = server ? `https://${server.host}:${server.port}` : this.state.server;
    writeFileSync(file, kubeconfigYaml(url, this.state.dir, { token }, server ? 'localhost' : undefined), { mode: 0o600 });
    return file;
  }

  /** A kubeconfig with the admin identity that a process in a network namespace can use. */
  writeAdminKubeconfigVia(file: string, server: { host: string; port: number }): string {
    const dir = this.state.dir;
    writeFileSync(
      file,
      kubeconfigYaml(`https://${server.host}:${server.port}`, dir, { certFile: path.join(dir, 'admin.crt'), keyFile: path.join(dir, 'admin.key') }, 'localhost'),
      { mode: 0o600 },
    );
    return file;
  }

  private readonly killSync = (): void => {
    for (const child of [this.apiserver, this.etcd]) {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };

  async stop(): Promise<void> {
    process.off('exit', this.killSync);
    await this.kill('apiserver');
    await this.kill('etcd');
    if (!this.options.dir) rmSync(this.state.dir, { recursive: true, force: true });
  }

  /** A handle on a running control plane (another process started it) for its admin helpers. */
  static attach(state: ControlPlaneState): ControlPlane {
    return new ControlPlane(state, '', { detached: true });
  }

  /** Stops a detached control plane started by another process (the command-line `stop`). */
  static stopDetached(state: ControlPlaneState): void {
    for (const pid of [state.pids.apiserver, state.pids.etcd]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(state.dir, { recursive: true, force: true });
  }
}
