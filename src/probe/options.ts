import { BOOLEAN, DURATION, NAMES, settingProblem, type SettingRule } from '../settings.js';

export const PROBE_MODES = ['tcp', 'icmp', 'both'] as const;
/** How a target is probed: TCP connect to its ports, ICMP echo, or both (reachable if either answers). */
export type ProbeMode = (typeof PROBE_MODES)[number];

export const ICMP_UNAVAILABLE_CHOICES = ['fallback-tcp', 'fail'] as const;
export const TCP_PROBES = ['connect', 'half-open'] as const;
export const HALF_OPEN_UNAVAILABLE_CHOICES = ['fallback-connect', 'fail'] as const;

export interface ProbeEngineOptions {
  /** Time between two probes of a settled target. */
  intervalMs: number;
  /** Time a single probe may take before it counts as a timeout. */
  timeoutMs: number;
  /** Time before the next probe while a target's state is being confirmed (HAProxy `fastinter`). */
  fastIntervalMs: number;
  /** Consecutive failed probes that make a target unreachable. */
  failureThreshold: number;
  /** Consecutive successful probes that make an unreachable target reachable again. */
  successThreshold: number;
  mode: ProbeMode;
  /** Probes in flight at once, for the whole process (one pool). */
  concurrency: number;
  /** Worker threads that run the TCP connects; 0 runs them on the main thread (see docs/probe.md). */
  tcpThreads: number;
  /** Addresses outside these CIDRs are never probed (the entries' syntax: parseAllowList). */
  allowCidrs: string[];
  /** Whether a TCP RST (connection refused) counts as reachable: it proves the path to the host works. */
  refusedIsReachable: boolean;
  /** What to do when ICMP is needed but raw sockets are not permitted: probe with TCP only, or refuse to start. */
  icmpUnavailable: (typeof ICMP_UNAVAILABLE_CHOICES)[number];
  /** Export `eps_probe_target_reachable{address}` (one series per target). */
  perTargetMetrics: boolean;
  /** How a TCP port is probed: a full connect(), or half-open (a SYN from a raw socket, answered by SYN-ACK or RST; needs NET_RAW). */
  tcpProbe: (typeof TCP_PROBES)[number];
  /** What to do when half-open probing is configured but raw sockets are not permitted: probe with connect(), or refuse to start. */
  halfOpenUnavailable: (typeof HALF_OPEN_UNAVAILABLE_CHOICES)[number];
}

/** One option: its dotted key in the ConfigMap's config.yaml, the rule its value keeps, its default. */
export interface ProbeOptionSpec<T> {
  key: string;
  rule: SettingRule;
  default: T;
}

/**
 * The probe options, once: the ConfigMap parser (src/config) and resolveProbeOptions both read and
 * check them by this schema. Durations are milliseconds here; config.yaml writes them as `2s`, `500ms`.
 * docs/probe.md explains each.
 */
export const PROBE_OPTIONS: { readonly [F in keyof ProbeEngineOptions]: Readonly<ProbeOptionSpec<ProbeEngineOptions[F]>> } = {
  mode: { key: 'probe.mode', rule: { kind: 'oneOf', values: PROBE_MODES }, default: 'tcp' },
  intervalMs: { key: 'probe.interval', rule: DURATION, default: 2000 },
  timeoutMs: { key: 'probe.timeout', rule: DURATION, default: 1000 },
  fastIntervalMs: { key: 'probe.fastInterval', rule: DURATION, default: 200 },
  failureThreshold: { key: 'probe.failureThreshold', rule: { kind: 'integer', min: 1, max: 100 }, default: 3 },
  successThreshold: { key: 'probe.successThreshold', rule: { kind: 'integer', min: 1, max: 100 }, default: 2 },
  concurrency: { key: 'probe.concurrency', rule: { kind: 'integer', min: 1, max: 65_536 }, default: 512 },
  tcpThreads: { key: 'probe.tcpThreads', rule: { kind: 'integer', min: 0, max: 64 }, default: 0 },
  allowCidrs: { key: 'allowCidrs', rule: NAMES, default: [] },
  refusedIsReachable: { key: 'probe.refusedIsReachable', rule: BOOLEAN, default: true },
  icmpUnavailable: { key: 'probe.icmpUnavailable', rule: { kind: 'oneOf', values: ICMP_UNAVAILABLE_CHOICES }, default: 'fallback-tcp' },
  perTargetMetrics: { key: 'perTargetMetrics', rule: BOOLEAN, default: false },
  tcpProbe: { key: 'probe.tcpProbe', rule: { kind: 'oneOf', values: TCP_PROBES }, default: 'connect' },
  halfOpenUnavailable: { key: 'probe.halfOpenUnavailable', rule: { kind: 'oneOf', values: HALF_OPEN_UNAVAILABLE_CHOICES }, default: 'fallback-connect' },
};

const OPTION_NAMES = Object.keys(PROBE_OPTIONS) as (keyof ProbeEngineOptions)[];

/** Every default, from PROBE_OPTIONS. */
export const DEFAULT_PROBE_OPTIONS: Readonly<ProbeEngineOptions> = Object.freeze(
  Object.fromEntries(OPTION_NAMES.map((name) => [name, PROBE_OPTIONS[name].default])) as unknown as ProbeEngineOptions,
);

/**
 * Fills missing fields from DEFAULT_PROBE_OPTIONS (not from any previous value) and checks each by
 * PROBE_OPTIONS.
 * @throws TypeError naming the bad option.
 */
export function resolveProbeOptions(options: Partial<ProbeEngineOptions> = {}): ProbeEngineOptions {
  const resolved: ProbeEngineOptions = { ...DEFAULT_PROBE_OPTIONS, ...options };
  for (const name of OPTION_NAMES) {
    const problem = settingProblem(PROBE_OPTIONS[name].rule, resolved[name]);
    if (problem) throw new TypeError(`${name} ${problem}`);
  }
  return resolved;
}
