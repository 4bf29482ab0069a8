// Network-namespace topology for tests: "pods" and "nodes" are namespaces with a veth into one
// bridge in the root namespace. Nothing here may ever route outside the machine: the whole subnet
// gets a blackhole route in the root namespace, so a cut link can never fall back to the default route.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `ip`/`iptables`; the error names the command so a failing setup is easy to read. */
async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args);
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim()}`, { cause: err });
  }
}

export interface Host {
  name: string;
  /** Network namespace name (`ip netns exec <netns> ...`). */
  netns: string;
  address: string;
  /** Host-side veth; taking it down cuts this host off the bridge. */
  hostVeth: string;
}

export interface TopologyOptions {
  /** Short name (at most 5 characters): prefixes namespaces and links. */
  name: string;
  /** An IPv4 /16../24 inside 10.233.0.0/16, e.g. `10.233.10.0/24`. */
  subnet: string;
}

export interface Topology {
  readonly subnet: string;
  /** The bridge's address in the root namespace; hosts reach the root namespace through it. */
  readonly gateway: string;
  addPod(name: string): Promise<Host>;
  addNode(name: string): Promise<Host>;
  /** The network namespace of a host, for `ip netns exec`. */
  netnsOf(name: string): string;
  /** Takes the pod's link down: nobody reaches it any more. */
  cutPod(name: string): Promise<void>;
  restorePod(name: string): Promise<void>;
  /** Drops everything from one node to one pod (iptables in the node's namespace). */
  cutPath(node: string, pod: string): Promise<void>;
  restorePath(node: string, pod: string): Promise<void>;
  /** Starts a TCP listener inside a pod that accepts and closes connections. */
  listen(pod: string, port: number): Promise<void>;
  /** Spawns a process inside a host's namespace; it is killed by destroy(). */
  spawnIn(host: string, command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /**
   * Forwards `gateway:port` to `127.0.0.1:port` so processes in namespaces reach a loopback
   * service (the apiserver) of the root namespace.
   */
  forwardLoopback(port: number): Promise<{ host: string; port: number }>;
  destroy(): Promise<void>;
}

const NAME_PATTERN = /^[a-z][a-z0-9]{0,4}$/;

export function parseSubnet(subnet: string): { base: number[]; prefix: number } {
  const match = /^10\.233\.(\d{1,3})\.0\/(1[6-9]|2[0-4])$/.exec(subnet);
  if (!match) throw new TypeError(`subnet must be a /16../24 inside 10.233.0.0/16 ending in .0, got ${subnet}`);
  return { base: [10, 233, Number(match[1]), 0], prefix: Number(match[2]) };
}

/** Removes leftovers of an earlier run with the same name (a test killed before its cleanup). */
function removeLeftovers(name: string, subnet: string): void {
  const quiet = { stdio: 'ignore' as const };
  let namespaces: string[] = [];
  try {
    namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((ns) => ns.startsWith(`eps-${name}-`));
  } catch {
    // no namespaces at all
  }
  for (const ns of namespaces) {
    try {
      execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .forEach((pid) => {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        });
      execFileSync('ip', ['netns', 'del', ns], quiet);
    } catch {
      // already gone
    }
  }
  try {
    execFileSync('ip', ['link', 'del', `br-eps${name}`], quiet);
  } catch {
    // not there
  }
  try {
    execFileSync('ip', ['route', 'del', 'blackhole', subnet, 'metric', '4096'], quiet);
  } catch {
    // not there
  }
}

export async function createTopology(options: TopologyOptions): Promise<Topology> {
  if (!NAME_PATTERN.test(options.name)) throw new TypeError(`topology name must match ${NAME_PATTERN}, got ${options.name}`);
  const { base, prefix } = parseSubnet(options.subnet);
  const subnet = options.subnet;
  const bridge = `br-eps${options.name}`;
  const gateway = `${base[0]}.${base[1]}.${base[2]}.1`;
  const hosts = new Map<string, Host>();
  const processes = new Set<ChildProcess>();
  const forwarders: net.Server[] = [];
  let nextHost = 2;

  removeLeftovers(options.name, subnet);
  const cleanupOnExit = (): void => removeLeftovers(options.name, subnet);
  process.on('exit', cleanupOnExit);

  // The blackhole has a higher metric than the bridge's connected route: it only takes effect when
  // the bridge route is gone, and it covers every address of the subnet that no host owns.
  await sh('ip', ['route', 'add', 'blackhole', subnet, 'metric', '4096']);
  await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', `${gateway}/${prefix}`, 'dev', bridge]);
  await sh('ip', ['link', 'set', bridge, 'up']);

  function hostAddress(): string {
    const index = nextHost++;
    const hostBits = 32 - prefix;
    if (index >= 2 ** hostBits - 1) throw new Error(`subnet ${subnet} is full`);
    const value = ((base[2]! << 8) + index) >>> 0;
    return `10.233.${(value >> 8) & 0xff}.${value & 0xff}`;
  }

  async function addHost(kind: 'pod' | 'node', name: string): Promise<Host> {
    if (hosts.has(name)) throw new Error(`host ${name} exists`);
    const index = hosts.size;
    const netns = `eps-${options.name}-${name}`;
    const hostVeth = `ve${options.name}${kind[0]}${index}`;
    const peer = `vp${options.name}${index}`;
    const address = hostAddress();
    await sh('ip', ['netns', 'add', netns]);
    const host: Host = { name, netns, address, hostVeth };
    hosts.set(name, host);
    await sh('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer]);
    await sh('ip', ['link', 'set', peer, 'netns', netns]);
    await sh('ip', ['link', 'set', hostVeth, 'master', bridge]);
    await sh('ip', ['link', 'set', hostVeth, 'up']);
    const inNs = (args: string[]): Promise<string> => sh('ip', ['-n', netns, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['link', 'set', peer, 'name', 'eth0']);
    await inNs(['addr', 'add', `${address}/${prefix}`, 'dev', 'eth0']);
    await inNs(['link', 'set', 'eth0', 'up']);
    // Only the subnet is routable from inside: no default route, so nothing can leave it.
    return host;
  }

  function get(name: string): Host {
    const host = hosts.get(name);
    if (!host) throw new Error(`no host ${name} in topology ${options.name}`);
    return host;
  }

  function spawnIn(hostName: string, command: string, args: string[], spawnOptions: SpawnOptions = {}): ChildProcess {
    const host = get(hostName);
    // nsenter rather than `ip netns exec`, which remounts /sys: a process there could not see its
    // memory cgroup's limit (as a pod's container does) when a bench puts it in one.
    const child = spawn('nsenter', [`--net=/run/netns/${host.netns}`, command, ...args], { stdio: 'inherit', ...spawnOptions });
    processes.add(child);
    child.once('exit', () => processes.delete(child));
    return child;
  }

  const dropRule = (pod: Host): string[] => ['OUTPUT', '-d', `${pod.address}/32`, '-j', 'DROP'];

  return {
    subnet,
    gateway,
    addPod: (name) => addHost('pod', name),
    addNode: (name) => addHost('node', name),
    netnsOf: (name) => get(name).netns,
    async cutPod(name) {
      await sh('ip', ['link', 'set', get(name).hostVeth, 'down']);
    },
    async restorePod(name) {
      await sh('ip', ['link', 'set', get(name).hostVeth, 'up']);
    },
    async cutPath(node, pod) {
      await sh('ip', ['netns', 'exec', get(node).netns, 'iptables', '-w', '-A', ...dropRule(get(pod))]);
    },
    async restorePath(node, pod) {
      await sh('ip', ['netns', 'exec', get(node).netns, 'iptables', '-w', '-D', ...dropRule(get(pod))]);
    },
    async listen(pod, port) {
      const script =
        `const s=require('net').createServer(c=>{c.on('error',()=>{});c.end()});` +
        `s.listen(${port},'0.0.0.0',()=>process.stdout.write('listening\\n'));`;
      const child = spawnIn(pod, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`listener in ${pod} exited with ${code}`)));
      });
    },
    spawnIn,
    async forwardLoopback(port) {
      const server = net.createServer((inbound) => {
        const outbound = net.connect(port, '127.0.0.1');
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, gateway, () => resolve());
      });
      forwarders.push(server);
      return { host: gateway, port };
    },
    async destroy() {
      for (const server of forwarders) server.close();
      for (const child of processes) child.kill('SIGKILL');
      await Promise.all(
        [...processes].map((child) => new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) resolve();
          else child.once('exit', () => resolve());
        })),
      );
      removeLeftovers(options.name, subnet);
      process.off('exit', cleanupOnExit);
    },
  };
}
