import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { ProbeEngine } from '../../src/probe/engine.js';
import { IcmpUnavailableError } from '../../src/probe/icmp.js';
import { HalfOpenUnavailableError } from '../../src/probe/syn-native.js';
import type { ProbeEngineOptions } from '../../src/probe/options.js';
import type { ProbeOutcome, ProbeResult } from '../../src/probe/outcome.js';
import type { ReachabilityChange } from '../../src/probe/results.js';
import type { TcpTransport, Transports } from '../../src/probe/transports.js';
import type { Target } from '../../src/contract/target.js';

const BASE: Partial<ProbeEngineOptions> = {
  intervalMs: 1000,
  fastIntervalMs: 100,
  timeoutMs: 50,
  failureThreshold: 2,
  successThreshold: 2,
  allowCidrs: ['10.0.0.0/8', 'fd00::/8'],
};

/**
 * A fake network: each address answers with its current result; every call is recorded with its time
 * (and, for TCP, the tcpThreads of the transport that ran it).
 */
class FakeNetwork {
  readonly calls: { address: string; protocol: 'tcp' | 'icmp'; at: number; tcpThreads?: number; halfOpen?: true }[] = [];
  readonly results = new Map<string, ProbeResult>();
  /** Per address, what TCP answers instead of `results` (mode both: the protocols differ). */
  readonly tcpResults = new Map<string, ProbeResult>();
  /** What happened to the TCP transports, by their tcpThreads: open, closeWhenIdle, close. */
  readonly tcpTransports: string[] = [];
  icmpClosed = 0;
  /** When set, openIcmp throws this. */
  icmpError: Error | undefined;
  /** What happened to half-open transports: open, closeWhenIdle, close. */
  readonly halfOpenTransports: string[] = [];
  /** When set, openHalfOpen throws this. */
  halfOpenError: Error | undefined;
  /** When set, probes hang until released (to observe the pool). */
  hold: Promise<void> | undefined;
  inFlight = 0;
  maxInFlight = 0;

  readonly transports: Transports = {
    openTcp: ({ tcpThreads }): TcpTransport => {
      this.tcpTransports.push(`open ${tcpThreads}`);
      return {
        probe: (address) => this.answer(address, 'tcp', tcpThreads),
        close: async () => void this.tcpTransports.push(`close ${tcpThreads}`),
        closeWhenIdle: async () => void this.tcpTransports.push(`closeWhenIdle ${tcpThreads}`),
      };
    },
    openHalfOpen: (): TcpTransport => {
      if (this.halfOpenError) throw this.halfOpenError;
      this.halfOpenTransports.push('open');
      return {
        probe: (address) => this.answer(address, 'tcp', undefined, true),
        close: async () => void this.halfOpenTransports.push('close'),
        closeWhenIdle: async () => void this.halfOpenTransports.push('closeWhenIdle'),
      };
    },
    openIcmp: () => {
      if (this.icmpError) throw this.icmpError;
      return { ping: (address) => this.answer(address, 'icmp'), close: () => (this.icmpClosed += 1) };
    },
  };

  private async answer(address: string, protocol: 'tcp' | 'icmp', tcpThreads?: number, halfOpen?: true): Promise<ProbeOutcome> {
    this.calls.push({ address, protocol, at: Date.now(), ...(tcpThreads !== undefined && { tcpThreads }), ...(halfOpen && { halfOpen }) });
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await this.hold;
      const result = (protocol === 'tcp' ? this.tcpResults.get(address) : undefined) ?? this.results.get(address) ?? 'success';
      if (result === 'error' && address.endsWith('.66')) throw new Error('prober bug');
      return { protocol, result, durationMs: 1 };
    } finally {
      this.inFlight -= 1;
    }
  }

  callsTo(address: string): number[] {
    return this.calls.filter((call) => call.address === address).map((call) => call.at);
  }
}

function setup(options: Partial<ProbeEngineOptions> = {}, random: () => number = () => 0.5) {
  const network = new FakeNetwork();
  const lines: Record<string, unknown>[] = [];
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const registry = new Registry();
  const engine = new ProbeEngine({ ...BASE, ...options }, { logger: createLogger({ destination }), registry, random, transports: network.transports });
  const changes: ReachabilityChange[] = [];
  engine.onChange((change) => changes.push(change));
  return { engine, network, lines, registry, changes };
}

function target(address: string, owners = ['ns/svc'], ports = [80]): Target {
  return { address, ports, owners };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { labels: Record<string, string | number>; value: number }[];
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ProbeEngine scheduling', () => {
  it('spreads the first probes of a new target set over the first interval', async () => {
    let i = 0;
    const { engine, network } = setup({}, () => (i++ % 100) / 100);
    engine.setTargets(Array.from({ length: 100 }, (_, n) => target(`10.0.0.${n + 1}`)));
    await engine.start();
    await vi.advanceTimersByTimeAsync(999);
    const firstProbes = new Map<string, number>();
    for (const call of network.calls) if (!firstProbes.has(call.address)) firstProbes.set(call.address, call.at - 1_000_000);
    const offsets = [...firstProbes.values()];
    expect(offsets).toHaveLength(100);
    // Ten probes in each tenth of the interval: no burst at start.
    for (let tenth = 0; tenth < 10; tenth++) {
      expect(offsets.filter((o) => o >= tenth * 100 && o < (tenth + 1) * 100)).toHaveLength(10);
    }
    await engine.stop();
  });

  it('probes a healthy target once per interval, with at most 10% jitter', async () => {
    let draws = 0;
    const { engine, network } = setup({}, () => (draws++ % 2 === 0 ? 0 : 0.999));
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(10_000);
    const times = network.callsTo('10.0.0.1');
    const gaps = times.slice(1).map((t, n) => t - times[n]!);
    expect(gaps.length).toBeGreaterThanOrEqual(8);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(900);
      expect(gap).toBeLessThanOrEqual(1100);
    }
    expect(new Set(gaps).size).toBeGreaterThan(1);
    await engine.stop();
  });

  it('re-probes after fastIntervalMs to confirm a failure, and reports unreachable after failureThreshold probes', async () => {
    const { engine, network, changes } = setup();
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(500); // first probe at 0.5 × interval: reachable
    expect(changes).toEqual([{ address: '10.0.0.1', owners: ['ns/svc'], previous: 'unknown', current: 'reachable' }]);
    network.results.set('10.0.0.1', 'timeout');
    await vi.advanceTimersByTimeAsync(1000); // failure 1
    const failedAt = Date.now();
    await vi.advanceTimersByTimeAsync(100); // failure 2 after the fast interval
    expect(network.callsTo('10.0.0.1').at(-1)).toBe(failedAt + 100);
    expect(changes.at(-1)).toEqual({ address: '10.0.0.1', owners: ['ns/svc'], previous: 'reachable', current: 'unreachable' });
    await engine.stop();
  });

  it('emits each change once, and counts unreachable targets until they recover or leave', async () => {
    const { engine, network, changes, registry } = setup();
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2'), target('10.0.0.3')]);
    network.results.set('10.0.0.1', 'timeout');
    network.results.set('10.0.0.2', 'timeout');
    await engine.start();
    await vi.advanceTimersByTimeAsync(5000); // many failed probes, one change each
    const unreachable = () => metricValue(registry, 'eps_probe_targets_unreachable', {});
    expect(changes.map((c) => `${c.address} ${c.current}`).sort()).toEqual(['10.0.0.1 unreachable', '10.0.0.2 unreachable', '10.0.0.3 reachable']);
    expect(await unreachable()).toBe(2);
    network.results.set('10.0.0.1', 'success');
    await vi.advanceTimersByTimeAsync(3000);
    expect(changes.filter((c) => c.address === '10.0.0.1').map((c) => c.current)).toEqual(['unreachable', 'reachable']);
    expect(await unreachable()).toBe(1);
    engine.setTargets([target('10.0.0.1'), target('10.0.0.3')]);
    expect(await unreachable()).toBe(0);
    await engine.stop();
  });

  it('keeps probing the other targets when one prober throws', async () => {
    const { engine, network, lines, registry } = setup();
    network.results.set('10.0.0.66', 'error'); // the fake throws for .66
    engine.setTargets([target('10.0.0.66'), target('10.0.0.2')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(network.callsTo('10.0.0.66').length).toBeGreaterThanOrEqual(4);
    expect(engine.snapshot().find((s) => s.address === '10.0.0.66')).toMatchObject({ state: 'unknown', lastError: 'tcp error: Error: prober bug' });
    expect(lines.some((l) => l.msg === 'prober threw; counted as a probe error')).toBe(true);
    expect(await metricValue(registry, 'eps_probe_probes_total', { protocol: 'tcp', result: 'error' })).toBeGreaterThanOrEqual(4);
    await engine.stop();
  });

  it('never has more probes in flight than the concurrency limit', async () => {
    const { engine, network } = setup({ concurrency: 3 }, Math.random);
    let release!: () => void;
    network.hold = new Promise((resolve) => (release = resolve));
    engine.setTargets(Array.from({ length: 20 }, (_, n) => target(`10.0.1.${n + 1}`)));
    await engine.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(network.maxInFlight).toBe(3);
    release();
    await vi.advanceTimersByTimeAsync(3000);
    expect(network.maxInFlight).toBe(3);
    expect(new Set(network.calls.map((c) => c.address)).size).toBe(20);
    await engine.stop();
  });
});

describe('ProbeEngine target set', () => {
  it('adds, removes and changes targets, keeping the state of unchanged ones', async () => {
    const { engine, network } = setup();
    expect(engine.setTargets([target('10.0.0.1'), target('10.0.0.2'), target('10.0.0.3')])).toEqual({ added: 3, removed: 0, changed: 0, refused: [] });
    await engine.start();
    await vi.advanceTimersByTimeAsync(600);
    const probesBefore = network.callsTo('10.0.0.1').length;
    const diff = engine.setTargets([target('10.0.0.1'), target('10.0.0.2', ['ns/svc', 'ns/other']), target('10.0.0.4')]);
    expect(diff).toEqual({ added: 1, removed: 1, changed: 1, refused: [] });
    const states = Object.fromEntries(engine.snapshot().map((s) => [s.address, s.state]));
    expect(states).toEqual({ '10.0.0.1': 'reachable', '10.0.0.2': 'reachable', '10.0.0.4': 'unknown' });
    // The unchanged target keeps its timer: no extra probe caused by the diff.
    expect(network.callsTo('10.0.0.1').length).toBe(probesBefore);
    await vi.advanceTimersByTimeAsync(3000);
    expect(network.callsTo('10.0.0.3').length).toBe(1);
    await engine.stop();
  });

  it('merges duplicate addresses and canonicalises IPv6', () => {
    const { engine } = setup();
    engine.setTargets([target('fd00:0::1', ['ns/b'], [443]), target('FD00::1', ['ns/a'], [80, 443])]);
    expect(engine.snapshot()).toEqual([{ address: 'fd00::1', owners: ['ns/a', 'ns/b'], ports: [80, 443], state: 'unknown' }]);
  });

  it('refuses addresses outside the allow-list with one log line per address, not per update', () => {
    const { engine, lines, registry } = setup();
    const targets = [target('10.0.0.1'), target('192.0.2.1'), target('127.0.0.1'), target('not-an-ip')];
    expect(engine.setTargets(targets).refused).toEqual(['192.0.2.1', '127.0.0.1', 'not-an-ip']);
    engine.setTargets(targets);
    const refusals = lines.filter((l) => l.msg === 'target refused by the allow-list; it will not be probed');
    expect(refusals.map((l) => [l.address, l.reason])).toEqual([
      ['192.0.2.1', 'outside allowCidrs'],
      ['127.0.0.1', 'loopback address'],
      ['not-an-ip', 'not an IP address'],
    ]);
    expect(engine.snapshot().map((s) => s.address)).toEqual(['10.0.0.1']);
    return expect(metricValue(registry, 'eps_probe_target_refused_total')).resolves.toBe(3);
  });

  it('deletes the per-target metric series of a removed target', async () => {
    const { engine, registry } = setup({ perTargetMetrics: true });
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(await metricValue(registry, 'eps_probe_target_reachable', { address: '10.0.0.2' })).toBe(1);
    engine.setTargets([target('10.0.0.1')]);
    expect(await metricValue(registry, 'eps_probe_target_reachable', { address: '10.0.0.2' })).toBeUndefined();
    expect(await metricValue(registry, 'eps_probe_targets')).toBe(1);
    await engine.stop();
  });

  it('exports no per-target series unless perTargetMetrics is on', async () => {
    const { engine, registry } = setup();
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(await metricValue(registry, 'eps_probe_target_reachable', { address: '10.0.0.1' })).toBeUndefined();
    await engine.stop();
  });
});

describe('ProbeEngine lifecycle', () => {
  it('reads each target\'s last round-trip time in place, as the snapshot has it', async () => {
    const { engine } = setup();
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(1100);
    const fromSnapshot = engine.snapshot().map(({ address, lastRttMs }) => ({ address, lastRttMs }));
    expect(fromSnapshot).toEqual([{ address: '10.0.0.1', lastRttMs: 1 }, { address: '10.0.0.2', lastRttMs: 1 }]);
    expect(Array.from(engine.rtts(), ({ address, lastRttMs }) => ({ address, lastRttMs }))).toEqual(fromSnapshot);
    await engine.stop();
  });

  it('resolves firstRoundComplete once every target has a known state', async () => {
    const { engine, network } = setup();
    network.results.set('10.0.0.2', 'timeout');
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2')]);
    let done = false;
    void engine.firstRoundComplete().then(() => (done = true));
    await engine.start();
    await vi.advanceTimersByTimeAsync(550); // both probed once: .2 still unknown
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(110); // .2's confirmation probe
    expect(done).toBe(true);
    expect(engine.snapshot().map((s) => s.state)).toEqual(['reachable', 'unreachable']);
    await engine.stop();
  });

  it('resolves firstRoundComplete at its deadline when the pool cannot keep up', async () => {
    const { engine, network, lines } = setup({ concurrency: 1 });
    network.hold = new Promise(() => undefined); // probes never finish
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2')]);
    await engine.start();
    let done = false;
    void engine.firstRoundComplete().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(2 * 1000 + 2 * (100 + 50) - 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(lines.find((l) => l.msg?.toString().startsWith('first probe round incomplete'))).toMatchObject({ pending: 2 });
  });

  it('stops probing, closes ICMP, and can be stopped twice', async () => {
    const { engine, network } = setup({ mode: 'icmp' });
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(2000);
    await engine.stop();
    await engine.stop();
    const probes = network.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(network.calls.length).toBe(probes);
    expect(network.icmpClosed).toBe(1);
    expect(network.calls.every((c) => c.protocol === 'icmp')).toBe(true);
  });

  it('applies a shorter interval at once without losing state', async () => {
    const { engine, network } = setup({ intervalMs: 60_000 });
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(engine.snapshot()[0]!.state).toBe('reachable');
    engine.updateOptions({ ...BASE, intervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(network.callsTo('10.0.0.1').length).toBeGreaterThanOrEqual(5);
    expect(engine.snapshot()[0]!.state).toBe('reachable');
    await engine.stop();
  });

  it('drops targets that a narrower allow-list no longer permits', () => {
    const { engine } = setup();
    engine.setTargets([target('10.0.0.1'), target('10.1.0.1')]);
    engine.updateOptions({ ...BASE, allowCidrs: ['10.0.0.0/16'] });
    expect(engine.snapshot().map((s) => s.address)).toEqual(['10.0.0.1']);
  });

  it('admits a refused target once a wider allow-list covers it, merged duplicates included', () => {
    const { engine } = setup();
    engine.setTargets([target('10.0.0.1', ['ns/b'], [443]), target('10.0.0.1', ['ns/a']), target('192.168.0.1')]);
    engine.updateOptions({ ...BASE, allowCidrs: [...BASE.allowCidrs!, '192.168.0.0/16'] });
    expect(engine.snapshot().map(({ address, owners, ports }) => ({ address, owners, ports }))).toEqual([
      { address: '10.0.0.1', owners: ['ns/a', 'ns/b'], ports: [80, 443] },
      { address: '192.168.0.1', owners: ['ns/svc'], ports: [80] },
    ]);
  });

  it('probes through the given transports whatever tcpThreads says, with a new TCP transport (opened before the old one retires) once tcpThreads changes', async () => {
    const { engine, network } = setup({ tcpThreads: 2 });
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(engine.snapshot()[0]!.state).toBe('reachable');
    engine.updateOptions({ ...BASE, tcpThreads: 0 });
    engine.updateOptions({ ...BASE, tcpThreads: 0, concurrency: 8 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(network.calls.map((call) => `${call.protocol} ${call.tcpThreads}`)).toEqual(['tcp 2', 'tcp 0', 'tcp 0']);
    await engine.stop();
    expect(network.tcpTransports).toEqual(['open 2', 'open 0', 'closeWhenIdle 2', 'close 0']);
  });

  it('rejects a bad option with a TypeError naming it and keeps the old options', () => {
    const { engine } = setup();
    expect(() => engine.updateOptions({ ...BASE, failureThreshold: 0 })).toThrow(/^failureThreshold must be/);
    expect(() => engine.updateOptions({ ...BASE, allowCidrs: ['10.0.0.0/99'] })).toThrow(TypeError);
  });
});

describe('ProbeEngine without raw-socket permission', () => {
  const denied = new IcmpUnavailableError('raw ICMP sockets not permitted (Operation not permitted); CAP_NET_RAW is needed');

  it('says so at start and falls back to TCP with icmpUnavailable=fallback-tcp', async () => {
    const { engine, network, lines } = setup({ mode: 'icmp' });
    network.icmpError = denied;
    engine.setTargets([target('10.0.0.1'), target('10.0.0.2', ['ns/svc'], [])]);
    await engine.start();
    expect(lines.find((l) => l.level === 'error')).toMatchObject({
      msg: 'ICMP probing configured but unavailable; probing with TCP only, targets without a port stay unknown',
      reason: denied.message,
    });
    await vi.advanceTimersByTimeAsync(3000);
    const states = Object.fromEntries(engine.snapshot().map((s) => [s.address, [s.state, s.lastError]]));
    expect(states['10.0.0.1']).toEqual(['reachable', undefined]);
    expect(states['10.0.0.2']![0]).toBe('unknown');
    expect(states['10.0.0.2']![1]).toContain('no TCP port to probe and ICMP unavailable');
    expect(network.calls.every((c) => c.protocol === 'tcp')).toBe(true);
    await engine.stop();
  });

  it('refuses to start with icmpUnavailable=fail', async () => {
    const { engine, network } = setup({ mode: 'both', icmpUnavailable: 'fail' });
    network.icmpError = denied;
    await expect(engine.start()).rejects.toMatchObject({
      name: 'StartupError',
      message: expect.stringContaining('ICMP, which is unavailable here (raw ICMP sockets not permitted'),
      fix: expect.stringContaining('NET_RAW'),
    });
  });
});

describe('ProbeEngine in mode both', () => {
  it.each([
    { name: 'TCP timeout but ICMP answers: reachable', tcp: 'timeout', icmp: 'success', expected: 'reachable' },
    { name: 'TCP refused, ICMP timeout: reachable (refused proves the path)', tcp: 'refused', icmp: 'timeout', expected: 'reachable' },
    { name: 'both time out: unreachable', tcp: 'timeout', icmp: 'timeout', expected: 'unreachable' },
    { name: 'a local TCP error and an ICMP failure: unreachable', tcp: 'error', icmp: 'failure', expected: 'unreachable' },
    { name: 'both error: unknown', tcp: 'error', icmp: 'error', expected: 'unknown' },
  ] as const)('$name', async ({ tcp, icmp, expected }) => {
    const { engine, network } = setup({ mode: 'both' });
    network.tcpResults.set('10.0.0.1', tcp);
    network.results.set('10.0.0.1', icmp);
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(3000);
    expect(engine.snapshot()[0]!.state).toBe(expected);
    await engine.stop();
  });
});

describe('ProbeEngine with tcpProbe half-open', () => {
  it('probes TCP ports half-open, lets that transport finish when an options change goes back to connect(), and closes on stop', async () => {
    const { engine, network } = setup({ tcpProbe: 'half-open' });
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    await vi.advanceTimersByTimeAsync(1100);
    expect(network.calls.map((c) => c.halfOpen)).toEqual([true]);
    engine.updateOptions({ ...BASE, tcpProbe: 'connect' });
    expect(network.halfOpenTransports).toEqual(['open', 'closeWhenIdle']);
    await vi.advanceTimersByTimeAsync(1100);
    expect(network.calls.map((c) => c.halfOpen)).toEqual([true, undefined]);
    engine.updateOptions({ ...BASE, tcpProbe: 'half-open' });
    await engine.stop();
    expect(network.halfOpenTransports).toEqual(['open', 'closeWhenIdle', 'open', 'close']);
  });

  const denied = new HalfOpenUnavailableError('raw TCP sockets not permitted (opening a raw socket: Operation not permitted); CAP_NET_RAW is needed');

  it('says so at start and probes with connect() with halfOpenUnavailable=fallback-connect', async () => {
    const { engine, network, lines } = setup({ tcpProbe: 'half-open' });
    network.halfOpenError = denied;
    engine.setTargets([target('10.0.0.1')]);
    await engine.start();
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ msg: 'half-open TCP probing configured but unavailable; probing with connect()', reason: denied.message });
    await vi.advanceTimersByTimeAsync(3000);
    expect(engine.snapshot()[0]!.state).toBe('reachable');
    expect(network.calls.length).toBeGreaterThan(0);
    expect(network.calls.every((c) => c.protocol === 'tcp' && !c.halfOpen)).toBe(true);
    await engine.stop();
  });

  it('refuses to start with halfOpenUnavailable=fail', async () => {
    const { engine, network } = setup({ tcpProbe: 'half-open', halfOpenUnavailable: 'fail' });
    network.halfOpenError = denied;
    await expect(engine.start()).rejects.toMatchObject({
      name: 'StartupError',
      message: expect.stringContaining('probe.tcpProbe half-open is unavailable here (raw TCP sockets not permitted'),
      fix: expect.stringContaining('NET_RAW'),
    });
  });
});
