import { describe, expect, it } from 'vitest';
import { MAX_HEARTBEAT_SKEW_MS, partitionReports, type NamedReport } from '../../src/report/validity.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import { NOW, makeReport } from './fixtures.js';

const at = (offsetMs: number): string => new Date(NOW.getTime() + offsetMs).toISOString();
const named = (name: string, spec: Partial<ProbeReportSpec> = {}): NamedReport => ({ metadata: { name }, spec: makeReport(name, [], spec) });
const nodes = new Set(['a', 'b', 'a-copy']);
const nodeExists = (name: string): boolean => nodes.has(name);

describe('partitionReports', () => {
  it('lets a report named after its existing node vote', () => {
    const report = named('a', { heartbeatTime: at(MAX_HEARTBEAT_SKEW_MS) });
    expect(partitionReports([report], { now: NOW, nodeExists })).toEqual({ valid: [report.spec], invalid: [], ring: [report.spec] });
  });

  it.each<{ name: string; report: NamedReport; reason: string }>([
    { name: 'a copy carrying another node\'s nodeName', report: { metadata: { name: 'a-copy' }, spec: makeReport('a', ['10.0.0.1']) }, reason: 'name-mismatch' },
    { name: 'a heartbeat more than the skew ahead', report: named('a', { heartbeatTime: at(MAX_HEARTBEAT_SKEW_MS + 1) }), reason: 'future-heartbeat' },
    { name: 'a heartbeat in 2099', report: named('b', { heartbeatTime: '2099-01-01T00:00:00Z' }), reason: 'future-heartbeat' },
    { name: 'a name that is no Node', report: named('ghost-1'), reason: 'no-node' },
    { name: 'a name that is no Node, whatever else is wrong', report: { metadata: { name: 'ghost-2' }, spec: makeReport('a', [], { heartbeatTime: '2099-01-01T00:00:00Z' }) }, reason: 'no-node' },
    { name: 'no spec', report: { metadata: { name: 'a' } }, reason: 'malformed' },
    { name: 'no serviceImports list', report: { metadata: { name: 'a' }, spec: { nodeName: 'a', heartbeatTime: NOW.toISOString() } as ProbeReportSpec }, reason: 'malformed' },
    { name: 'an unreadable heartbeat', report: named('a', { heartbeatTime: 'yesterday' }), reason: 'malformed' },
  ])('refuses $name ($reason)', ({ report, reason }) => {
    const { valid, invalid } = partitionReports([report], { now: NOW, nodeExists });
    expect(valid).toEqual([]);
    expect(invalid).toEqual([expect.objectContaining({ name: report.metadata.name, reason })]);
    expect(invalid[0]!.detail).not.toBe('');
  });

  it('leaves one vote per node when copies carry its name', () => {
    const reports = [named('a'), { metadata: { name: 'a-copy' }, spec: makeReport('a', ['10.0.0.1']) }, { metadata: { name: 'b' }, spec: makeReport('a', ['10.0.0.1']) }];
    expect(partitionReports(reports, { now: NOW, nodeExists }).valid.map((spec) => spec.nodeName)).toEqual(['a']);
  });

  it('does not check Nodes when it is not told which exist (agents)', () => {
    expect(partitionReports([named('ghost-1')], { now: NOW }).valid).toHaveLength(1);
  });
});
