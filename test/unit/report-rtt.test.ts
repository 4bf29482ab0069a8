import { describe, expect, it } from 'vitest';
import { answeredRttMs, type ProbeOutcome } from '../../src/probe/outcome.js';
import { MAX_REPORTED_RTTS, reportedRtts } from '../../src/report/rtt.js';
import { observeReports } from '../../src/status/observe.js';
import { NOW, makeReport } from './fixtures.js';

describe('answeredRttMs', () => {
  const outcome = (result: ProbeOutcome['result'], durationMs: number): ProbeOutcome => ({ protocol: 'tcp', result, durationMs });

  it.each([
    { name: 'a success', outcomes: [outcome('success', 1.5)], refusedIsReachable: true, expected: 1.5 },
    { name: 'the quicker of two answers (mode both)', outcomes: [outcome('success', 3), { ...outcome('success', 0.7), protocol: 'icmp' as const }], refusedIsReachable: true, expected: 0.7 },
    { name: 'a RST when it counts as reachable', outcomes: [outcome('refused', 0.4)], refusedIsReachable: true, expected: 0.4 },
    { name: 'nothing for a RST that does not', outcomes: [outcome('refused', 0.4)], refusedIsReachable: false, expected: undefined },
    { name: 'nothing for a timeout', outcomes: [outcome('timeout', 500)], refusedIsReachable: true, expected: undefined },
  ])('takes $name', ({ outcomes, refusedIsReachable, expected }) => {
    expect(answeredRttMs(outcomes, refusedIsReachable)).toBe(expected);
  });
});

describe('reportedRtts', () => {
  it('lists answered targets by address, rounded to 0.01 ms, and none when nothing answered', () => {
    expect(reportedRtts([{ address: '10.0.0.2', lastRttMs: 1.23456 }, { address: '10.0.0.1', lastRttMs: 0.5 }, { address: '10.0.0.3' }])).toEqual([
      { address: '10.0.0.1', rttMs: 0.5 },
      { address: '10.0.0.2', rttMs: 1.23 },
    ]);
    expect(reportedRtts([{ address: '10.0.0.3' }])).toBeUndefined();
  });

  it(`keeps the ${MAX_REPORTED_RTTS} slowest of more targets`, () => {
    const targets = Array.from({ length: 1000 }, (_, i) => ({ address: `10.0.${Math.floor(i / 256)}.${i % 256}`, lastRttMs: i }));
    const rtts = reportedRtts(targets)!;
    expect(rtts).toHaveLength(MAX_REPORTED_RTTS);
    expect(Math.min(...rtts.map((r) => r.rttMs))).toBe(1000 - MAX_REPORTED_RTTS);
  });

  it('keeps the slowest whatever the order they come in, listed by address', () => {
    const rtt = (i: number) => ((i * 7919) % 1000) / 10;
    const targets = Array.from({ length: 1000 }, (_, i) => ({ address: `10.1.${Math.floor(i / 256)}.${i % 256}`, lastRttMs: rtt(i) }));
    const expected = [...targets].sort((a, b) => b.lastRttMs - a.lastRttMs).slice(0, 5).map((t) => t.address).sort();
    expect(reportedRtts(targets, 5)!.map((r) => r.address)).toEqual(expected);
  });

  it('reaches the status model as the cells\' RTT', () => {
    const report = makeReport('a', [], { targetRtts: [{ address: '10.0.0.1', rttMs: 0.42 }] });
    const [node] = observeReports([{ metadata: { name: 'a' }, spec: report }], { now: NOW, configVersion: '1', staleAfterMs: 90_000 }, new Map());
    expect(node!.rttMs).toEqual(new Map([['10.0.0.1', 0.42]]));
  });
});
