import { describe, expect, it } from 'vitest';
import type { ProbeOutcome } from '../../src/probe/outcome.js';
import { TargetProbeState } from '../../src/probe/target-state.js';

const OPTIONS = { failureThreshold: 2, successThreshold: 2, refusedIsReachable: true };

describe('TargetProbeState step', () => {
  it('records what a probe saw and returns the state before it', () => {
    const state = new TargetProbeState({ address: '10.0.0.1', ports: [80, 443], owners: ['ns/svc'] });
    const failed: ProbeOutcome[] = [
      { protocol: 'tcp', result: 'timeout', durationMs: 50, error: 'ETIMEDOUT' },
      { protocol: 'icmp', result: 'failure', durationMs: 4 },
    ];
    expect(state.record('failure', failed, 1000, OPTIONS)).toBe('unknown');
    expect(state.status()).toEqual({
      address: '10.0.0.1',
      owners: ['ns/svc'],
      ports: [80, 443],
      state: 'unknown',
      lastProbeAt: 1000,
      lastError: 'tcp timeout: ETIMEDOUT; icmp failure',
    });
    expect(state.record('failure', failed, 1100, OPTIONS)).toBe('unknown');
    expect(state.health.state).toBe('unreachable');

    const answered: ProbeOutcome[] = [
      { protocol: 'tcp', result: 'refused', durationMs: 2, error: 'ECONNREFUSED' },
      { protocol: 'icmp', result: 'success', durationMs: 5 },
    ];
    expect(state.record('success', answered, 1200, OPTIONS)).toBe('unreachable');
    expect(state.status()).toEqual({ address: '10.0.0.1', owners: ['ns/svc'], ports: [80, 443], state: 'unreachable', lastProbeAt: 1200, lastRttMs: 2 });
    expect(state.record('success', answered, 1300, OPTIONS)).toBe('unreachable');
    expect(state.health.state).toBe('reachable');
  });

  it('keeps its state through errors', () => {
    const state = new TargetProbeState({ address: '10.0.0.1', ports: [], owners: ['ns/svc'] });
    expect(state.record('success', [{ protocol: 'icmp', result: 'success', durationMs: 1 }], 1000, OPTIONS)).toBe('unknown');
    expect(state.record('error', [{ protocol: 'icmp', result: 'error', durationMs: 0, error: 'EPERM' }], 2000, OPTIONS)).toBe('reachable');
    expect(state.status()).toMatchObject({ state: 'reachable', lastProbeAt: 2000, lastError: 'icmp error: EPERM' });
    expect(state.status().lastRttMs).toBeUndefined();
  });
});
