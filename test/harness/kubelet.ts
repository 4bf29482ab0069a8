// The manifest's pods as containers of the built image, run with podman the way a kubelet with
// containerd runs them: the pod's and the container's securityContext, env (downward API),
// command/args and limits from deploy/eps-probe-plugin.yaml translated to podman flags (anything
// without a translation here throws, so manifest and tests cannot drift apart), the ServiceAccount
// token where in-cluster clients look for it, the kubelet's KUBERNETES_SERVICE_* variables, and the
// capability sets containerd gives a non-root process.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { superviseProcess, type RunningProcess } from './processes.js';
import type { Topology } from './topology.js';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MANIFEST = path.join(repoRoot, 'deploy/eps-probe-plugin.yaml');
/** podman's settings for this machine kind: runc, cgroupfs, ulimits within the hard limits. */
const PODMAN_ENV = { ...process.env, CONTAINERS_CONF: path.join(repoRoot, 'hack/containers.conf') };
/** Containers carrying this annotation get Kubernetes' capability sets (see Kubelet). */
const CAPABILITY_SETS_ANNOTATION = 'io.kosmos.eps-probe.capability-sets';
/** The projected ServiceAccount volume of every pod. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Builds the image with hack/build-image.sh (installs podman and builds the local base on first use;
 * the layer cache makes later builds quick) and returns its name.
 */
export function buildImage(name: string): string {
  execFileSync('bash', [path.join(repoRoot, 'hack/build-image.sh')], { env: { ...process.env, IMAGE: name }, stdio: ['ignore', 'ignore', 'inherit'] });
  return name;
}

/** Runs podman with this machine's settings; rejects with its stderr. */
export async function podman(args: string[]): Promise<string> {
  try {
    return (await run('podman', args, { env: PODMAN_ENV, maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    throw new Error(`podman ${args.join(' ')} failed: ${((err as { stderr?: string }).stderr ?? '').trim()}`, { cause: err });
  }
}

const RBAC_KINDS = new Set(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/** Applies the manifest's namespace, ServiceAccounts and RBAC (server-side apply, so again and again). */
export async function applyManifestRbac(admin: k8s.KubeConfig): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(admin);
  for (const object of parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((doc) => doc.toJS() as k8s.KubernetesObject)) {
    if (RBAC_KINDS.has(object.kind!)) await client.patch(object, undefined, undefined, 'eps-kubelet', true, k8s.PatchStrategy.ServerSideApply);
  }
}

/**
 * The limits and memory use of a container's process, read from its cgroups on the host (v1
 * controllers or v2): memory in bytes, CPU in cores (Infinity without a quota).
 */
export function containerCgroup(pid: number): { memory: { limit: number; usage: number; peak: number }; cpus: number } {
  const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').map((line) => line.split(':'));
  const v1 = (controller: string): string | undefined => {
    const line = cgroups.find(([, controllers]) => controllers?.split(',').includes(controller));
    return line && `/sys/fs/cgroup/${line[1]}${line[2]}`;
  };
  const v2 = `/sys/fs/cgroup${cgroups.find(([id]) => id === '0')?.[2] ?? ''}`;
  const read = (dir: string, file: string): string => readFileSync(path.join(dir, file), 'utf8').trim();
  const memoryDir = v1('memory');
  const cpuDir = v1('cpu');
  if (memoryDir && cpuDir) {
    const quota = Number(read(cpuDir, 'cpu.cfs_quota_us'));
    return {
      memory: { limit: Number(read(memoryDir, 'memory.limit_in_bytes')), usage: Number(read(memoryDir, 'memory.usage_in_bytes')), peak: Number(read(memoryDir, 'memory.max_usage_in_bytes')) },
      cpus: quota < 0 ? Infinity : quota / Number(read(cpuDir, 'cpu.cfs_period_us')),
    };
  }
  const [quota, period] = read(v2, 'cpu.max').split(' ');
  return {
    memory: { limit: Number(read(v2, 'memory.max')), usage: Number(read(v2, 'memory.current')), peak: Number(read(v2, 'memory.peak')) },
    cpus: quota === 'max' ? Infinity : Number(quota) / Number(period),
  };
}

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  seccompProfile?: { type: string };
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
}

export interface ManifestContainer {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { limits?: { cpu?: string; memory?: string } };
  securityContext?: SecurityContext;
}

/** The pod template of a workload of the manifest, with its one container. */
export interface ManifestPod {
  namespace: string;
  serviceAccountName: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: SecurityContext;
  container: ManifestContainer;
}

const POD_SECURITY_KEYS = new Set(['runAsNonRoot', 'runAsUser', 'runAsGroup', 'seccompProfile']);
const CONTAINER_SECURITY_KEYS = new Set([...POD_SECURITY_KEYS, 'allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'capabilities']);
/** Pod fields translated here, and those that change nothing for one container here (scheduling). */
const POD_FIELDS = new Set(['serviceAccountName', 'terminationGracePeriodSeconds', 'securityContext', 'containers',
  'tolerations', 'topologySpreadConstraints', 'affinity', 'nodeSelector', 'priorityClassName']);
/** Container fields translated here, and those that change nothing here (the kubelet's probes, ports in the pod's network). */
const CONTAINER_FIELDS = new Set(['name', 'command', 'args', 'env', 'resources', 'securityContext',
  'image', 'imagePullPolicy', 'ports', 'livenessProbe', 'readinessProbe', 'startupProbe', 'terminationMessagePolicy']);

export function manifestPod(kind: 'DaemonSet' | 'Deployment'): ManifestPod {
  const objects = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((doc) => doc.toJS());
  const workload = objects.find((o) => o?.kind === kind);
  if (!workload) throw new Error(`no ${kind} in ${MANIFEST}`);
  const spec = workload.spec.template.spec;
  if (spec.containers.length !== 1) throw new Error(`${kind}: expected exactly one container`);
  const untranslated = [
    ...Object.keys(spec).filter((key) => !POD_FIELDS.has(key)),
    ...Object.keys(spec.containers[0]).filter((key) => !CONTAINER_FIELDS.has(key)).map((key) => `containers[0].${key}`),
  ];
  if (untranslated.length) throw new Error(`${kind}: ${untranslated.join(', ')} without a podman translation in test/harness/kubelet.ts`);
  return {
    namespace: workload.metadata.namespace,
    serviceAccountName: spec.serviceAccountName,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
    securityContext: spec.securityContext,
    container: spec.containers[0],
  };
}

/** Kubernetes quantities as podman takes them: memory in bytes, CPU in cores. */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (!match) throw new Error(`memory quantity ${quantity} has no translation here`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

export function cpuCores(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m)?$/.exec(quantity);
  if (!match) throw new Error(`cpu quantity ${quantity} has no translation here`);
  return match[2] ? Number(match[1]) / 1000 : Number(match[1]);
}

/**
 * podman flags for the pod's and the container's securityContext (the container's fields win, as in
 * Kubernetes). `add` replaces the container's capabilities.add (e.g. [] for "without NET_RAW").
 */
export function securityFlags(pod: ManifestPod, add?: string[]): string[] {
  for (const key of Object.keys(pod.securityContext ?? {})) {
    if (!POD_SECURITY_KEYS.has(key)) throw new Error(`pod securityContext.${key} has no podman translation in test/harness/kubelet.ts`);
  }
  for (const key of Object.keys(pod.container.securityContext ?? {})) {
    if (!CONTAINER_SECURITY_KEYS.has(key)) throw new Error(`container securityContext.${key} has no podman translation in test/harness/kubelet.ts`);
  }
  const context: SecurityContext = { ...pod.securityContext, ...pod.container.securityContext };
  const { runAsUser, runAsGroup } = context;
  if (runAsUser === undefined) throw new Error('the manifest must set runAsUser (the image user is not checked here)');
  if (context.runAsNonRoot && runAsUser === 0) throw new Error('runAsNonRoot with runAsUser 0: the kubelet would refuse to start it');
  // podman's default seccomp profile plays containerd's RuntimeDefault.
  if (context.seccompProfile && context.seccompProfile.type !== 'RuntimeDefault') throw new Error(`seccompProfile ${context.seccompProfile.type} has no translation here`);
  const flags = [`--user=${runAsUser}:${runAsGroup ?? runAsUser}`];
  if (context.allowPrivilegeEscalation === false) flags.push('--security-opt=no-new-privileges');
  // podman would mount writable tmpfs on /tmp, /var/tmp and /run; Kubernetes does not.
  if (context.readOnlyRootFilesystem) flags.push('--read-only', '--read-only-tmpfs=false');
  for (const capability of context.capabilities?.drop ?? []) flags.push(`--cap-drop=${capability}`);
  for (const capability of add ?? context.capabilities?.add ?? []) flags.push(`--cap-add=${capability}`);
  flags.push(`--annotation=${CAPABILITY_SETS_ANNOTATION}=kubernetes`);
  return flags;
}

/** podman flags for the container's resource limits (requests only steer scheduling). */
export function limitFlags(container: ManifestContainer): string[] {
  const limits = container.resources?.limits ?? {};
  for (const key of Object.keys(limits)) {
    if (key !== 'memory' && key !== 'cpu') throw new Error(`limit ${key} has no podman translation in test/harness/kubelet.ts`);
  }
  return [
    ...(limits.memory ? [`--memory=${memoryBytes(limits.memory)}`] : []),
    ...(limits.cpu ? [`--cpus=${cpuCores(limits.cpu)}`] : []),
  ];
}

/** `--env` flags: literal values, and downward-API fieldRefs resolved from `fields` (fieldPath → value). */
export function envFlags(container: ManifestContainer, fields: Record<string, string>): string[] {
  return (container.env ?? []).map((variable) => {
    if (variable.value !== undefined) return `--env=${variable.name}=${variable.value}`;
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    const value = fieldPath ? fields[fieldPath] : undefined;
    if (value === undefined) throw new Error(`env ${variable.name}: no value for ${JSON.stringify(variable.valueFrom)} in this test`);
    return `--env=${variable.name}=${value}`;
  });
}

/**
 * Forwards 127.0.0.1:port inside a topology host's network namespace to the topology gateway's
 * forwarder of the apiserver (Topology.forwardLoopback), so that in-cluster clients there reach the
 * apiserver at an address its certificate names. The process dies with the topology.
 */
export async function forwardApiserverInto(topology: Topology, host: string, port: number): Promise<void> {
  const script =
    `const net=require('net');net.createServer((c)=>{const u=net.connect(${port},'${topology.gateway}');` +
    `c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());})` +
    `.listen(${port},'127.0.0.1',()=>process.stdout.write('listening\\n'));`;
  const child = topology.spawnIn(host, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`apiserver forwarder in ${host} exited with ${code}`)));
  });
}

export interface PodPlacement {
  /** Container name, unique on this machine. */
  name: string;
  /** The pod's network: a network namespace path. */
  netns: string;
  /** Downward-API values by fieldPath (spec.nodeName, metadata.name, metadata.namespace). */
  fields: Record<string, string>;
  /** The ServiceAccount token the kubelet would project. */
  token: string;
  /** Replaces the container's capabilities.add. */
  add?: string[];
  echo?: boolean;
}

export interface PodContainer {
  name: string;
  /** The attached `podman run`: the container's log lines, its exit code. */
  process: RunningProcess;
  /** The container's main process on this machine (for /proc). */
  pid(): Promise<number>;
}

/**
 * Runs containers of one image as a kubelet with containerd would. Capability sets: for a non-root
 * user podman puts the added capabilities into the inheritable and ambient sets too, so a plain
 * non-root process keeps them over exec; containerd and CRI-O set only bounding, permitted and
 * effective. A precreate hook clears the other two for containers carrying the annotation.
 */
export class Kubelet {
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'eps-kubelet-'));
  private readonly hooks = path.join(this.dir, 'hooks');
  private readonly names = new Set<string>();
  private readonly removeOnExit = (): void => {
    if (this.names.size) execFileSync('podman', ['rm', '--force', '--ignore', '--time=0', ...this.containerIds()], { env: PODMAN_ENV, stdio: 'ignore' });
  };

  constructor(
    readonly image: string,
    private readonly apiserver: { caFile: string; port: number },
  ) {
    chmodSync(this.dir, 0o755);
    mkdirSync(this.hooks);
    const clearInheritedCapabilities =
      "let s='';process.stdin.on('data',(c)=>{s+=c}).on('end',()=>{const c=JSON.parse(s);" +
      'const k=c.process.capabilities;if(k){k.inheritable=[];k.ambient=[];}process.stdout.write(JSON.stringify(c));});';
    writeFileSync(path.join(this.hooks, 'kubernetes-capability-sets.json'), JSON.stringify({
      version: '1.0.0',
      hook: { path: process.execPath, args: ['node', '-e', clearInheritedCapabilities] },
      when: { annotations: { [`^${CAPABILITY_SETS_ANNOTATION.replaceAll('.', '\\.')}$`]: '^kubernetes$' } },
      stages: ['precreate'],
    }));
    process.on('exit', this.removeOnExit);
  }

  /** podman with the capability-sets hook. */
  podman(args: string[]): Promise<string> {
    return podman(['--hooks-dir', this.hooks, ...args]);
  }

  /** The ids of the containers started so far (their names where podman wrote no id). */
  private containerIds(): string[] {
    return [...this.names].map((name) => {
      const cidfile = path.join(this.dir, `${name}.cid`);
      return existsSync(cidfile) ? readFileSync(cidfile, 'utf8').trim() : name;
    });
  }

  /** Starts the pod's container attached (its log lines are collected); the caller waits for what it needs. */
  runPod(pod: ManifestPod, placement: PodPlacement): PodContainer {
    const { container } = pod;
    const secrets = path.join(this.dir, `${placement.name}.serviceaccount`);
    mkdirSync(secrets, { mode: 0o755 });
    writeFileSync(path.join(secrets, 'token'), placement.token, { mode: 0o644 });
    writeFileSync(path.join(secrets, 'namespace'), pod.namespace, { mode: 0o644 });
    copyFileSync(this.apiserver.caFile, path.join(secrets, 'ca.crt'));
    chmodSync(path.join(secrets, 'ca.crt'), 0o644);
    const args = [
      '--hooks-dir', this.hooks, 'run', '--pull=never', `--name=${placement.name}`, `--cidfile=${path.join(this.dir, `${placement.name}.cid`)}`,
      `--network=ns:${placement.netns}`,
      `--stop-timeout=${pod.terminationGracePeriodSeconds ?? 30}`,
      ...securityFlags(pod, placement.add),
      ...limitFlags(container),
      ...envFlags(container, placement.fields),
      // What the kubelet adds to every container: the apiserver's Service and the projected token.
      `--env=KUBERNETES_SERVICE_HOST=127.0.0.1`, `--env=KUBERNETES_SERVICE_PORT=${this.apiserver.port}`,
      `--volume=${secrets}:${SERVICE_ACCOUNT_DIR}:ro`,
      ...(container.command ? [`--entrypoint=${JSON.stringify(container.command)}`] : []),
      this.image,
      ...(container.args ?? []),
    ];
    this.names.add(placement.name);
    const child = spawn('podman', args, { env: PODMAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    return {
      name: placement.name,
      process: superviseProcess(child, { host: placement.name, echo: placement.echo }),
      pid: async () => Number((await podman(['inspect', '--format', '{{.State.Pid}}', placement.name])).trim()),
    };
  }

  /** Removes every container started here, running or not. */
  async removeAll(): Promise<void> {
    if (this.names.size) await podman(['rm', '--force', '--ignore', '--time=0', ...this.containerIds()]);
    this.names.clear();
  }

  async destroy(): Promise<void> {
    await this.removeAll();
    process.off('exit', this.removeOnExit);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
