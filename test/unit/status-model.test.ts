import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/config.js';
import { desiredSlice } from '../../src/report/prune.js';
import type { ServiceImportVerdict } from '../../src/report/aggregate.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import type { StatusEvent } from '../../src/status/events.js';
import { buildStatus, queryStatus, RESTORED_SHOWN_MS, type StatusInput } from '../../src/status/model.js';
import { decide, observeReports, observeServiceImports, type NodeObservation, type ServiceImportObservation } from '../../src/status/observe.js';
import { targetSetDigest } from '../../src/report/coverage.js';
import { NOW, makeEndpointSlice, makeReport, serviceImport } from './fixtures.js';

const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
const CONFIG: Config = { ...DEFAULT_CONFIG, allowCidrs: ['10.0.0.0/8'] };

function node(name: string, unreachable: string[] = [], extra: Partial<NodeObservation> = {}): NodeObservation {
  return { name, state: 'live', probeReplicas: 0, unreachable: new Set(unreachable), ...extra };
}

function si(name: string, extra: Partial<ServiceImportObservation> = {}): ServiceImportObservation {
  return { namespace: 'ns', name, addresses: ADDRESSES, published: new Set(), pruned: new Set(), ...extra };
}

function verdict(disconnected: string[] = [], ejectionCapped: string[] = [], uncovered: string[] = []): ServiceImportVerdict {
  return { disconnected: new Set(disconnected), ejectionCapped, guarded: [], uncovered, reconnected: new Map() };
}

function input(overrides: Partial<StatusInput>): StatusInput {
  return { now: NOW, config: CONFIG, configVersion: '1', nodes: [], serviceImports: [si('svc')], verdicts: new Map(), events: [], ...overrides };
}

/** The rows of ns/svc as `address: decision` plus the cells' states. */
function rowsOf(overrides: Partial<StatusInput>) {
  const page = queryStatus(buildStatus(input(overrides)), {});
  return Object.fromEntries(page.serviceImports[0]!.rows.map((row) => [row.address, { decision: row.decision, why: row.why, cells: row.cells.map((c) => c.state) }]));
}

describe('status model: decisions per address', () => {
  it('shows a cut address unreachable from every node and pruned, and why', () => {
    const rows = rowsOf({
      nodes: [node('a', ['10.0.0.2']), node('b', ['10.0.0.2']), node('c', ['10.0.0.2'])],
      serviceImports: [si('svc', { published: new Set(['10.0.0.2']), pruned: new Set(['10.0.0.2']) })],
      verdicts: new Map([['ns/svc', verdict(['10.0.0.2'])]]),
    });
    expect(rows['10.0.0.2']).toEqual({
      decision: 'pruned',
      why: '3 of 3 voting nodes see it unreachable (quorum: majority); removed from the synced EndpointSlices',
      cells: ['unreachable', 'unreachable', 'unreachable'],
    });
    expect(rows['10.0.0.1']).toMatchObject({ decision: 'connected', why: 'reachable from 3 voting nodes', cells: ['reachable', 'reachable', 'reachable'] });
  });

  it('calls a decided address that no slice held "disconnected", not pruned', () => {
    const rows = rowsOf({
      nodes: [node('a', ['10.0.0.2'])],
      serviceImports: [si('svc', { published: new Set(['10.0.0.2']) })],
      verdicts: new Map([['ns/svc', verdict(['10.0.0.2'])]]),
    });
    expect(rows['10.0.0.2']!.decision).toBe('disconnected');
    expect(rows['10.0.0.2']!.why).toContain('published as disconnected');
  });

  it('explains an address kept by the quorum', () => {
    const rows = rowsOf({ nodes: [node('a', ['10.0.0.3']), node('b'), node('c')], verdicts: new Map([['ns/svc', verdict()]]) });
    expect(rows['10.0.0.3']).toMatchObject({ decision: 'kept-by-quorum', why: '1 of 3 voting nodes sees it unreachable; quorum majority needs 2' });
  });

  it('explains an address held back by the ejection cap', () => {
    const rows = rowsOf({
      nodes: [node('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])],
      verdicts: new Map([['ns/svc', verdict(['10.0.0.1', '10.0.0.2'], ['10.0.0.3'])]]),
    });
    expect(rows['10.0.0.3']).toMatchObject({
      decision: 'held-back',
      why: '1 of 1 voting node sees it unreachable, but the ejection cap (0.5 of 4 addresses: at most 2) keeps it in service',
    });
  });

  it('keeps the published decision of a ServiceImport the verdicts do not cover', () => {
    const rows = rowsOf({ serviceImports: [si('svc', { published: new Set(['10.0.0.4']) })], verdicts: new Map() });
    expect(rows['10.0.0.4']!.decision).toBe('disconnected');
  });

  it('marks an address no live node probes as uncovered', () => {
    const rows = rowsOf({ nodes: [node('a', [], { state: 'stale' })], verdicts: new Map([['ns/svc', verdict([], [], ADDRESSES)]]) });
    expect(rows['10.0.0.1']).toMatchObject({ decision: 'uncovered', why: 'no live node probes it, so the last decision (connected) stays' });
  });

  it('shows an address restored by the newest Event naming it, until a newer one disconnects it', () => {
    const event = (reason: string, time: string, addresses: string): StatusEvent => ({
      time, type: 'Normal', reason, message: `something: ${addresses}`, kind: 'ServiceImport', namespace: 'ns', name: 'svc', count: 1,
    });
    const rows = rowsOf({
      nodes: [node('a')],
      events: [
        event('EndpointsDisconnected', '2025-01-01T00:00:01Z', '10.0.0.1,10.0.0.2'),
        event('EndpointsReconnected', '2025-01-01T00:00:02Z', '10.0.0.1,10.0.0.2'),
        event('EndpointsDisconnected', '2025-01-01T00:00:03Z', '10.0.0.2'),
      ],
    });
    expect(rows['10.0.0.1']).toMatchObject({ decision: 'restored', why: 'reachable again; restored at 2025-01-01T00:00:02Z' });
    expect(rows['10.0.0.2']!.decision).toBe('connected');
    const later = new Date(Date.parse('2025-01-01T00:00:02Z') + RESTORED_SHOWN_MS + 1);
    expect(rowsOf({ now: later, nodes: [node('a')], events: [event('EndpointsReconnected', '2025-01-01T00:00:02Z', '10.0.0.1')] })['10.0.0.1']!.decision).toBe('connected');
  });
});

describe('status model: cells', () => {
  it('marks addresses outside allowCidrs as refused for every node', () => {
    const rows = rowsOf({ config: { ...CONFIG, allowCidrs: ['10.0.0.0/31'] }, nodes: [node('a'), node('b')] });
    expect(rows['10.0.0.1']!.cells).toEqual(['reachable', 'reachable']);
    expect(rows['10.0.0.2']!.cells).toEqual(['refused', 'refused']);
  });

  it('marks addresses a node has no verdict for as not probed, and does not count it as a voter', () => {
    const rows = rowsOf({ nodes: [node('a', ['10.0.0.1']), node('b', [], { unjudged: new Set(['10.0.0.1']) })] });
    expect(rows['10.0.0.1']).toMatchObject({ cells: ['unreachable', 'not-probed'], why: '1 of 1 voting node sees it unreachable; quorum majority needs 1' });
  });

  it('shows each address probed by exactly its assigned node when probeReplicas is 1', () => {
    const rows = rowsOf({ nodes: ['a', 'b', 'c'].map((name) => node(name, [], { probeReplicas: 1 })) });
    for (const address of ADDRESSES) {
      expect(rows[address]!.cells.filter((state) => state === 'reachable')).toHaveLength(1);
      expect(rows[address]!.cells.filter((state) => state === 'not-probed')).toHaveLength(2);
    }
  });

  it('gives no column to a node whose report is invalid', () => {
    const rows = rowsOf({ nodes: [node('a'), node('gone', [], { state: 'invalid' }), node('b', [], { state: 'stale' })] });
    expect(rows['10.0.0.1']!.cells).toEqual(['reachable', 'reachable']);
  });

  it('carries the RTT a report gives', () => {
    const page = queryStatus(buildStatus(input({ nodes: [node('a', [], { rttMs: new Map([['10.0.0.1', 0.42]]) })] })), {});
    expect(page.serviceImports[0]!.rows[0]!.cells).toEqual([{ node: 'a', state: 'reachable', rttMs: 0.42 }]);
  });
});

describe('status model: filters and pages', () => {
  const many = Array.from({ length: 45 }, (_, i) => si(`svc-${String(i).padStart(2, '0')}`, { namespace: i % 2 ? 'odd' : 'even', addresses: [`10.1.${i}.1`, `10.1.${i}.2`] }));
  const index = buildStatus(input({ nodes: [node('node-a', ['10.1.30.2']), node('node-b')], serviceImports: many }));

  it('serves a page of at most pageSize ServiceImports, problems first', () => {
    const page = queryStatus(index, { pageSize: 20 });
    expect(page).toMatchObject({ matching: 45, pages: 3 });
    expect(page.serviceImports).toHaveLength(20);
    expect(page.serviceImports[0]).toMatchObject({ name: 'svc-30', unreachable: 1 });
    expect(queryStatus(index, { pageSize: 20, page: 3 }).serviceImports).toHaveLength(5);
    expect(queryStatus(index, { pageSize: 20, page: 99 }).query.page).toBe(3);
  });

  it.each([
    { name: 'namespace', query: { namespace: 'ODD' }, matching: 22 },
    { name: 'ServiceImport name', query: { serviceImport: 'svc-1' }, matching: 10 },
    { name: 'address', query: { address: '10.1.44.' }, matching: 1 },
    { name: 'problems only', query: { problems: true }, matching: 1 },
  ])('filters by $name', ({ query, matching }) => {
    expect(queryStatus(index, query).matching).toBe(matching);
  });

  it('shows only the matching addresses and node columns', () => {
    const page = queryStatus(index, { address: '10.1.30.2', node: 'node-a' });
    expect(page.serviceImports.map((s) => s.rows.map((row) => [row.address, row.cells.map((c) => c.node)]))).toEqual([[['10.1.30.2', ['node-a']]]]);
    expect(page.nodes.map((n) => n.name)).toEqual(['node-a']);
  });

  it('totals the whole cluster whatever the filter', () => {
    expect(queryStatus(index, { namespace: 'none' }).totals).toMatchObject({ serviceImports: 45, addresses: 90, unreachable: 1, nodes: { live: 2 } });
  });
});

describe('status model: observations', () => {
  const report = (name: string, overrides: Partial<ProbeReportSpec> = {}) => ({ metadata: { name }, spec: makeReport(name, [], overrides) });

  it('states each node as the controller counts it', () => {
    const nodes = observeReports(
      [
        report('live'),
        report('stale', { heartbeatTime: new Date(NOW.getTime() - 100_000).toISOString() }),
        report('other', { configVersion: '2' }),
        report('hint', { suspect: true, suspectReason: 'its own hint only' }),
        report('suspect', { suspect: true, suspectReason: 'too many down' }),
        { metadata: { name: 'forged' }, spec: makeReport('live', []) },
      ],
      { now: NOW, configVersion: '1', staleAfterMs: 90_000 },
      new Map([['suspect', 'sees 3 of 3 judged targets unreachable, its peers do not']]),
    );
    expect(nodes.map((n) => [n.name, n.state, n.reason])).toEqual([
      ['forged', 'invalid', 'name-mismatch: spec.nodeName "live" differs from the report\'s name'],
      ['hint', 'live', undefined],
      ['live', 'live', undefined],
      ['other', 'other-config', 'runs configuration 2, not 1'],
      ['stale', 'stale', `no heartbeat since ${new Date(NOW.getTime() - 100_000).toISOString()}`],
      ['suspect', 'suspect', 'isolated: the node sees 3 of 3 judged targets unreachable, its peers do not'],
    ]);
  });

  it('finds published and pruned addresses of a ServiceImport from its annotation and slices', () => {
    const slice = makeEndpointSlice({ name: 'svc-1', namespace: 'ns', service: 'svc', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] });
    const pruned = desiredSlice(slice, new Set(['10.0.0.2'])).slice;
    const [observed] = observeServiceImports({
      serviceImports: [serviceImport({ name: 'svc', namespace: 'ns', addresses: ['10.0.0.4'], disconnected: '10.0.0.2' })],
      slices: [pruned],
      namespaces: { include: [], exclude: [] },
    });
    expect(observed).toEqual({ namespace: 'ns', name: 'svc', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], published: new Set(['10.0.0.2']), pruned: new Set(['10.0.0.2']) });
  });

  it('decides as the controller does, with the annotation as the previous decision', () => {
    // Each report covers what the controller would have agents probe: ADDRESSES (its digest).
    const covering = { targetSetDigest: targetSetDigest(ADDRESSES) };
    const reports = ['a', 'b', 'c'].map((name, i) => ({ metadata: { name }, spec: makeReport(name, i < 2 ? ['10.0.0.1'] : [], covering) }));
    const { verdicts } = decide({ reports, serviceImports: [si('svc', { published: new Set(['10.0.0.4']) })], config: CONFIG, context: { now: NOW, configVersion: '1', staleAfterMs: 90_000 } });
    expect([...verdicts.get('ns/svc')!.disconnected].sort()).toEqual(['10.0.0.1']);
  });
});
