// Real sockets on 127.0.0.0/8 only: listeners, refused ports, fd and TIME_WAIT accounting, the CLI.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runProbeCommand } from '../../src/cli/probe.js';
import { createLogger } from '../../src/log.js';
import { ProbeEngine, tcpConnect, tcpConnectAnyPort, type ReachabilityChange } from '../../src/probe/index.js';

let server: Server;
let port: number;
/** A port with nothing listening on 127.0.0.3 (the kernel answers RST). */
let closedPort: number;

beforeAll(async () => {
  server = createServer((socket) => socket.on('error', () => undefined).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  port = (server.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.3', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function readThreadName(tid: string): string {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8');
  } catch {
    return ''; // the thread ended meanwhile
  }
}

/** TCP probe threads of this process, by their thread name. */
function probeThreads(): number {
  return readdirSync('/proc/self/task').filter((tid) => /tcp-probe/.test(readThreadName(tid))).length;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('tcpConnect on loopback', () => {
  it('reports success when a listener accepts', async () => {
    expect(await tcpConnect('127.0.0.2', port, 1000)).toMatchObject({ protocol: 'tcp', result: 'success' });
  });

  it('reports refused when the host answers with a RST', async () => {
    expect(await tcpConnect('127.0.0.3', closedPort, 1000)).toMatchObject({ result: 'refused', error: 'ECONNREFUSED' });
  });

  it('takes an answer that arrived while the event loop was blocked over a timeout due at the same time', async () => {
    // The RST arrives during the busy wait, and the 50 ms timeout falls due during it too; the loop
    // then runs the timer before it reads the socket.
    const pending = tcpConnect('127.0.0.3', closedPort, 50);
    const until = performance.now() + 80;
    while (performance.now() < until) {
      // busy: an overloaded agent
    }
    expect((await pending).result).toBe('refused');
  });

  it('answers for a target when any of its ports answers', async () => {
    const outcome = await tcpConnectAnyPort('127.0.0.2', [closedPort, port], 1000, (r) => r === 'success');
    expect(outcome.result).toBe('success');
  });

  it('leaves no file descriptor open after thousands of probes', async () => {
    const before = openFds();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, n) => (n % 2 ? tcpConnect('127.0.0.2', port, 1000) : tcpConnect('127.0.0.3', closedPort, 1000))),
      );
    }
    expect(openFds()).toBe(before);
  });

  it('leaves no TIME_WAIT socket behind after successful probes', async () => {
    await Promise.all(Array.from({ length: 200 }, () => tcpConnect('127.0.0.2', port, 1000)));
    // Address and port: other loopback connections of this machine may use the same port number.
    const timeWait = execFileSync('ss', ['-Htan', 'state', 'time-wait', `( dst 127.0.0.2:${port} or src 127.0.0.2:${port} )`], { encoding: 'utf8' });
    expect(timeWait.trim()).toBe('');
  });
});

describe('ProbeEngine on loopback', () => {
  it.each([0, 2])('with %i probe threads, reports a listening and a refusing target reachable, and the refusing one unreachable when RST does not count', async (tcpThreads) => {
    for (const [refusedIsReachable, expected] of [
      [true, 'reachable'],
      [false, 'unreachable'],
    ] as const) {
      const engine = new ProbeEngine(
        { allowCidrs: ['127.0.0.0/8'], intervalMs: 200, fastIntervalMs: 20, timeoutMs: 500, refusedIsReachable, tcpThreads },
        { logger: createLogger({ level: 'silent' }), registry: new Registry() },
      );
      const changes: ReachabilityChange[] = [];
      engine.onChange((change) => changes.push(change));
      engine.setTargets([
        { address: '127.0.0.2', ports: [port], owners: ['ns/up'] },
        { address: '127.0.0.3', ports: [closedPort], owners: ['ns/closed'] },
      ]);
      await engine.start();
      await engine.firstRoundComplete();
      await engine.stop();
      const states = Object.fromEntries(engine.snapshot().map((s) => [s.address, s.state]));
      expect(states).toEqual({ '127.0.0.2': 'reachable', '127.0.0.3': expected });
      expect(changes.map((c) => c.current).sort()).toEqual(['reachable', expected].sort());
    }
  });
});

describe('ProbeEngine with probe threads', () => {
  it('probes many targets across its threads, and stop() closes every socket and thread', async () => {
    const registry = new Registry();
    const before = openFds();
    const engine = new ProbeEngine(
      { allowCidrs: ['127.0.0.0/8'], intervalMs: 300, fastIntervalMs: 20, timeoutMs: 500, tcpThreads: 3, concurrency: 64 },
      { logger: createLogger({ level: 'silent' }), registry },
    );
    // One listening host and 200 refusing ones (nothing listens on closedPort anywhere on 127/8).
    const refusing = Array.from({ length: 200 }, (_, n) => ({ address: `127.0.3.${n + 1}`, ports: [closedPort], owners: ['ns/closed'] }));
    engine.setTargets([{ address: '127.0.0.2', ports: [port], owners: ['ns/up'] }, ...refusing]);
    await engine.start();
    await engine.firstRoundComplete();
    // Keep probing for a few rounds, so that every thread ran many probes.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const states = new Set(engine.snapshot().map((s) => s.state));
    expect(probeThreads()).toBe(3);
    await engine.stop();
    expect(states).toEqual(new Set(['reachable']));
    const probes = (await registry.getSingleMetric('eps_probe_probes_total')!.get()).values;
    expect(probes.find((v) => v.labels.result === 'refused')!.value).toBeGreaterThan(600);
    expect(probes.some((v) => v.labels.result === 'error')).toBe(false);
    // Threads end asynchronously after terminate(); their sockets are already closed.
    await vi.waitFor(() => expect(probeThreads()).toBe(0), { timeout: 5000 });
    expect(openFds()).toBe(before);
  });
});

describe('ProbeEngine switching probe threads while running', () => {
  it('moves probing between the main thread and probe threads without cutting a probe short or changing a state', async () => {
    const registry = new Registry();
    const options = { allowCidrs: ['127.0.0.0/8'], intervalMs: 100, fastIntervalMs: 20, timeoutMs: 500 };
    const engine = new ProbeEngine(options, { logger: createLogger({ level: 'silent' }), registry });
    const changes: ReachabilityChange[] = [];
    engine.onChange((change) => changes.push(change));
    // ~1,000 probes/s: at every switch some are on their way to, in or back from the old threads.
    const refusing = Array.from({ length: 100 }, (_, n) => ({ address: `127.0.4.${n + 1}`, ports: [closedPort], owners: ['ns/closed'] }));
    engine.setTargets([{ address: '127.0.0.2', ports: [port], owners: ['ns/up'] }, ...refusing]);
    await engine.start();
    try {
      await engine.firstRoundComplete();
      for (const tcpThreads of [2, 0, 1]) {
        engine.updateOptions({ ...options, tcpThreads });
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await vi.waitFor(() => expect(probeThreads()).toBe(tcpThreads), { timeout: 5000 });
      }
    } finally {
      await engine.stop();
    }
    // Each target became reachable once (an RST counts as reachable), and nothing changed after.
    expect(changes.map((c) => c.current)).toEqual(Array.from({ length: 101 }, () => 'reachable'));
    const probes = (await registry.getSingleMetric('eps_probe_probes_total')!.get()).values;
    // ~30 probes per target in 3 s at a 100 ms interval; starting threads (with the TypeScript loader here) takes some.
    expect(probes.find((v) => v.labels.result === 'success')!.value).toBeGreaterThan(15);
    expect(probes.find((v) => v.labels.result === 'refused')!.value).toBeGreaterThan(1500);
    // Old threads finish their probes before they end: no error, failure or timeout.
    expect(probes.filter((v) => v.labels.result !== 'success' && v.labels.result !== 'refused')).toEqual([]);
  });
});

describe('probe command', () => {
  async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      return { code: await runProbeCommand(argv), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('prints one JSON row per address and port and exits 0 when all answer', async () => {
    const { code, stdout } = await run(['--json', '--allow', '127.0.0.0/8', `127.0.0.2:${port}`, `127.0.0.3:${closedPort}`]);
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { address: string; port: number; protocol: string; result: string }[];
    expect(rows.map(({ address, port: p, protocol, result }) => ({ address, port: p, protocol, result }))).toEqual([
      { address: '127.0.0.2', port, protocol: 'tcp', result: 'success' },
      { address: '127.0.0.3', port: closedPort, protocol: 'tcp', result: 'refused' },
    ]);
  });

  it('prints a table, pings addresses without a port, and exits 1 when one does not answer', async () => {
    const { code, stdout } = await run(['--allow', '127.0.0.0/8', '--allow', '::1/128', '--both', '--timeout', '300', `127.0.0.2:${port}`, `[::1]:${closedPort}`]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ADDRESS\s+PORT\s+PROTOCOL\s+RESULT\s+MS/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['127.0.0.2', String(port), 'tcp', 'success'],
      ['127.0.0.2', '-', 'icmp', 'success'],
      ['::1', String(closedPort), 'tcp', 'refused'],
      ['::1', '-', 'icmp', 'success'],
    ]);
    expect(code).toBe(0);
  });

  it('refuses loopback unless allowed explicitly', async () => {
    const { code, stderr } = await run([`127.0.0.2:${port}`]);
    expect(code).toBe(2);
    expect(stderr).toContain('refusing 127.0.0.2: loopback address');
  });

  it.each([
    { name: 'a hostname', argv: ['example.com:80'], message: '"example.com:80" is not an IP address' },
    { name: 'an IPv6 address with a port but no brackets', argv: ['::1:80x'], message: 'is not an IP address' },
    { name: 'two modes', argv: ['--tcp', '--icmp', '10.0.0.1'], message: 'choose one of --tcp, --icmp, --both' },
    { name: 'a bad timeout', argv: ['--timeout', '0', '10.0.0.1'], message: '--timeout must be a positive integer' },
    { name: 'no address', argv: [], message: 'no address given' },
  ])('exits 2 on $name', async ({ argv, message }) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });
});
