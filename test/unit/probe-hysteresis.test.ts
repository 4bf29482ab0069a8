import { describe, expect, it } from 'vitest';
import { INITIAL_HEALTH, nextDelayMs, observe, type Health, type Reachability } from '../../src/probe/hysteresis.js';
import { timeoutResult, type ProbeVerdict } from '../../src/probe/outcome.js';

const thresholds = { failureThreshold: 3, successThreshold: 2 };
const cadence = { intervalMs: 1000, fastIntervalMs: 100 };

/** Feeds verdicts one probe at a time and returns the state after each. */
function statesAfter(verdicts: ProbeVerdict[], start: Health = INITIAL_HEALTH): Reachability[] {
  let health = start;
  return verdicts.map((verdict) => (health = observe(health, verdict, thresholds)).state);
}

describe('observe (one call per probe)', () => {
  it('makes an unknown target reachable on its first success', () => {
    expect(statesAfter(['success'])).toEqual(['reachable']);
  });

  it('makes a target unreachable only at the failureThreshold-th consecutive failure', () => {
    expect(statesAfter(['success', 'failure', 'failure', 'failure'])).toEqual(['reachable', 'reachable', 'reachable', 'unreachable']);
  });

  it('decides an unknown target unreachable after failureThreshold failures', () => {
    expect(statesAfter(['failure', 'failure', 'failure'])).toEqual(['unknown', 'unknown', 'unreachable']);
  });

  it('restarts the failure run after a success in between', () => {
    expect(statesAfter(['success', 'failure', 'failure', 'success', 'failure', 'failure'])).not.toContain('unreachable');
  });

  it('needs successThreshold consecutive successes to make an unreachable target reachable', () => {
    expect(statesAfter(['failure', 'failure', 'failure', 'success', 'failure', 'success', 'success'])).toEqual([
      'unknown',
      'unknown',
      'unreachable',
      'unreachable',
      'unreachable',
      'unreachable',
      'reachable',
    ]);
  });

  it('ignores probe errors: they neither count as failures nor break a run', () => {
    expect(statesAfter(['success', 'failure', 'error', 'error', 'failure', 'error', 'failure'])).toEqual([
      'reachable',
      'reachable',
      'reachable',
      'reachable',
      'reachable',
      'reachable',
      'unreachable',
    ]);
  });

  it('never marks a target unreachable on errors alone', () => {
    expect(statesAfter(Array<ProbeVerdict>(50).fill('error'))).toEqual(Array(50).fill('unknown'));
  });
});

describe('nextDelayMs', () => {
  const reachable: Health = { state: 'reachable', lastVerdict: 'success', run: 5 };
  const unreachable: Health = { state: 'unreachable', lastVerdict: 'failure', run: 5 };
  it.each([
    { name: 'a settled reachable target waits a full interval', health: reachable, verdict: 'success', expected: 1000 },
    { name: 'a settled unreachable target waits a full interval', health: unreachable, verdict: 'failure', expected: 1000 },
    { name: 'a reachable target that just failed is re-probed fast', health: { state: 'reachable', lastVerdict: 'failure', run: 1 }, verdict: 'failure', expected: 100 },
    { name: 'an unreachable target that just succeeded is re-probed fast', health: { state: 'unreachable', lastVerdict: 'success', run: 1 }, verdict: 'success', expected: 100 },
    { name: 'an unknown target is re-probed fast', health: { state: 'unknown', lastVerdict: 'failure', run: 1 }, verdict: 'failure', expected: 100 },
    { name: 'a local error waits a full interval', health: { state: 'unknown', run: 0 }, verdict: 'error', expected: 1000 },
  ] satisfies { name: string; health: Health; verdict: ProbeVerdict; expected: number }[])('$name', ({ health, verdict, expected }) => {
    expect(nextDelayMs(health, verdict, cadence)).toBe(expected);
  });
});

describe('timeoutResult', () => {
  it.each([
    { name: 'on time', elapsedMs: 510, result: 'timeout', error: 'ETIMEDOUT' },
    { name: 'somewhat late', elapsedMs: 990, result: 'timeout', error: 'ETIMEDOUT' },
    { name: 'more than twice the timeout (starved event loop)', elapsedMs: 1001, result: 'error', error: 'ELOOPLAG' },
  ])('a 500 ms timeout decided $name is $result', ({ elapsedMs, result, error }) => {
    expect(timeoutResult(elapsedMs, 500)).toEqual({ result, error });
  });
});
