import { describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TIMINGS, DEFAULT_LIVENESS_LIMITS, leaseTimingsOf, livenessLimitsOf, parseBootstrap } from '../../src/config/env.js';
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

describe('parseBootstrap', () => {
  const spec = { command: 'agent', identityEnv: 'NODE_NAME', defaultMetricsPort: 9464 };

  it('takes a flag over its variable, and the variable over the default', () => {
    expect(parseBootstrap(['--metrics-port', '1000'], spec, { NODE_NAME: 'n1', METRICS_PORT: '2000' })).toMatchObject({ identity: 'n1', metricsPort: 1000 });
    expect(parseBootstrap([], spec, { NODE_NAME: 'n1', METRICS_PORT: '2000' })).toMatchObject({ metricsPort: 2000 });
    expect(parseBootstrap([], spec, { NODE_NAME: 'n1' })).toMatchObject({ metricsPort: 9464, namespace: 'eps-probe-plugin', logLevel: 'info' });
  });

  it.each([
    { name: 'a port from the environment that is no number', argv: [], env: { NODE_NAME: 'n1', METRICS_PORT: 'abc' }, message: '--metrics-port (METRICS_PORT) must be a port number, got "abc"' },
    { name: 'an empty port', argv: ['--metrics-port', ''], env: { NODE_NAME: 'n1' }, message: '--metrics-port (METRICS_PORT) must be a port number, got ""' },
    { name: 'an unknown log level', argv: [], env: { NODE_NAME: 'n1', LOG_LEVEL: 'loud' }, message: '--log-level (LOG_LEVEL) must be one of trace, debug, info, warn, error, fatal, silent, got "loud"' },
    { name: 'no identity', argv: [], env: {}, message: '--identity (or NODE_NAME) is required' },
  ])('rejects $name, naming the flag and its variable', ({ argv, env, message }) => {
    expect(() => parseBootstrap(argv, spec, env)).toThrow(new TypeError(message));
  });
});
