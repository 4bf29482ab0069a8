import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, configVersion, parseConfig, parseDuration } from '../../src/config/config.js';

describe('parseConfig', () => {
  it('gives the defaults for an empty mapping', () => {
    expect(parseConfig('{}')).toEqual(DEFAULT_CONFIG);
  });

  it.each([
    { name: 'an empty document', yaml: '' },
    { name: 'a blank document', yaml: '  \n\n' },
    { name: 'a document of comments only', yaml: '# allowCidrs: [10.0.0.0/8]\n' },
  ])('rejects $name rather than falling back to the defaults', ({ yaml }) => {
    expect(() => parseConfig(yaml)).toThrow(/^config\.yaml: is empty/);
  });

  it('reads every documented key', () => {
    const config = parseConfig(`
probe:
  mode: both
  interval: 1s
  timeout: 500ms
  fastInterval: 100ms
  failureThreshold: 2
  successThreshold: 2
  concurrency: 64
  tcpThreads: 2
  refusedIsReachable: false
  icmpUnavailable: fail
  tcpProbe: half-open
  halfOpenUnavailable: fail
allowCidrs: [10.233.0.0/16, "fd00::/8"]
namespaces: { include: [a], exclude: [b] }
probeReplicas: 3
selfIsolationShare: 0.8
heartbeatPeriod: 1m
perTargetMetrics: true
logLevel: debug
controller: { quorum: any, maxEjectionShare: 0.25, reportStaleAfter: 45s }
`);
    expect(config.probe).toEqual({
      mode: 'both', intervalMs: 1000, timeoutMs: 500, fastIntervalMs: 100, failureThreshold: 2,
      successThreshold: 2, concurrency: 64, tcpThreads: 2, refusedIsReachable: false, icmpUnavailable: 'fail',
      tcpProbe: 'half-open', halfOpenUnavailable: 'fail',
    });
    expect(config.allowCidrs).toEqual(['10.233.0.0/16', 'fd00::/8']);
    expect(config.namespaces).toEqual({ include: ['a'], exclude: ['b'] });
    expect(config.heartbeatPeriodMs).toBe(60_000);
    expect(config.controller).toEqual({ quorum: 'any', maxEjectionShare: 0.25, reportStaleAfterMs: 45_000 });
  });

  it.each([
    { name: 'zero interval', yaml: 'probe: { interval: 0s }', key: 'probe.interval' },
    { name: 'negative interval', yaml: 'probe: { interval: -1s }', key: 'probe.interval' },
    { name: 'number instead of duration', yaml: 'probe: { timeout: 500 }', key: 'probe.timeout' },
    { name: 'timeout above interval', yaml: 'probe: { interval: 1s, timeout: 2s }', key: 'probe.timeout' },
    { name: 'unknown top-level key', yaml: 'intervall: 1s', key: 'intervall' },
    { name: 'unknown nested key', yaml: 'probe: { retries: 3 }', key: 'probe.retries' },
    { name: 'bad mode', yaml: 'probe: { mode: udp }', key: 'probe.mode' },
    { name: 'threshold of zero', yaml: 'probe: { failureThreshold: 0 }', key: 'probe.failureThreshold' },
    { name: 'fractional concurrency', yaml: 'probe: { concurrency: 1.5 }', key: 'probe.concurrency' },
    { name: 'negative thread count', yaml: 'probe: { tcpThreads: -1 }', key: 'probe.tcpThreads' },
    { name: 'string boolean', yaml: 'perTargetMetrics: "yes"', key: 'perTargetMetrics' },
    { name: 'bad TCP prober', yaml: 'probe: { tcpProbe: syn }', key: 'probe.tcpProbe' },
    { name: 'bad half-open fallback', yaml: 'probe: { halfOpenUnavailable: fallback-tcp }', key: 'probe.halfOpenUnavailable' },
    { name: 'bad CIDR', yaml: 'allowCidrs: [10.0.0.0/33]', key: 'allowCidrs' },
    { name: 'CIDR list not a list', yaml: 'allowCidrs: 10.0.0.0/8', key: 'allowCidrs' },
    { name: 'share above one', yaml: 'selfIsolationShare: 1.5', key: 'selfIsolationShare' },
    { name: 'bad quorum', yaml: 'controller: { quorum: most }', key: 'controller.quorum' },
    { name: 'negative replicas', yaml: 'probeReplicas: -1', key: 'probeReplicas' },
    { name: 'bad log level', yaml: 'logLevel: loud', key: 'logLevel' },
    { name: 'not a mapping', yaml: '- a\n- b', key: 'config.yaml' },
  ])('rejects $name with an error naming $key', ({ yaml, key }) => {
    let error: unknown;
    try {
      parseConfig(yaml);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).key).toBe(key);
    expect((error as ConfigError).message).toContain(key);
  });

  it('rejects invalid YAML and duplicate keys', () => {
    expect(() => parseConfig('probe: [')).toThrow(ConfigError);
    expect(() => parseConfig('probeReplicas: 1\nprobeReplicas: 2')).toThrow(/not valid YAML/);
  });
});

describe('configVersion', () => {
  const yaml = 'probe: { interval: 1s }\nallowCidrs: [10.0.0.0/8]\n';

  it('is the same for the same settings, whatever the spelling, comments or key order', () => {
    const respelled = '# edited\nallowCidrs:\n  - 10.0.0.0/8\nprobe:\n  interval: 1000ms\n';
    expect(configVersion(parseConfig(respelled))).toBe(configVersion(parseConfig(yaml)));
  });

  it('changes with any setting', () => {
    expect(configVersion(parseConfig(`${yaml}probeReplicas: 1\n`))).not.toBe(configVersion(parseConfig(yaml)));
    expect(configVersion(parseConfig('{}'))).not.toBe(configVersion(parseConfig(yaml)));
  });

  it('is 16 hex digits', () => {
    expect(configVersion(DEFAULT_CONFIG)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500], ['2s', 2000], ['1.5s', 1500], ['1m', 60_000], ['1h', 3_600_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration('k', text)).toBe(ms);
  });
});
