import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Quorum, aggregate, isLive, liveMembers, onConfiguration, type AggregateInput } from '../../src/report/aggregate.js';
import { bucketOf, membersDigest, targetSetDigest } from '../../src/report/coverage.js';
import { assignees } from '../../src/report/rendezvous.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import { ADDRESS_POOL, NOW, makeReport } from './fixtures.js';

const STALE = new Date(NOW.getTime() - 60_000).toISOString();
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];

/**
 * Gives reports without a scope the one agents running with these ServiceImports would publish: the
 * digest of all their addresses (less refused ones) and, with sharding, of the live members.
 */
function scoped(reports: readonly ProbeReportSpec[], input: Pick<AggregateInput, 'serviceImports' | 'refused'>): ProbeReportSpec[] {
  const addresses = new Set(input.serviceImports.flatMap((s) => s.addresses).filter((a) => !input.refused?.has(a)));
  const members = membersDigest(liveMembers(reports, NOW, 30_000));
  const digest = targetSetDigest(addresses);
  return reports.map((r) => ({
    targetSetDigest: digest,
    membersDigest: r.probeReplicas > 0 ? members : '',
    targetsJudged: r.targetsProbed,
    ...r,
  }));
}

function aggregateOf(reports: readonly ProbeReportSpec[], overrides: Partial<AggregateInput> = {}) {
  const input: AggregateInput = {
    reports,
    now: NOW,
    staleAfterMs: 30_000,
    quorum: 'majority',
    maxEjectionShare: 1,
    selfIsolationShare: 1,
    probeReplicas: reports[0]?.probeReplicas ?? 0,
    serviceImports: [{ key: 'ns/svc', addresses: ADDRESSES }],
    previous: new Map(),
    ...overrides,
  };
  return aggregate({ ...input, reports: scoped(input.reports, input) });
}

function run(reports: readonly ProbeReportSpec[], overrides: Partial<AggregateInput> = {}) {
  const verdict = aggregateOf(reports, overrides).verdicts.get('ns/svc')!;
  return { ...verdict, disconnected: [...verdict.disconnected].sort(), reconnected: Object.fromEntries(verdict.reconnected) };
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

describe('aggregate: who votes', () => {
  const previous = new Map([['ns/svc', new Set(['10.0.0.1'])]]);
  const unknownX = (node: string): ProbeReportSpec =>
    makeReport(node, [], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: [], unknown: ['10.0.0.1'] }] });

  it('counts a node that lists an address as unknown as no voter for it', () => {
    // b alone judged .1, and saw it down: the majority of its voters.
    expect(run([unknownX('a'), makeReport('b', ['10.0.0.1'])]).disconnected).toEqual(['10.0.0.1']);
  });

  it('counts a node that lists an address both unreachable and unknown as no voter for it', () => {
    const both = makeReport('a', [], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: ['10.0.0.1'], unknown: ['10.0.0.1'] }] });
    expect(run([both], { quorum: 'any' }).uncovered).toContain('10.0.0.1');
  });

  // Each row: a report that lists .1 unreachable, but whose vote on .1 must not count.
  const down = ['10.0.0.1'];
  it.each([
    { name: 'it also lists as unknown', report: makeReport('a', [], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: down, unknown: down }] }), overrides: {} },
    { name: 'the allow-list refuses', report: makeReport('a', down), overrides: { refused: new Set(down) } },
    { name: 'in a bucket where its digest differs', report: makeReport('a', down, { targetSetDigest: targetSetDigest(['10.0.0.9']) }), overrides: {} },
    { name: 'without a target-set digest (an older agent)', report: makeReport('a', down, { targetSetDigest: undefined }), overrides: {} },
    { name: 'from a sharded node on another membership', report: makeReport('a', down, { probeReplicas: 1, membersDigest: membersDigest(['a', 'z']) }), overrides: {} },
    { name: 'from a node with another probeReplicas', report: makeReport('a', down, { probeReplicas: 2 }), overrides: { probeReplicas: 0 } },
    { name: 'from a stale report', report: makeReport('a', down, { heartbeatTime: STALE }), overrides: {} },
  ])('neither prunes nor restores an address $name', ({ report, overrides }) => {
    const others = makeReport('b', [], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: [], unknown: down }] });
    const kept = run([report, others], { quorum: 'any', previous, ...overrides });
    expect(kept.disconnected).toEqual(down);
    expect(kept.uncovered).toContain('10.0.0.1');
    expect(run([report, others], { quorum: 'any', ...overrides }).disconnected).toEqual([]);
  });

  it('still counts a node whose digest differs in other buckets only', () => {
    const bucketOfFirst = bucketOf('10.0.0.1');
    const extra = Array.from({ length: 64 }, (_, i) => `10.0.9.${i}`).find((a) => bucketOf(a) !== bucketOfFirst)!;
    const report = makeReport('a', ['10.0.0.1'], { targetSetDigest: targetSetDigest([...ADDRESSES, extra]) });
    const verdict = run([report], { quorum: 'any' });
    expect(verdict.disconnected).toEqual(['10.0.0.1']);
    // The addresses of the extra address's bucket have no voter.
    expect(verdict.uncovered).toEqual(ADDRESSES.filter((a) => bucketOf(a) === bucketOf(extra)));
  });
});

describe('aggregate live reports', () => {
  it('ignores a stale report', () => {
    expect(run([makeReport('a', []), makeReport('b', ['10.0.0.1'], { heartbeatTime: STALE })], { quorum: 'any' }).disconnected).toEqual([]);
  });

  it('counts a report whose agent only hints that it is suspect', () => {
    expect(run([makeReport('a', []), makeReport('b', ['10.0.0.1'], { suspect: true })], { quorum: 'any' }).disconnected).toEqual(['10.0.0.1']);
  });

  it('keeps the previous state of addresses no live report covers', () => {
    const verdict = run([makeReport('b', ['10.0.0.1'], { heartbeatTime: STALE })], { previous: new Map([['ns/svc', new Set(['10.0.0.2'])]]) });
    expect(verdict).toMatchObject({ disconnected: ['10.0.0.2'], ejectionCapped: [], uncovered: ADDRESSES });
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

  it('liveMembers lists live nodes once, sorted, suspect or not', () => {
    const reports = [
      makeReport('c', []),
      makeReport('a', []),
      makeReport('b', [], { suspect: true }),
      makeReport('d', [], { heartbeatTime: STALE }),
      makeReport('a', []),
    ];
    expect(liveMembers(reports, NOW, 30_000)).toEqual(['a', 'b', 'c']);
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

  it('counts the owners of an address that are live members even when some member does not vote', () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'];
    const owners = assignees('10.0.0.1', nodes, 2);
    const absent = nodes.find((n) => !owners.includes(n))!;
    // A non-owner on another membership loses its votes; the owners' quorum stands.
    const reports = nodes.map((n) =>
      makeReport(n, owners.includes(n) ? ['10.0.0.1'] : [], { probeReplicas: 2, ...(n === absent ? { membersDigest: 'other' } : {}) }),
    );
    expect(run(reports, { quorum: 'all' }).disconnected).toEqual(['10.0.0.1']);
    const ownerOff = nodes.map((n) =>
      makeReport(n, n === owners[0] ? ['10.0.0.1'] : [], { probeReplicas: 2, ...(n === owners[1] ? { membersDigest: 'other' } : {}) }),
    );
    // One owner left voting, and it sees .1 down: all of its voters.
    expect(run(ownerOff, { quorum: 'all' }).disconnected).toEqual(['10.0.0.1']);
  });
});

describe('aggregate members', () => {
  it('leaves the share of a member whose report does not count without voters, rather than giving it to others', () => {
    const nodes = ['a', 'b', 'c'];
    const ownedByC = ADDRESSES.filter((address) => assignees(address, nodes, 1)[0] === 'c');
    expect(ownedByC.length).toBeGreaterThan(0);
    // c's report was dropped before aggregation; a and b sharded over all three, as the agents do.
    const reports = ['a', 'b'].map((n) => makeReport(n, [], { probeReplicas: 1, membersDigest: membersDigest(nodes) }));
    expect(run(reports, { members: nodes }).uncovered).toEqual(ownedByC);
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
    expect(verdict.ejectionCapped).toHaveLength(new Set(addresses).size - disconnected);
  });

  it('avoids floating-point truncation (0.29 × 100 allows 29)', () => {
    const addresses = Array.from({ length: 100 }, (_, i) => `10.0.1.${i}`);
    const verdict = run([makeReport('a', addresses)], { maxEjectionShare: 0.29, serviceImports: [{ key: 'ns/svc', addresses }] });
    expect(verdict.disconnected).toHaveLength(29);
  });

  it('keeps previously disconnected addresses first, then by address order', () => {
    const verdict = run(allDown, { maxEjectionShare: 0.5, previous: new Map([['ns/svc', new Set(['10.0.0.4'])]]) });
    expect(verdict).toMatchObject({ disconnected: ['10.0.0.1', '10.0.0.4'], ejectionCapped: ['10.0.0.2', '10.0.0.3'] });
  });

  it('counts uncovered, previously disconnected addresses against the cap', () => {
    const verdict = run([], { maxEjectionShare: 0.5, previous: new Map([['ns/svc', new Set(ADDRESSES)]]) });
    expect(verdict).toMatchObject({ disconnected: ['10.0.0.1', '10.0.0.2'], ejectionCapped: ['10.0.0.3', '10.0.0.4'] });
  });

  it('counts only probeable addresses: the last probeable endpoint is never pruned', () => {
    // `10.213.0.12,::1` with ::1 refused by the allow-list: one probeable address, so none may go.
    const addresses = ['10.213.0.12', '::1'];
    const verdict = run([makeReport('a', ['10.213.0.12'])], { maxEjectionShare: 0.5, serviceImports: [{ key: 'ns/svc', addresses }], refused: new Set(['::1']) });
    expect(verdict).toMatchObject({ disconnected: [], ejectionCapped: ['10.213.0.12'], uncovered: ['::1'] });
  });

  it('counts addresses no node has judged yet as not probeable', () => {
    const unknown = makeReport('a', ['10.0.0.1'], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: ['10.0.0.1'], unknown: ['10.0.0.2', '10.0.0.3'] }] });
    expect(run([unknown], { maxEjectionShare: 0.5 }).disconnected).toEqual(['10.0.0.1']);
    const moreUnknown = makeReport('a', [], { serviceImports: [{ namespace: 'ns', name: 'svc', unreachable: ['10.0.0.1'], unknown: ['10.0.0.2', '10.0.0.3', '10.0.0.4'] }] });
    expect(run([moreUnknown], { maxEjectionShare: 0.5 }).ejectionCapped).toEqual(['10.0.0.1']);
  });
});

describe('aggregate isolation guard', () => {
  const small = { key: 'ns/small', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] };
  const guardOn = { selfIsolationShare: 0.5, maxEjectionShare: 0.67, serviceImports: [small] };
  const verdictOf = (reports: ProbeReportSpec[], overrides: Partial<AggregateInput> = {}) => {
    const result = aggregateOf(reports, { ...guardOn, ...overrides });
    const verdict = result.verdicts.get('ns/small')!;
    return { isolated: [...result.isolated.keys()], disconnected: [...verdict.disconnected].sort(), guarded: verdict.guarded, reconnected: Object.fromEntries(verdict.reconnected) };
  };
  const nodes = ['a', 'b', 'c'];
  const withTargets = (node: string, down: string[]) => makeReport(node, down, { targetsProbed: 3, serviceImports: [{ namespace: 'ns', name: 'small', unreachable: down }] });

  it('disconnects 2 of 3 endpoints of a small service that every node sees down', () => {
    const down = ['10.0.0.2', '10.0.0.3'];
    expect(verdictOf(nodes.map((n) => withTargets(n, down)))).toMatchObject({ isolated: [], disconnected: down, guarded: [] });
  });

  it('ignores a node that alone sees everything down, and says which addresses it held back', () => {
    const reports = [withTargets('a', small.addresses), withTargets('b', []), withTargets('c', [])];
    expect(verdictOf(reports, { quorum: 'any' })).toMatchObject({ isolated: ['a'], disconnected: [], guarded: small.addresses });
  });

  it('does not call held back what the quorum would not prune even with the ignored votes', () => {
    const reports = [withTargets('a', small.addresses), withTargets('b', []), withTargets('c', [])];
    expect(verdictOf(reports, { quorum: 'majority' })).toMatchObject({ isolated: ['a'], disconnected: [], guarded: [] });
  });

  it('restores what only an ignored node still sees down, and says why', () => {
    const reports = [withTargets('a', small.addresses), withTargets('b', []), withTargets('c', [])];
    const previous = new Map([['ns/small', new Set(['10.0.0.1'])]]);
    expect(verdictOf(reports, { quorum: 'any', previous })).toMatchObject({ disconnected: [], reconnected: { '10.0.0.1': 'guarded' } });
  });
});

describe('aggregate reconnection reasons', () => {
  const previous = new Map([['ns/svc', new Set(['10.0.0.1'])]]);

  it.each([
    { name: 'reachable: no voter sees it down', reports: [makeReport('a', [])], overrides: {}, reason: 'reachable' },
    { name: 'quorum: too few voters see it down', reports: [makeReport('a', ['10.0.0.1']), makeReport('b', []), makeReport('c', [])], overrides: {}, reason: 'quorum' },
    { name: 'capped: still unreachable, the cap allows none', reports: [makeReport('a', ['10.0.0.1'])], overrides: { maxEjectionShare: 0 }, reason: 'capped' },
    { name: 'removed: no longer an address of the ServiceImport', reports: [makeReport('a', [])], overrides: { serviceImports: [{ key: 'ns/svc', addresses: ['10.0.0.2'] }] }, reason: 'removed' },
  ])('$name', ({ reports, overrides, reason }) => {
    expect(run(reports, { previous, ...overrides }).reconnected).toEqual({ '10.0.0.1': reason });
  });

  it('names nothing that stays disconnected', () => {
    expect(run([makeReport('a', ['10.0.0.1'])], { previous }).reconnected).toEqual({});
  });
});

describe('aggregate options', () => {
  it.each([
    { name: 'staleAfterMs 0', overrides: { staleAfterMs: 0 }, message: /^staleAfterMs: / },
    { name: 'an unknown quorum', overrides: { quorum: 'most' as Quorum }, message: /^quorum: / },
    { name: 'maxEjectionShare above 1', overrides: { maxEjectionShare: 2 }, message: /^maxEjectionShare: / },
    { name: 'selfIsolationShare below 0', overrides: { selfIsolationShare: -0.1 }, message: /^selfIsolationShare: / },
    { name: 'fractional probeReplicas', overrides: { probeReplicas: 1.5 }, message: /^probeReplicas: / },
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
        // The agent's suspect hint removes no vote; the guard is off (selfIsolationShare 1).
        const voters = specs.filter((s) => s.live);
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

  it.each([
    { name: 'every member votes', absent: (_i: number) => ({}), uncoveredBucket: false },
    { name: 'one member is on another membership', absent: (i: number) => (i === 1 ? { membersDigest: 'other' } : {}), uncoveredBucket: false },
    { name: 'every member misses one address', absent: (_i: number) => ({ targetSetDigest: 'stale' }), uncoveredBucket: true },
  ])('decides 100k addresses for 1,000 sharded nodes in a few seconds at most when $name', ({ absent, uncoveredBucket }) => {
    const nodes = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
    const addresses = Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    const known = targetSetDigest(addresses.slice(1));
    const reports = nodes.map((n, i) => {
      const overrides = absent(i);
      return makeReport(n, i === 0 ? addresses.slice(0, 100) : [], { probeReplicas: 3, ...overrides, ...('targetSetDigest' in overrides ? { targetSetDigest: known } : {}) });
    });
    const started = performance.now();
    const verdict = run(reports, { maxEjectionShare: 0.5, serviceImports: [{ key: 'ns/svc', addresses }] });
    expect(performance.now() - started).toBeLessThan(5000);
    // Nobody votes in the bucket where every node's digest is stale; everywhere else the owners do.
    expect(verdict.uncovered.length).toBe(uncoveredBucket ? addresses.filter((a) => bucketOf(a) === bucketOf(addresses[0]!)).length : 0);
  });
});

describe('onConfiguration', () => {
  it('keeps only the reports of agents running the configuration in force', () => {
    const reports = [makeReport('a', [], { configVersion: '7' }), makeReport('b', [], { configVersion: '6' })];
    expect(onConfiguration(reports, '7').map((r) => r.nodeName)).toEqual(['a']);
  });
});
