import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { ProbeOutcome, ProbeVerdict } from '../../src/probe/outcome.js';
import { ProbeResults, type ReachabilityChange, type TargetGauge } from '../../src/probe/results.js';
import { TargetProbeState } from '../../src/probe/target-state.js';

const OPTIONS = { failureThreshold: 2, successThreshold: 2, refusedIsReachable: true };

/** The per-target series in memory: address → 1 or 0. */
class MemoryGauge implements TargetGauge {
  readonly series = new Map<string, number>();
  setTargetReachable(address: string, reachable: boolean): void {
    this.series.set(address, reachable ? 1 : 0);
  }
  deleteTarget(address: string): void {
    this.series.delete(address);
  }
  clearTargets(): void {
    this.series.clear();
  }
}

function setup(perTargetMetrics = false) {
  const destination = new PassThrough();
  const gauge = new MemoryGauge();
  const results = new ProbeResults(createLogger({ destination }), gauge, perTargetMetrics);
  const changes: ReachabilityChange[] = [];
  results.onChange((change) => changes.push(change));
  /** One probe of `state` through its synchronous step, then into the results. */
  const probe = (state: TargetProbeState, verdict: ProbeVerdict): void => {
    const outcomes: ProbeOutcome[] = [{ protocol: 'tcp', result: verdict === 'success' ? 'success' : verdict === 'failure' ? 'timeout' : 'error', durationMs: 3 }];
    results.recorded(state, state.record(verdict, outcomes, 0, OPTIONS), verdict);
  };
  const lines = (): Record<string, unknown>[] =>
    String(destination.read() ?? '')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { results, gauge, changes, probe, lines };
}

function state(address: string): TargetProbeState {
  return new TargetProbeState({ address, ports: [80], owners: ['ns/svc'] });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ProbeResults', () => {
  it('passes on changes only, to every listener, and logs each', () => {
    const { results, changes, probe, lines } = setup();
    const a = state('10.0.0.1');
    const later: ReachabilityChange[] = [];
    const unsubscribe = results.onChange((change) => later.push(change));
    probe(a, 'success');
    probe(a, 'success');
    probe(a, 'failure');
    probe(a, 'error');
    probe(a, 'failure');
    probe(a, 'failure');
    unsubscribe();
    probe(a, 'success');
    probe(a, 'success');
    expect(changes).toEqual([
      { address: '10.0.0.1', owners: ['ns/svc'], previous: 'unknown', current: 'reachable' },
      { address: '10.0.0.1', owners: ['ns/svc'], previous: 'reachable', current: 'unreachable' },
      { address: '10.0.0.1', owners: ['ns/svc'], previous: 'unreachable', current: 'reachable' },
    ]);
    expect(later).toEqual(changes.slice(0, 2));
    expect(lines().filter((line) => line.msg === 'target reachability changed')).toHaveLength(3);
  });

  it('keeps calling the other listeners when one throws, and logs it', () => {
    const { results, changes, probe, lines } = setup();
    results.onChange(() => {
      throw new Error('listener bug');
    });
    const after: string[] = [];
    results.onChange((change) => after.push(change.current));
    probe(state('10.0.0.1'), 'success');
    expect(changes).toHaveLength(1);
    expect(after).toEqual(['reachable']);
    expect(lines().find((line) => line.msg === 'reachability listener threw')).toMatchObject({ address: '10.0.0.1' });
  });

  it('counts unreachable targets as they change and leave', () => {
    const { results, probe } = setup();
    const [a, b] = [state('10.0.0.1'), state('10.0.0.2')];
    for (const target of [a, b]) {
      probe(target, 'failure');
      probe(target, 'failure');
    }
    expect(results.unreachable).toBe(2);
    probe(a, 'failure');
    expect(results.unreachable).toBe(2);
    probe(a, 'success');
    probe(a, 'success');
    expect(results.unreachable).toBe(1);
    results.removed(b);
    expect(results.unreachable).toBe(0);
  });

  it('exports known states per target only while perTargetMetrics is on', () => {
    const { results, gauge, probe } = setup();
    const [a, b, c] = [state('10.0.0.1'), state('10.0.0.2'), state('10.0.0.3')];
    probe(a, 'success');
    probe(b, 'failure');
    probe(b, 'failure');
    probe(c, 'error');
    expect(gauge.series.size).toBe(0);
    results.setPerTargetMetrics(true, [a, b, c]);
    expect(Object.fromEntries(gauge.series)).toEqual({ '10.0.0.1': 1, '10.0.0.2': 0 });
    probe(c, 'success');
    expect(gauge.series.get('10.0.0.3')).toBe(1);
    results.removed(a);
    expect(gauge.series.has('10.0.0.1')).toBe(false);
    results.setPerTargetMetrics(false, [b, c]);
    expect(gauge.series.size).toBe(0);
    probe(b, 'success');
    probe(b, 'success');
    expect(gauge.series.size).toBe(0);
  });
});

describe('ProbeResults first round', () => {
  it('completes once every target is known, probed with an error, or removed', async () => {
    const { results, probe } = setup();
    const [a, b, c, d] = [state('10.0.0.1'), state('10.0.0.2'), state('10.0.0.3'), state('10.0.0.4')];
    let done = false;
    void results.firstRoundComplete().then(() => (done = true));
    results.beginFirstRound(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], 60_000);
    probe(a, 'success');
    probe(b, 'failure'); // still unknown: not settled
    probe(c, 'error');
    results.removed(d);
    await Promise.resolve();
    expect(done).toBe(false);
    probe(b, 'failure');
    await Promise.resolve();
    expect(done).toBe(true);
    results.endFirstRound();
  });

  it('completes at once without targets, at stop, and at its deadline with a warning', async () => {
    vi.useFakeTimers();
    const { results, lines } = setup();
    results.beginFirstRound([], 1000);
    await expect(results.firstRoundComplete()).resolves.toBeUndefined();

    results.endFirstRound();
    let done = false;
    void results.firstRoundComplete().then(() => (done = true));
    results.beginFirstRound(['10.0.0.1', '10.0.0.2'], 1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(lines().find((line) => line.msg === 'first probe round incomplete at its deadline; those targets stay unknown')).toMatchObject({ pending: 2, deadlineMs: 1000 });

    results.endFirstRound();
    done = false;
    void results.firstRoundComplete().then(() => (done = true));
    results.beginFirstRound(['10.0.0.1'], 1000);
    results.endFirstRound();
    await Promise.resolve();
    expect(done).toBe(true);
  });
});
