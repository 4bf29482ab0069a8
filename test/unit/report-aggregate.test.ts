import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Quorum } from '../../src/config/config.js';
import { aggregate, isLive, liveMembers, onConfiguration, type AggregateInput } from '../../src/report/aggregate.js';
import { assignees } from '../../src/report/rendezvous.js';
import type { ProbeReportSpec } from '../../src/report/types.js';
import { ADDRESS_POOL, NOW, makeReport } from './fixtures.js';

const STALE = new Date(NOW.getTime() - 60_000).toISOString();
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];

function run(reports: ProbeReportSpec[], overrides: Partial<AggregateInput> = {}) {
  const verdicts = aggregate({
    reports,
    now: NOW,
    staleAfterMs: 30_000,
    quorum: 'majority',
    maxEjectionShare: 1,
    serviceImports: [{ key: 'ns/svc', addresses: ADDRESSES }],
    previous: new Map(),
    ...overrides,
  });
  const verdict = verdicts.get('ns/svc')!;
  return { ...verdict, disconnected: [...verdict.disconnected].sort() };
}

describe('aggregate quorum', () => {
  // Three nodes; node a alone cannot reach .1, a and b cannot reach .2, all three cannot reach .3.
  const reports = [makeReport('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3']), makeReport('b', ['10.0.0.2', '10.0.0.3']), makeReport('c', ['10.0.0.3'])];

  it.each([
    { name: 'any: one voter suffices', quorum: 'any' as Quorum, expected: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] },
    { name: 'majority: more than half of the voters', quorum: 'majority' as Quorum, expected: ['10.0.0.2', '10.0.0.3'] },
    { name: 'all: every voter', quorum: 'all' as Quorum, expected: ['10.0.0.3'] },
  ])('$name', ({ quorum, expected }) => {
    expect(run(reports, { quorum }).disconnected).toEqual(expected);
  });

  it('does not reach a majority with half of the voters', () => {
    expect(run([makeReport('a', ['10.0.0.1']), makeReport('b', [])]).disconnected).toEqual([]);
  });

  it('counts an address listed under another ServiceImport of the same node', () => {
    const other = makeReport('a', [], { serviceImports: [{ namespace: 'ns', name: 'other', unreachable: ['10.0.0.1'] }] });
    expect(run([other]).disconnected).toEqual(['10.0.0.1']);
  });
});

describe('aggregate live reports', () => {
  it.each([
    { name: 'ignores a stale report', extra: makeReport('b', ['10.0.0.1'], { heartbeatTime: STALE }) },
    { name: 'ignores a suspect report', extra: makeReport('b', ['10.0.0.1'], { suspect: true }) },
  ])('$name', ({ extra }) => {
    expect(run([makeReport('a', []), extra], { quorum: 'any' }).disconnected).toEqual([]);
  });

  it('keeps the previous state of addresses no live report covers', () => {
    const verdict = run([makeReport('b', ['10.0.0.1'], { heartbeatTime: STALE })], { previous: new Map([['ns/svc', new Set(['10.0.0.2'])]]) });
    expect(verdict).toEqual({ disconnected: ['10.0.0.2'], heldBack: [], uncovered: ADDRESSES });
  });

  it('restores a previously disconnected address once covered voters see it reachable', () => {
    expect(run([makeReport('a', [])], { previous: new Map([['ns/svc', new Set(['10.0.0.2'])]]) }).disconnected).toEqual([]);
  });

  it.each([
    { name: 'a fresh heartbeat', heartbeatTime: NOW.toISOString(), live: true },
    { name: 'a heartbeat exactly staleAfterMs old', heartbeatTime: new Date(NOW.getTime() - 30_000).toISOString(), live: true },
    { name: 'an older heartbeat', heartbeatTime: STALE, live: false },
    { name: 'a heartbeat in the future (clock skew)', heartbeatTime: new Date(NOW.getTime() + 5_000).toISOString(), live: true },
    { name: 'an unparsable heartbeat', heartbeatTime: 'yesterday', live: false },
  ])('isLive is $live for $name', ({ heartbeatTime, live }) => {
    expect(isLive(makeReport('a', [], { heartbeatTime }), NOW, 30_000)).toBe(live);
  });

  it('liveMembers lists live, non-suspect nodes once, sorted', () => {
    const reports = [
      makeReport('c', []),
      makeReport('a', []),
      makeReport('b', [], { suspect: true }),
      makeReport('d', [], { heartbeatTime: STALE }),
      makeReport('a', []),
    ];
    expect(liveMembers(reports, NOW, 30_000)).toEqual(['a', 'c']);
  });
});

describe('aggregate sharding', () => {
  it('counts only the voters assigned to an address', () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'];
    const owners = assignees('10.0.0.1', nodes, 2);
    // Every node that does not probe .1 lists it unreachable; the two that probe it do not.
    const reports = nodes.map((n) => makeReport(n, owners.includes(n) ? [] : ['10.0.0.1'], { probeReplicas: 2 }));
    expect(run(reports, { quorum: 'any' }).disconnected).toEqual([]);
  });

  it('reaches the quorum among the assigned voters only', () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'];
    const owners = assignees('10.0.0.1', nodes, 2);
    const reports = nodes.map((n) => makeReport(n, owners.includes(n) ? ['10.0.0.1'] : [], { probeReplicas: 2 }));
    expect(run(reports, { quorum: 'all' }).disconnected).toEqual(['10.0.0.1']);
  });

  it('counts the voters of each probeReplicas group while a config change rolls out', () => {
    // a and b still probe everything (0); c, d and e probe by shard (2 owners over all five nodes).
    const replicasOf = (n: string): number => (n === 'a' || n === 'b' ? 0 : 2);
    const shardOwner = assignees('10.0.0.1', ['a', 'b', 'c', 'd', 'e'], 2).find((n) => replicasOf(n) === 2)!;
    const others = ['c', 'd', 'e'].filter((n) => n !== shardOwner);
    const report = (n: string, down: boolean) => makeReport(n, down ? ['10.0.0.1'] : [], { probeReplicas: replicasOf(n) });
    const unsharded = [report('a', true), report('b', true), ...others.map((n) => report(n, false))];
    expect(run([...unsharded, report(shardOwner, true)], { quorum: 'all' }).disconnected).toEqual(['10.0.0.1']);
    expect(run([...unsharded, report(shardOwner, false)], { quorum: 'all' }).disconnected).toEqual([]);
  });
});

describe('aggregate ejection cap', () => {
  const allDown = [makeReport('a', ADDRESSES)];

  it.each([
    { name: 'allows floor(share × addresses)', share: 0.5, addresses: ADDRESSES, disconnected: 2 },
    { name: 'allows nothing with share 0', share: 0, addresses: ADDRESSES, disconnected: 0 },
    { name: 'never prunes the only address at share 0.5', share: 0.5, addresses: ['10.0.0.1'], disconnected: 0 },
    { name: 'allows one of two at share 0.5', share: 0.5, addresses: ['10.0.0.1', '10.0.0.2'], disconnected: 1 },
    { name: 'allows everything with share 1', share: 1, addresses: ADDRESSES, disconnected: 4 },
    { name: 'counts each address once', share: 0.5, addresses: [...ADDRESSES, ...ADDRESSES], disconnected: 2 },
  ])('$name', ({ share, addresses, disconnected }) => {
    const verdict = run(allDown, { maxEjectionShare: share, serviceImports: [{ key: 'ns/svc', addresses }] });
    expect(verdict.disconnected).toHaveLength(disconnected);
    expect(verdict.heldBack).toHaveLength(new Set(addresses).size - disconnected);
  });

  it('avoids floating-point truncation (0.29 × 100 allows 29)', () => {
    const addresses = Array.from({ length: 100 }, (_, i) => `10.0.1.${i}`);
    const verdict = run([makeReport('a', addresses)], { maxEjectionShare: 0.29, serviceImports: [{ key: 'ns/svc', addresses }] });
    expect(verdict.disconnected).toHaveLength(29);
  });

  it('keeps previously disconnected addresses first, then by address order', () => {
    const verdict = run(allDown, { maxEjectionShare: 0.5, previous: new Map([['ns/svc', new Set(['10.0.0.4'])]]) });
    expect(verdict).toMatchObject({ disconnected: ['10.0.0.1', '10.0.0.4'], heldBack: ['10.0.0.2', '10.0.0.3'] });
  });

  it('counts uncovered, previously disconnected addresses against the cap', () => {
    const verdict = run([], { maxEjectionShare: 0.5, previous: new Map([['ns/svc', new Set(ADDRESSES)]]) });
    expect(verdict).toMatchObject({ disconnected: ['10.0.0.1', '10.0.0.2'], heldBack: ['10.0.0.3', '10.0.0.4'] });
  });
});

describe('aggregate options', () => {
  it.each([
    { name: 'staleAfterMs 0', overrides: { staleAfterMs: 0 }, message: /^staleAfterMs: / },
    { name: 'an unknown quorum', overrides: { quorum: 'most' as Quorum }, message: /^quorum: / },
    { name: 'maxEjectionShare above 1', overrides: { maxEjectionShare: 2 }, message: /^maxEjectionShare: / },
  ])('rejects $name with a TypeError naming the option', ({ overrides, message }) => {
    expect(() => run([], overrides)).toThrow(message);
  });
});

describe('aggregate properties', () => {
  const reportArb = fc.record({
    unreachable: fc.subarray(ADDRESS_POOL),
    live: fc.boolean(),
    suspect: fc.boolean(),
  });

  it('equals the naive quorum rule when the cap does not bind and every address is covered', () => {
    fc.assert(
      fc.property(fc.array(reportArb, { maxLength: 7 }), fc.constantFrom<Quorum>('any', 'majority', 'all'), (specs, quorum) => {
        const reports = specs.map((s, i) =>
          makeReport(`node-${i}`, s.unreachable, { suspect: s.suspect, heartbeatTime: s.live ? NOW.toISOString() : STALE }),
        );
        const voters = specs.filter((s) => s.live && !s.suspect);
        fc.pre(voters.length > 0);
        const expected = ADDRESS_POOL.filter((address) => {
          const down = voters.filter((v) => v.unreachable.includes(address)).length;
          return quorum === 'any' ? down >= 1 : quorum === 'majority' ? down > voters.length / 2 : down === voters.length;
        });
        expect(run(reports, { quorum, serviceImports: [{ key: 'ns/svc', addresses: ADDRESS_POOL }] }).disconnected).toEqual(expected);
      }),
    );
  });

  const reportsArb = fc.array(reportArb, { maxLength: 5 });
  const shareArb = fc.double({ min: 0, max: 1, noNaN: true });

  it('never disconnects more than the cap allows, nor anything outside the ServiceImport', () => {
    fc.assert(
      fc.property(reportsArb, shareArb, fc.subarray(ADDRESS_POOL), (specs, share, previous) => {
        const reports = specs.map((s, i) => makeReport(`node-${i}`, s.unreachable, { suspect: s.suspect }));
        const addresses = ADDRESS_POOL.slice(0, 5);
        const verdict = run(reports, {
          quorum: 'any',
          maxEjectionShare: share,
          serviceImports: [{ key: 'ns/svc', addresses }],
          previous: new Map([['ns/svc', new Set(previous)]]),
        });
        expect(verdict.disconnected.length).toBeLessThanOrEqual(Math.floor(share * addresses.length + 1e-9));
        expect(verdict.disconnected.every((a) => addresses.includes(a))).toBe(true);
      }),
    );
  });

  it('decides 100k addresses for 1,000 sharded nodes in a few seconds at most', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
    const addresses = Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    const reports = nodes.map((n, i) => makeReport(n, i === 0 ? addresses.slice(0, 100) : [], { probeReplicas: 3 }));
    const started = performance.now();
    const verdict = run(reports, { maxEjectionShare: 0.5, serviceImports: [{ key: 'ns/svc', addresses }] });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(verdict.uncovered).toEqual([]);
  });
});

describe('onConfiguration', () => {
  it('keeps only the reports of agents running the configuration in force', () => {
    const reports = [makeReport('a', [], { configVersion: '7' }), makeReport('b', [], { configVersion: '6' })];
    expect(onConfiguration(reports, '7').map((r) => r.nodeName)).toEqual(['a']);
  });
});
