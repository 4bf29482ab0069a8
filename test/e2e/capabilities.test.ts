// The image's essentials without a container engine (test/e2e/image.test.ts runs the image itself):
// the Dockerfile lints clean and has the shape docs/deploy.md promises, and the built CLI runs as an
// unprivileged user: ICMP works with a copy of node holding cap_net_raw, and without the capability
// the probe command and the agent say so and fall back (or refuse) as configured.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { adminConfig, controlPlaneState, freshNamespace } from '../harness/cluster.js';
import { ControlPlane, freePort } from '../harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION, makeServiceImport } from '../harness/fixtures.js';
import { CLI, startCli, type RunningProcess } from '../harness/processes.js';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
/** What the DaemonSet's securityContext leaves the agent: no_new_privs, only NET_RAW in the bounding set. */
const AGENT_POD = [...NOBODY, '--no-new-privs', '--bounding-set=-all,+net_raw'];
/** What the controller's securityContext leaves it: no capability at all. */
const NO_CAPS_POD = [...NOBODY, '--no-new-privs', '--bounding-set=-all'];

/** A TCP listener on loopback that accepts and closes connections (probes reset them: ignored). */
async function listenLoopback(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

/**
 * The CLI script as user nobody can read it: the repository's build, unless the checkout is not
 * traversable by others (a clone under `mktemp -d`, mode 0700); then a copy of the app laid out like
 * the image's /app in `dir` (hard links where the filesystem allows).
 */
function appForNobody(dir: string): string {
  if (spawnSync('setpriv', [...NOBODY, 'test', '-r', CLI]).status === 0) return CLI;
  const app = path.join(dir, 'app');
  mkdirSync(app);
  for (const part of ['package.json', 'dist', 'node_modules']) {
    const [from, to] = [path.join(repoRoot, part), path.join(app, part)];
    if (spawnSync('cp', ['-al', from, to]).status !== 0) cpSync(from, to, { recursive: true });
  }
  return path.join(app, path.relative(repoRoot, CLI));
}

function lastStage(dockerfile: string): string {
  return dockerfile.split(/^FROM /m).pop()!;
}

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');

  it('lints clean with dockerfile-utils', async () => {
    const { stdout, stderr } = await run(path.join(repoRoot, 'node_modules/.bin/dockerfile-utils'), ['lint', 'Dockerfile'], { cwd: repoRoot });
    expect(stdout + stderr).toBe('');
  });

  it('builds on node:NODE_VERSION-bookworm-slim (hack/versions.env), runs from scratch as non-root with node-net-raw, no command at build or run time', () => {
    const nodeVersion = /^NODE_VERSION=(.+)$/m.exec(readFileSync(path.join(repoRoot, 'hack/versions.env'), 'utf8'))![1];
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=docker\\.io/library/node:${nodeVersion!.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'));
    expect(dockerfile).toMatch(/setcap cap_net_raw\+p \/usr\/local\/bin\/node-net-raw/);
    const runtime = lastStage(dockerfile);
    expect(runtime).toMatch(/^scratch AS runtime$/m);
    expect(runtime).toMatch(/^USER 65532:65532$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "dist\/eps-probe-plugin.js"\]$/m);
    expect(runtime).toMatch(/^COPY --from=caps \/usr\/local\/bin\/node-net-raw /m);
    expect(runtime).not.toMatch(/^RUN /m);
  });

  it('matches the manifest: the agent runs node-net-raw with NET_RAW, the controller plain node without', () => {
    const objects = parseAllDocuments(readFileSync(path.join(repoRoot, 'deploy/eps-probe-plugin.yaml'), 'utf8')).map((d) => d.toJS());
    const container = (kind: string) => objects.find((o) => o.kind === kind).spec.template.spec.containers[0];
    expect(container('DaemonSet').command).toEqual(['node-net-raw', '--max-semi-space-size=4', 'dist/eps-probe-plugin.js']);
    expect(container('DaemonSet').securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_RAW'] });
    expect(container('Deployment').command).toBeUndefined();
    expect(container('Deployment').securityContext.capabilities).toEqual({ drop: ['ALL'] });
  });
});

describe('the built CLI as an unprivileged user', () => {
  let dir: string;
  /** Copies of this Node.js: node-net-raw holds cap_net_raw like the image's, node holds nothing. */
  let nodeNetRaw: string;
  let plainNode: string;
  /** The CLI as nobody can read it (see appForNobody). */
  let cli: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'eps-caps-'));
    chmodSync(dir, 0o755);
    cli = appForNobody(dir);
    nodeNetRaw = path.join(dir, 'node-net-raw');
    plainNode = path.join(dir, 'node');
    copyFileSync(process.execPath, nodeNetRaw);
    copyFileSync(process.execPath, plainNode);
    const setcap = spawnSync('setcap', ['cap_net_raw+ep', nodeNetRaw], { encoding: 'utf8' });
    if (setcap.status !== 0) throw new Error(`setcap failed (install libcap2-bin, run as root): ${setcap.stderr || setcap.error}`);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function probe(setpriv: string[], node: string, args: string[]) {
    return spawnSync('setpriv', [...setpriv, node, cli, 'probe', '--allow', '127.0.0.0/8', ...args], { encoding: 'utf8', timeout: 20_000 });
  }

  it.each([
    ['with only cap_net_raw', NOBODY],
    ['in the agent pod securityContext (no_new_privs, bounding set NET_RAW)', AGENT_POD],
  ])('pings 127.0.0.1 as nobody %s', (_name, setpriv) => {
    const result = probe(setpriv, nodeNetRaw, ['--icmp', '--json', '127.0.0.1']);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual([expect.objectContaining({ address: '127.0.0.1', protocol: 'icmp', result: 'success' })]);
    expect(result.status).toBe(0);
  });

  it('says raw sockets are not permitted without the capability, and still probes TCP', async () => {
    const { server, port } = await listenLoopback();
    try {
      const result = probe(NO_CAPS_POD, plainNode, ['--both', '--json', `127.0.0.1:${port}`]);
      expect(result.stderr).toContain('ICMP unavailable: raw ICMP sockets not permitted (Operation not permitted); CAP_NET_RAW is needed');
      const rows = JSON.parse(result.stdout) as Array<{ protocol: string; result: string }>;
      expect(rows.find((r) => r.protocol === 'tcp')?.result).toBe('success');
      expect(rows.find((r) => r.protocol === 'icmp')?.result).toBe('error');
      expect(result.status).toBe(1);
    } finally {
      server.close();
    }
  });

  it('cannot start node-net-raw where NET_RAW is not granted (why the controller runs plain node)', () => {
    const result = probe(NO_CAPS_POD, nodeNetRaw, ['--icmp', '127.0.0.1']);
    expect(result.stderr).toMatch(/failed to execute .*node-net-raw: Operation not permitted/);
    expect(result.status).not.toBe(0);
  });

  describe('the agent in probe mode icmp', () => {
    let namespace: string;
    let kubeconfig: string;
    let listener: net.Server;
    let port: number;
    const agents: RunningProcess[] = [];

    beforeAll(async () => {
      namespace = await freshNamespace('caps');
      ({ server: listener, port } = await listenLoopback());
      // The unprivileged agent must be able to read its kubeconfig.
      kubeconfig = ControlPlane.attach(controlPlaneState()).writeAdminKubeconfigVia(path.join(dir, 'kubeconfig'), { host: '127.0.0.1', port: controlPlaneState().apiserverPort });
      chownSync(kubeconfig, 65534, 65534);
      await adminConfig().makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
        group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports',
        body: makeServiceImport({ name: 'web', namespace, addresses: ['127.0.0.1'], ports: [port] }),
      });
    });

    afterAll(async () => {
      await Promise.all(agents.map((agent) => agent.stop()));
      listener?.close();
    });

    async function startAgent(name: string, node: string, setpriv: string[], icmpUnavailable: 'fallback-tcp' | 'fail') {
      const config = `probe: { mode: icmp, interval: 500ms, timeout: 400ms, icmpUnavailable: ${icmpUnavailable} }\nallowCidrs: [127.0.0.0/8]\nnamespaces: { include: [${namespace}] }\n`;
      const core = adminConfig().makeApiClient(k8s.CoreV1Api);
      await core.createNamespacedConfigMap({ namespace, body: { metadata: { name }, data: { 'config.yaml': config } } });
      const metricsPort = await freePort();
      const agent = startCli(
        ['agent', '--kubeconfig', kubeconfig, '--identity', `${namespace}-${name}`, '--namespace', namespace, '--config-name', name,
          '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort)],
        { command: ['setpriv', ...setpriv, node], cli, host: name },
      );
      agents.push(agent);
      const metric = async (pattern: RegExp): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return Number(pattern.exec(text)?.[1] ?? 0);
      };
      return { agent, metric };
    }

    it('probes with ICMP as nobody holding only NET_RAW', async () => {
      const { metric } = await startAgent('icmp', nodeNetRaw, AGENT_POD, 'fail');
      await expect.poll(() => metric(/^eps_probe_probes_total\{protocol="icmp",result="success"\} (\d+)/m).catch(() => 0), { timeout: 15_000 }).toBeGreaterThan(0);
      expect(await metric(/^eps_probe_probes_total\{protocol="tcp",result="\w+"\} (\d+)/m)).toBe(0);
    });

    it('without the capability, says so and falls back to TCP (icmpUnavailable: fallback-tcp)', async () => {
      const { agent, metric } = await startAgent('fallback', plainNode, NO_CAPS_POD, 'fallback-tcp');
      await expect.poll(() => metric(/^eps_probe_probes_total\{protocol="tcp",result="success"\} (\d+)/m).catch(() => 0), { timeout: 15_000 }).toBeGreaterThan(0);
      expect(agent.logs).toContainEqual(expect.objectContaining({
        msg: 'ICMP probing configured but unavailable; probing with TCP only, targets without a port stay unknown',
        reason: expect.stringContaining('raw ICMP sockets not permitted'),
      }));
    });

    it('without the capability, refuses to start with a clear error (icmpUnavailable: fail)', async () => {
      const { agent } = await startAgent('fail', plainNode, NO_CAPS_POD, 'fail');
      const code = await new Promise<number | null>((resolve) => agent.child.once('exit', resolve));
      expect(code).toBe(1);
      expect(agent.logs.filter((line) => line.level === 'fatal')).toEqual([expect.objectContaining({
        cause: expect.stringContaining('CAP_NET_RAW is needed'),
        fix: expect.stringContaining('NET_RAW capability'),
      })]);
      expect(agent.rawOutput).toEqual([]);
    });
  });
});
