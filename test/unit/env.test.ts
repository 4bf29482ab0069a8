import { describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TIMINGS, DEFAULT_LIVENESS_LIMITS, leaseTimingsOf, livenessLimitsOf } from '../../src/config/env.js';
import { StartupError } from '../../src/startup.js';

describe('leaseTimingsOf', () => {
  it('gives the defaults for an empty environment', () => {
    expect(leaseTimingsOf({})).toEqual(DEFAULT_LEASE_TIMINGS);
  });

  it('reads the three variables', () => {
    expect(leaseTimingsOf({ EPS_LEASE_DURATION_MS: '3000', EPS_LEASE_RENEW_DEADLINE_MS: '2000', EPS_LEASE_RETRY_PERIOD_MS: '300' })).toEqual({
      leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300,
    });
  });

  it.each([
    { name: 'a word', value: 'abc' },
    { name: 'zero', value: '0' },
    { name: 'a negative number', value: '-5' },
    { name: 'a fraction', value: '1.5' },
    { name: 'empty', value: '' },
    { name: 'a unit', value: '15s' },
  ])('rejects $name, naming the variable', ({ value }) => {
    expect(() => leaseTimingsOf({ EPS_LEASE_DURATION_MS: value })).toThrow(
      new StartupError(
        `environment variable EPS_LEASE_DURATION_MS must be a positive whole number of milliseconds, got "${value}"`,
        'set EPS_LEASE_DURATION_MS to milliseconds (e.g. 15000, the default) or remove it from the container\'s env',
      ),
    );
  });

  it.each([
    { name: 'renew deadline not below the duration', env: { EPS_LEASE_RENEW_DEADLINE_MS: '15000' } },
    { name: 'retry period not below the renew deadline', env: { EPS_LEASE_RETRY_PERIOD_MS: '10000' } },
  ])('rejects timings out of order: $name', ({ env }) => {
    expect(() => leaseTimingsOf(env)).toThrow(/must satisfy EPS_LEASE_RETRY_PERIOD_MS < EPS_LEASE_RENEW_DEADLINE_MS < EPS_LEASE_DURATION_MS/);
  });
});

describe('livenessLimitsOf', () => {
  it('gives the defaults for an empty environment, else reads the variables', () => {
    expect(livenessLimitsOf({})).toEqual(DEFAULT_LIVENESS_LIMITS);
    expect(livenessLimitsOf({ EPS_LIVENESS_WATCH_MS: '3000', EPS_LIVENESS_EVENT_LOOP_LAG_MS: '100' })).toEqual({ watchMs: 3000, eventLoopLagMs: 100 });
  });

  it('rejects a bad value, naming the variable', () => {
    expect(() => livenessLimitsOf({ EPS_LIVENESS_EVENT_LOOP_LAG_MS: 'x' })).toThrow(/EPS_LIVENESS_EVENT_LOOP_LAG_MS must be a positive whole number/);
  });
});
