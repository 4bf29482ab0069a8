// The half-open TCP prober (src/probe/syn.ts) on real sockets: pods in network namespaces
// (10.233.31.0/24 and fd00:233:31::/64, both blackholed in the root namespace) and loopback. Each
// answer a target can give (open, closed, dropped, rejected with ICMP or a reset, a cut link), over
// IPv4 and IPv6, must give the same results as connect(); and 10k targets beside a busy TCP stream.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { NETWORK_TRANSPORTS, ProbeEngine, tcpConnect, type ProbeEngineOptions, type ReachabilityChange, type TargetStatus } from '../../src/probe/index.js';
import { HalfOpenProber } from '../../src/probe/syn.js';
import { createTopology, type Topology } from '../harness/topology.js';

const logger = createLogger({ level: 'silent' });
const SUBNET = '10.233.31.0/24';
const V6_NET = 'fd00:233:31::/64';
const PORT = 8080;
const TIMEOUT_MS = 500;

/** How each pod answers on PORT (the rule goes into its INPUT chain), and what connect() reports over IPv4 and IPv6. */
const SCENARIOS = [
  { pod: 'open', rule: undefined, v4: ['success', undefined], v6: ['success', undefined] },
  { pod: 'closed', rule: undefined, v4: ['refused', 'ECONNREFUSED'], v6: ['refused', 'ECONNREFUSED'] },
  { pod: 'dropped', rule: ['-j', 'DROP'], v4: ['timeout', 'ETIMEDOUT'], v6: ['timeout', 'ETIMEDOUT'] },
  { pod: 'reset', rule: ['-j', 'REJECT', '--reject-with', 'tcp-reset'], v4: ['refused', 'ECONNREFUSED'], v6: ['refused', 'ECONNREFUSED'] },
  // ICMP errors end a connect() over IPv4; over IPv6 Linux's connect() ignores them and times out.
  { pod: 'portun', rule: ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'], v4: ['refused', 'ECONNREFUSED'], v6: ['timeout', 'ETIMEDOUT'] },
  { pod: 'hostun', rule: ['-j', 'REJECT', '--reject-with', 'icmp-host-unreachable'], v4: ['failure', 'EHOSTUNREACH'], v6: ['timeout', 'ETIMEDOUT'] },
  { pod: 'admpro', rule: ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'], v4: ['failure', 'EHOSTUNREACH'], v6: ['timeout', 'ETIMEDOUT'] },
] as const;
const V6_REJECT: Record<string, string> = {
  'icmp-port-unreachable': 'icmp6-port-unreachable',
  'icmp-host-unreachable': 'icmp6-addr-unreachable',
  'icmp-admin-prohibited': 'icmp6-adm-prohibited',
};

/** A TCP stream from a process to itself on loopback, as fast as it drains; prints the bytes sent every 50 ms. */
const STREAMER = `
  const net = require('net');
  const chunk = Buffer.alloc(65536);
  let sent = 0;
  const sink = net.createServer((s) => s.resume()).listen(0, '127.0.0.1', () => {
    const c = net.connect(sink.address().port, '127.0.0.1', function pump() {
      while (c.write(chunk)) sent += chunk.length;
      c.once('drain', pump);
    });
  });
  setInterval(() => process.stdout.write(sent + '\\n'), 50);`;

let topology: Topology;
/** Per pod: its IPv4 and IPv6 address. */
const addresses = new Map<string, { v4: string; v6: string }>();
let loopback: Server;
let loopbackPort: number;

function sh(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function removeV6Blackhole(): void {
  spawnSync('ip', ['-6', 'route', 'del', 'blackhole', V6_NET, 'metric', '4096'], { stdio: 'ignore' });
}

/** A listener on [::]:PORT (IPv4 too) inside a pod; it closes what it accepts (half-open probes never get that far). */
async function listenIn(pod: string): Promise<void> {
  const script = `require('net').createServer(c=>{c.on('error',()=>{});c.destroy()}).listen(${PORT},'::',()=>process.stdout.write('ok\\n'))`;
  const child = topology.spawnIn(pod, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener in ${pod} exited with ${code}`)));
  });
}

beforeAll(async () => {
  topology = await createTopology({ name: 'syn', subnet: SUBNET });
  // IPv6 beside the topology's IPv4: the same blackhole rule for the whole range, the bridge as its gateway.
  removeV6Blackhole();
  sh('ip', ['-6', 'route', 'add', 'blackhole', V6_NET, 'metric', '4096']);
  sh('ip', ['-6', 'addr', 'add', 'fd00:233:31::1/64', 'dev', 'br-epssyn', 'nodad']);
  for (const [index, scenario] of [...SCENARIOS, { pod: 'cut', rule: undefined }].entries()) {
    const host = await topology.addPod(scenario.pod);
    const v6 = `fd00:233:31::${index + 2}`;
    sh('ip', ['-n', host.netns, '-6', 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad']);
    addresses.set(scenario.pod, { v4: host.address, v6 });
    if (scenario.pod !== 'closed') await listenIn(scenario.pod);
    if (scenario.rule) {
      const v6Rule = scenario.rule.map((word) => V6_REJECT[word] ?? word);
      for (const [tool, rule] of [['iptables', scenario.rule], ['ip6tables', v6Rule]] as const) {
        sh('ip', ['netns', 'exec', host.netns, tool, '-w', '-A', 'INPUT', '-p', 'tcp', '--dport', String(PORT), ...rule]);
      }
    }
  }
  loopback = createServer((socket) => socket.on('error', () => undefined).destroy());
  await new Promise<void>((resolve) => loopback.listen(0, '::1', resolve));
  loopbackPort = (loopback.address() as AddressInfo).port;
}, 120_000);

afterAll(async () => {
  loopback?.close();
  await topology?.destroy();
  removeV6Blackhole();
});

describe('half-open probes answer as connect() does', () => {
  const rows = SCENARIOS.flatMap(({ pod, v4, v6 }) => [
    { name: `${pod} over IPv4`, pod, family: 'v4' as const, expected: v4 },
    { name: `${pod} over IPv6`, pod, family: 'v6' as const, expected: v6 },
  ]);

  it.each(rows)('$name', async ({ pod, family, expected }) => {
    const address = addresses.get(pod)![family];
    const prober = new HalfOpenProber();
    try {
      const [viaConnect, halfOpen] = await Promise.all([tcpConnect(address, PORT, TIMEOUT_MS), prober.probePort(address, PORT, TIMEOUT_MS)]);
      expect([halfOpen.result, halfOpen.error]).toEqual(expected);
      expect([viaConnect.result, viaConnect.error]).toEqual(expected);
    } finally {
      await prober.close();
    }
  });

  it('on loopback, IPv4 and IPv6, open and closed ports', async () => {
    const prober = new HalfOpenProber();
    try {
      for (const [address, port, expected] of [
        ['::1', loopbackPort, 'success'],
        ['::1', prober.port, 'refused'], // nothing listens on our own reserved port
        ['127.0.0.1', prober.port, 'refused'],
      ] as const) {
        const [viaConnect, halfOpen] = await Promise.all([tcpConnect(address, port, TIMEOUT_MS), prober.probePort(address, port, TIMEOUT_MS)]);
        expect([address, halfOpen.result, halfOpen.error]).toEqual([address, viaConnect.result, viaConnect.error]);
        expect(halfOpen.result).toBe(expected);
      }
    } finally {
      await prober.close();
    }
  });

  it('leaves no half-open connection at the target: the kernel resets each one', async () => {
    const prober = new HalfOpenProber();
    try {
      const outcomes = await Promise.all(Array.from({ length: 50 }, () => prober.probePort(addresses.get('open')!.v4, PORT, TIMEOUT_MS)));
      expect(new Set(outcomes.map((o) => o.result))).toEqual(new Set(['success']));
      const synRecv = execFileSync('ip', ['netns', 'exec', topology.netnsOf('open'), 'ss', '-Htan', 'state', 'syn-recv'], { encoding: 'utf8' });
      expect(synRecv.trim()).toBe('');
    } finally {
      await prober.close();
    }
  });

  it.each([true, false])('with refusedIsReachable %s, the engine in mode tcp sees every target as it does with connect()', async (refusedIsReachable) => {
    const targets = [...addresses.entries()]
      .filter(([pod]) => pod !== 'cut')
      .flatMap(([pod, { v4, v6 }]) => [v4, v6].map((address) => ({ address, ports: [PORT], owners: [`ns/${pod}`] })));
    async function states(tcpProbe: ProbeEngineOptions['tcpProbe']): Promise<Record<string, Pick<TargetStatus, 'state' | 'lastError'>>> {
      const engine = new ProbeEngine(
        { tcpProbe, halfOpenUnavailable: 'fail', refusedIsReachable, mode: 'tcp', allowCidrs: [SUBNET, V6_NET], timeoutMs: TIMEOUT_MS, intervalMs: 60_000, failureThreshold: 1, successThreshold: 1 },
        { logger, registry: new Registry(), random: () => 0 },
      );
      engine.setTargets(targets);
      await engine.start();
      await engine.firstRoundComplete();
      await engine.stop();
      return Object.fromEntries(engine.snapshot().map(({ address, state, lastError }) => [address, { state, lastError }]));
    }
    const [viaConnect, halfOpen] = await Promise.all([states('connect'), states('half-open')]);
    expect(halfOpen).toEqual(viaConnect);
    const open = addresses.get('open')!;
    expect(halfOpen[open.v4]).toEqual({ state: 'reachable', lastError: undefined });
    expect(halfOpen[addresses.get('closed')!.v6]!.state).toBe(refusedIsReachable ? 'reachable' : 'unreachable');
    expect(halfOpen[addresses.get('dropped')!.v6]).toEqual({ state: 'unreachable', lastError: 'tcp timeout: ETIMEDOUT' });
  });
});

describe('a route change that changes the source address', () => {
  it('is followed by the next probe: its SYN carries the source the kernel picks, as connect() does, over IPv4 and IPv6', async () => {
    // The source address is cached per destination until the kernel reports a routing change; a stale
    // one would give the SYN a checksum over the wrong address, which the target drops: a timeout.
    const pod = topology.netnsOf('open');
    const prober = new HalfOpenProber();
    const undo: string[][] = [];
    const run = (args: string[], reverse: string[]): void => {
      sh(args[0]!, args.slice(1));
      undo.unshift(reverse);
    };
    const probeBoth = async (address: string): Promise<string[]> => {
      const [viaConnect, halfOpen] = await Promise.all([tcpConnect(address, PORT, TIMEOUT_MS), prober.probePort(address, PORT, TIMEOUT_MS)]);
      return [viaConnect.result, halfOpen.result];
    };
    try {
      for (const [family, source, length, tool] of [
        ['v4', '10.233.31.250', 32, 'iptables'],
        ['v6', 'fd00:233:31::250', 128, 'ip6tables'],
      ] as const) {
        const address = addresses.get('open')![family];
        const ip = family === 'v6' ? ['ip', '-6'] : ['ip'];
        expect(await probeBoth(address)).toEqual(['success', 'success']);
        // A second address on the bridge and a route to the pod with it as the source; the pod answers
        // only SYNs from it from now on.
        run([...ip, 'addr', 'add', `${source}/${length}`, 'dev', 'br-epssyn', ...(family === 'v6' ? ['nodad'] : [])], [...ip, 'addr', 'del', `${source}/${length}`, 'dev', 'br-epssyn']);
        run([...ip, 'route', 'add', `${address}/${length}`, 'dev', 'br-epssyn', 'src', source], [...ip, 'route', 'del', `${address}/${length}`]);
        const onlyFrom = ['INPUT', '!', '-s', source, '-p', 'tcp', '--dport', String(PORT), '-j', 'DROP'];
        run(['ip', 'netns', 'exec', pod, tool, '-w', '-I', ...onlyFrom], ['ip', 'netns', 'exec', pod, tool, '-w', '-D', ...onlyFrom]);
        expect(await probeBoth(address)).toEqual(['success', 'success']);
        // And back: without the route and the address, the bridge's first address is the source again.
        for (const reverse of undo.splice(0)) sh(reverse[0]!, reverse.slice(1));
        expect(await probeBoth(address)).toEqual(['success', 'success']);
      }
    } finally {
      await prober.close();
      for (const reverse of undo) spawnSync(reverse[0]!, reverse.slice(1), { stdio: 'ignore' });
    }
  });
});

describe('a cut link, probed half-open', () => {
  it('makes the target unreachable within failureThreshold × interval + timeout and reachable again after the restore, over IPv4 and IPv6', async () => {
    const options = { intervalMs: 1000, timeoutMs: TIMEOUT_MS, fastIntervalMs: 200, failureThreshold: 2, successThreshold: 2 };
    const MARGIN_MS = 400;
    const engine = new ProbeEngine({ ...options, tcpProbe: 'half-open', halfOpenUnavailable: 'fail', allowCidrs: [SUBNET, V6_NET] }, { logger, registry: new Registry() });
    const cut = addresses.get('cut')!;
    const steady = addresses.get('open')!;
    engine.setTargets([cut.v4, cut.v6, steady.v4].map((address) => ({ address, ports: [PORT], owners: ['ns/svc'] })));
    const changes: (ReachabilityChange & { at: number })[] = [];
    engine.onChange((change) => changes.push({ ...change, at: Date.now() }));
    await engine.start();
    try {
      await engine.firstRoundComplete();
      expect(engine.snapshot().map((s) => s.state)).toEqual(['reachable', 'reachable', 'reachable']);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const cutAt = Date.now();
      await topology.cutPod('cut');
      const detectionBoundMs = options.failureThreshold * options.intervalMs + options.timeoutMs + MARGIN_MS;
      await vi.waitFor(() => expect(changes.filter((c) => c.current === 'unreachable').length).toBe(2), { timeout: detectionBoundMs + 1000, interval: 20 });
      const lost = changes.filter((c) => c.current === 'unreachable');
      expect(lost.map((c) => c.address).sort()).toEqual([cut.v4, cut.v6].sort());
      for (const change of lost) expect(change.at - cutAt).toBeLessThanOrEqual(detectionBoundMs);
      const restoredAt = Date.now();
      await topology.restorePod('cut');
      await vi.waitFor(() => expect(changes.filter((c) => c.previous === 'unreachable').length).toBe(2), { timeout: 5000, interval: 20 });
      const recoveryBoundMs = options.successThreshold * options.intervalMs + options.timeoutMs + MARGIN_MS;
      for (const change of changes.filter((c) => c.previous === 'unreachable')) expect(change.at - restoredAt).toBeLessThanOrEqual(recoveryBoundMs);
      // The steady target never changed after its first verdict.
      expect(changes.filter((c) => c.address === steady.v4).map((c) => c.current)).toEqual(['reachable']);
    } finally {
      await engine.stop();
      await topology.restorePod('cut');
    }
  });
});

describe('10k targets on loopback beside a busy TCP stream', () => {
  it('probes each once with the right answer, and the stream never reaches the prober', async () => {
    const fdsBefore = readdirSync('/proc/self/fd').length;
    // Targets across 127.31.0.0/16: 9,500 with a listening port (SYN-ACK), 500 with a closed one (RST).
    const listener = createServer((socket) => socket.on('error', () => undefined).destroy());
    await new Promise<void>((resolve) => listener.listen({ port: 0, host: '0.0.0.0', backlog: 4096 }, resolve));
    const open = (listener.address() as AddressInfo).port;
    const unused = createServer();
    await new Promise<void>((resolve) => unused.listen(0, '0.0.0.0', resolve));
    const closed = (unused.address() as AddressInfo).port;
    await new Promise((resolve) => unused.close(resolve));
    const at = (n: number): string => `127.31.${n >> 8}.${n & 0xff}`;
    const targets = Array.from({ length: 10_000 }, (_, n) => ({ address: at(n + 256), ports: [n < 9_500 ? open : closed], owners: ['ns/svc'] }));

    // Other TCP traffic on the node meanwhile: a process streaming to itself on loopback as fast as it
    // drains, printing the bytes sent so far every 50 ms.
    const streamer = spawn(process.execPath, ['-e', STREAMER], { stdio: ['ignore', 'pipe', 'inherit'] });
    let streamed = 0;
    streamer.stdout.setEncoding('utf8').on('data', (text: string) => (streamed = Number(text.trim().split('\n').at(-1))));
    await vi.waitFor(() => expect(streamed).toBeGreaterThan(0), { timeout: 5000 });

    let prober: HalfOpenProber | undefined;
    const registry = new Registry();
    const engine = new ProbeEngine(
      { tcpProbe: 'half-open', halfOpenUnavailable: 'fail', refusedIsReachable: false, allowCidrs: ['127.0.0.0/8'], concurrency: 2048, timeoutMs: 2000, intervalMs: 600_000, failureThreshold: 1, successThreshold: 1 },
      { logger, registry, random: () => 0, transports: { ...NETWORK_TRANSPORTS, openHalfOpen: () => (prober = new HalfOpenProber()) } },
    );
    engine.setTargets(targets);
    const streamedBefore = streamed;
    await engine.start();
    try {
      await engine.firstRoundComplete();
      await new Promise((resolve) => setTimeout(resolve, 100)); // the streamer's next count
      const stats = prober!.stats();
      const states = engine.snapshot();
      expect(states.filter((s) => s.state === 'reachable').length).toBe(9_500);
      expect(states.filter((s) => s.state === 'unreachable' && s.lastError === 'tcp refused: ECONNREFUSED').length).toBe(500);
      const probes = (await registry.getSingleMetric('eps_probe_probes_total')!.get()).values;
      expect(Object.fromEntries(probes.map((v) => [v.labels.result, v.value]))).toEqual({ success: 9_500, refused: 500 });
      // Only answers to our SYNs passed the socket filters; the stream's packets stayed in the kernel.
      expect(stats.answers).toBe(10_000);
      expect(stats.packetsRead).toBe(stats.answers);
      const streamedMb = (streamed - streamedBefore) / 2 ** 20;
      expect(streamedMb).toBeGreaterThan(10);
      console.log(`10k half-open probes: ${stats.packetsRead} packets read, ${streamedMb.toFixed(0)} MB streamed on loopback meanwhile`);
    } finally {
      await engine.stop();
      const exited = new Promise((resolve) => streamer.once('close', resolve));
      streamer.kill();
      await Promise.all([exited, new Promise((resolve) => listener.close(resolve))]);
    }
    expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore);
  });
});

describe('without CAP_NET_RAW', () => {
  it('says raw TCP sockets are not permitted', () => {
    const syn = pathToFileURL(path.resolve(import.meta.dirname, '../../dist/probe/syn.js')).href;
    const script = `
      const { HalfOpenProber } = await import(${JSON.stringify(syn)});
      try { new HalfOpenProber(); console.log('opened'); } catch (err) { console.log(err.name + ': ' + err.message); }`;
    const run = spawnSync('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('HalfOpenUnavailableError: raw TCP sockets not permitted (opening a raw socket: Operation not permitted); CAP_NET_RAW is needed');
  });
});
