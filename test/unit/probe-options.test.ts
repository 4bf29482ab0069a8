import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, parseConfig } from '../../src/config/config.js';
import { DEFAULT_PROBE_OPTIONS, PROBE_OPTIONS, resolveProbeOptions, type ProbeEngineOptions } from '../../src/probe/options.js';

/** The option `name` as parsed from a config.yaml that sets it to `value` (a duration in ms written as `<n>ms`). */
function viaConfig(name: keyof ProbeEngineOptions, value: unknown): unknown {
  const { key, rule } = PROBE_OPTIONS[name];
  const written = rule.kind === 'duration' && typeof value === 'number' ? `${value}ms` : value;
  const [section, leaf] = key.includes('.') ? key.split('.') : [undefined, key];
  // config.yaml wants the timeout within the interval: the other of the two keeps it so, and only the option under test decides.
  const others = name === 'intervalMs' ? { timeout: '1ms' } : { interval: '1h' };
  const document = section ? { [section]: { ...others, [leaf!]: written } } : { [leaf!]: written };
  const config = parseConfig(JSON.stringify(document));
  return name === 'allowCidrs' || name === 'perTargetMetrics' ? config[name] : config.probe[name];
}

function errorOf(run: () => unknown): Error | undefined {
  try {
    run();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/** Values on either side of each option's bounds, with whether they are valid. */
const CASES: { name: keyof ProbeEngineOptions; value: unknown; valid: boolean }[] = [
  { name: 'intervalMs', value: 1, valid: true },
  { name: 'intervalMs', value: 0, valid: false },
  { name: 'timeoutMs', value: 0, valid: false },
  { name: 'fastIntervalMs', value: 1, valid: true },
  { name: 'fastIntervalMs', value: 0, valid: false },
  { name: 'failureThreshold', value: 100, valid: true },
  { name: 'failureThreshold', value: 101, valid: false },
  { name: 'successThreshold', value: 0, valid: false },
  { name: 'concurrency', value: 65_536, valid: true },
  { name: 'concurrency', value: 65_537, valid: false },
  { name: 'tcpThreads', value: 64, valid: true },
  { name: 'tcpThreads', value: 65, valid: false },
  { name: 'mode', value: 'both', valid: true },
  { name: 'mode', value: 'udp', valid: false },
  { name: 'icmpUnavailable', value: 'fail', valid: true },
  { name: 'icmpUnavailable', value: 'retry', valid: false },
  { name: 'refusedIsReachable', value: 'yes', valid: false },
  { name: 'perTargetMetrics', value: true, valid: true },
  { name: 'allowCidrs', value: [''], valid: false },
];

describe('PROBE_OPTIONS, the one schema of the probe options', () => {
  it('gives the defaults of the engine and of config.yaml alike', () => {
    expect(resolveProbeOptions()).toEqual(DEFAULT_PROBE_OPTIONS);
    const { allowCidrs, perTargetMetrics, ...probe } = DEFAULT_PROBE_OPTIONS;
    expect({ probe, allowCidrs, perTargetMetrics }).toEqual({ probe: DEFAULT_CONFIG.probe, allowCidrs: DEFAULT_CONFIG.allowCidrs, perTargetMetrics: DEFAULT_CONFIG.perTargetMetrics });
  });

  it.each(CASES)('$name = $value: valid $valid for the engine and in config.yaml', ({ name, value, valid }) => {
    if (valid) {
      expect(resolveProbeOptions({ [name]: value })[name]).toEqual(value);
      expect(viaConfig(name, value)).toEqual(value);
      return;
    }
    const engineError = errorOf(() => resolveProbeOptions({ [name]: value }));
    const configError = errorOf(() => viaConfig(name, value));
    expect(engineError).toBeInstanceOf(TypeError);
    expect(configError).toBeInstanceOf(ConfigError);
    expect((configError as ConfigError).key).toBe(PROBE_OPTIONS[name].key);
    // The same rule in the same words, after each source's name of the option.
    const rule = (message: string, prefix: string): string => message.slice(prefix.length).replace(/, got .*/, '');
    expect(engineError!.message.startsWith(`${name} must be`)).toBe(true);
    expect(rule(configError!.message, `${PROBE_OPTIONS[name].key}: `)).toBe(rule(engineError!.message, `${name} `));
  });
});
