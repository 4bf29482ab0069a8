// The one typed configuration of agent and controller: parsed and validated once per (re)load from
// the ConfigMap's `config.yaml`, then passed into constructors. Nothing else reads the ConfigMap.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { QUORUMS, type Quorum } from '../report/aggregate.js';
import { canonicalJson } from '../report/prune.js';
import { parseAllowList } from '../probe/address.js';
import { DEFAULT_PROBE_OPTIONS, type ProbeEngineOptions, type ProbeMode } from '../probe/options.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';


export interface Config {
  probe: Omit<ProbeEngineOptions, 'allowCidrs' | 'perTargetMetrics'>;
  /** Only addresses inside these CIDRs are probed (empty: nothing is). */
  allowCidrs: string[];
  namespaces: { include: string[]; exclude: string[] };
  /** Agents probing each target (rendezvous hashing); 0 = every agent probes every target. */
  probeReplicas: number;
  /** Share of known targets unreachable at once above which a node calls itself suspect. */
  selfIsolationShare: number;
  /** A starved agent (event loop stalls beyond half of probe.timeout) votes no address unreachable until it recovers. */
  abstainWhenStarved: boolean;
  heartbeatPeriodMs: number;
  perTargetMetrics: boolean;
  logLevel: LogLevel;
  controller: {
    quorum: Quorum;
    /** At most this share of one ServiceImport's addresses is ever marked disconnected. */
    maxEjectionShare: number;
    /** A report whose heartbeat is older than this stops counting. */
    reportStaleAfterMs: number;
  };
}

/** Every default in one object; README's configuration table lists the same values. */
export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze<Config>({
  probe: {
    mode: DEFAULT_PROBE_OPTIONS.mode,
    intervalMs: DEFAULT_PROBE_OPTIONS.intervalMs,
    timeoutMs: DEFAULT_PROBE_OPTIONS.timeoutMs,
    fastIntervalMs: DEFAULT_PROBE_OPTIONS.fastIntervalMs,
    failureThreshold: DEFAULT_PROBE_OPTIONS.failureThreshold,
    successThreshold: DEFAULT_PROBE_OPTIONS.successThreshold,
    concurrency: DEFAULT_PROBE_OPTIONS.concurrency,
    tcpThreads: DEFAULT_PROBE_OPTIONS.tcpThreads,
    refusedIsReachable: DEFAULT_PROBE_OPTIONS.refusedIsReachable,
    icmpUnavailable: DEFAULT_PROBE_OPTIONS.icmpUnavailable,
    tcpProbe: DEFAULT_PROBE_OPTIONS.tcpProbe,
    halfOpenUnavailable: DEFAULT_PROBE_OPTIONS.halfOpenUnavailable,
  },
  allowCidrs: [],
  namespaces: { include: [], exclude: [] },
  probeReplicas: 0,
  selfIsolationShare: 0.5,
  abstainWhenStarved: true,
  heartbeatPeriodMs: 30_000,
  perTargetMetrics: false,
  logLevel: 'info',
  controller: { quorum: 'majority', maxEjectionShare: 0.5, reportStaleAfterMs: 90_000 },
});

/** A rejected configuration; `key` is the dotted path of the offending key. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(key ? `${key}: ${message}` : message);
    this.name = 'ConfigError';
  }
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `500ms`, `2s`, `1.5s`, `1m` (Kubernetes/Go style) into milliseconds. */
export function parseDuration(key: string, value: unknown): number {
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value) : null;
  if (!match) throw new ConfigError(key, `must be a duration such as "2s" or "500ms", got ${JSON.stringify(value)}`);
  const ms = Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!]!);
  if (ms <= 0) throw new ConfigError(key, `must be greater than zero, got ${JSON.stringify(value)}`);
  return ms;
}

type Raw = Record<string, unknown>;

function object(key: string, value: unknown): Raw {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key, `must be a mapping, got ${JSON.stringify(value)}`);
  }
  return value as Raw;
}

function rejectUnknown(key: string, raw: Raw, known: readonly string[]): void {
  for (const name of Object.keys(raw)) {
    if (!known.includes(name)) {
      const path = key ? `${key}.${name}` : name;
      throw new ConfigError(path, `unknown key (known keys${key ? ` of ${key}` : ''}: ${known.join(', ')})`);
    }
  }
}

function integer(key: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function share(key: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(key, `must be a number from 0 to 1, got ${JSON.stringify(value)}`);
  }
  return value;
}

function boolean(key: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function oneOf<T extends string>(key: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ConfigError(key, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function stringList(key: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item.length === 0)) {
    throw new ConfigError(key, `must be a list of non-empty strings, got ${JSON.stringify(value)}`);
  }
  return [...(value as string[])];
}

/** Applies `read` to `raw[name]` when present, else keeps `fallback`. */
function field<T>(raw: Raw, path: string, name: string, fallback: T, read: (key: string, value: unknown) => T): T {
  return name in raw ? read(path ? `${path}.${name}` : name, raw[name]) : fallback;
}

const PROBE_KEYS = ['mode', 'interval', 'timeout', 'fastInterval', 'failureThreshold', 'successThreshold', 'concurrency', 'tcpThreads', 'refusedIsReachable', 'icmpUnavailable', 'tcpProbe', 'halfOpenUnavailable'] as const;
const CONTROLLER_KEYS = ['quorum', 'maxEjectionShare', 'reportStaleAfter'] as const;
const TOP_KEYS = ['probe', 'allowCidrs', 'namespaces', 'probeReplicas', 'selfIsolationShare', 'abstainWhenStarved', 'heartbeatPeriod', 'perTargetMetrics', 'logLevel', 'controller'] as const;
const MODES: readonly ProbeMode[] = ['tcp', 'icmp', 'both'];

/**
 * Parses the ConfigMap's `config.yaml`. Missing keys take DEFAULT_CONFIG (`{}` is the defaults).
 * @throws ConfigError naming the key for any bad value, unknown key or YAML error, and for a document
 * with no content at all (empty, blank or only comments): an emptied ConfigMap is a mistake to
 * report, not a request for the defaults, whose empty allow-list would stop all probing.
 */
export function parseConfig(text: string): Config {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    throw new ConfigError('', `config.yaml is not valid YAML: ${(err as Error).message}`);
  }
  if (document === null || document === undefined) {
    throw new ConfigError('config.yaml', 'is empty (write `{}` for the defaults)');
  }
  const raw = object('config.yaml', document);
  rejectUnknown('', raw, TOP_KEYS);
  const d = DEFAULT_CONFIG;

  const probeRaw = field(raw, '', 'probe', {}, object);
  rejectUnknown('probe', probeRaw, PROBE_KEYS);
  const probe: Config['probe'] = {
    mode: field(probeRaw, 'probe', 'mode', d.probe.mode, (k, v) => oneOf(k, v, MODES)),
    intervalMs: field(probeRaw, 'probe', 'interval', d.probe.intervalMs, parseDuration),
    timeoutMs: field(probeRaw, 'probe', 'timeout', d.probe.timeoutMs, parseDuration),
    fastIntervalMs: field(probeRaw, 'probe', 'fastInterval', d.probe.fastIntervalMs, parseDuration),
    failureThreshold: field(probeRaw, 'probe', 'failureThreshold', d.probe.failureThreshold, (k, v) => integer(k, v, 1, 100)),
    successThreshold: field(probeRaw, 'probe', 'successThreshold', d.probe.successThreshold, (k, v) => integer(k, v, 1, 100)),
    concurrency: field(probeRaw, 'probe', 'concurrency', d.probe.concurrency, (k, v) => integer(k, v, 1, 65_536)),
    tcpThreads: field(probeRaw, 'probe', 'tcpThreads', d.probe.tcpThreads, (k, v) => integer(k, v, 0, 64)),
    refusedIsReachable: field(probeRaw, 'probe', 'refusedIsReachable', d.probe.refusedIsReachable, boolean),
    icmpUnavailable: field(probeRaw, 'probe', 'icmpUnavailable', d.probe.icmpUnavailable, (k, v) => oneOf(k, v, ['fallback-tcp', 'fail'] as const)),
    tcpProbe: field(probeRaw, 'probe', 'tcpProbe', d.probe.tcpProbe, (k, v) => oneOf(k, v, ['connect', 'half-open'] as const)),
    halfOpenUnavailable: field(probeRaw, 'probe', 'halfOpenUnavailable', d.probe.halfOpenUnavailable, (k, v) => oneOf(k, v, ['fallback-connect', 'fail'] as const)),
  };
  if (probe.timeoutMs > probe.intervalMs) {
    throw new ConfigError('probe.timeout', `must not exceed probe.interval (${probe.intervalMs}ms), got ${probe.timeoutMs}ms`);
  }

  const allowCidrs = field(raw, '', 'allowCidrs', [...d.allowCidrs], stringList);
  try {
    parseAllowList(allowCidrs);
  } catch (err) {
    throw new ConfigError('allowCidrs', (err as Error).message);
  }

  const namespacesRaw = field(raw, '', 'namespaces', {}, object);
  rejectUnknown('namespaces', namespacesRaw, ['include', 'exclude']);
  const controllerRaw = field(raw, '', 'controller', {}, object);
  rejectUnknown('controller', controllerRaw, CONTROLLER_KEYS);

  return {
    probe,
    allowCidrs,
    namespaces: {
      include: field(namespacesRaw, 'namespaces', 'include', [], stringList),
      exclude: field(namespacesRaw, 'namespaces', 'exclude', [], stringList),
    },
    probeReplicas: field(raw, '', 'probeReplicas', d.probeReplicas, (k, v) => integer(k, v, 0, 1000)),
    selfIsolationShare: field(raw, '', 'selfIsolationShare', d.selfIsolationShare, share),
    abstainWhenStarved: field(raw, '', 'abstainWhenStarved', d.abstainWhenStarved, boolean),
    heartbeatPeriodMs: field(raw, '', 'heartbeatPeriod', d.heartbeatPeriodMs, parseDuration),
    perTargetMetrics: field(raw, '', 'perTargetMetrics', d.perTargetMetrics, boolean),
    logLevel: field(raw, '', 'logLevel', d.logLevel, (k, v) => oneOf(k, v, LOG_LEVELS)),
    controller: {
      quorum: field(controllerRaw, 'controller', 'quorum', d.controller.quorum, (k, v) => oneOf(k, v, QUORUMS)),
      maxEjectionShare: field(controllerRaw, 'controller', 'maxEjectionShare', d.controller.maxEjectionShare, share),
      reportStaleAfterMs: field(controllerRaw, 'controller', 'reportStaleAfter', d.controller.reportStaleAfterMs, parseDuration),
    },
  };
}

/**
 * The version of a configuration: a digest of its parsed form, so that every process running the same
 * settings reports the same version, whether it read them from the ConfigMap or from the persisted
 * last good copy, before or after a restart, and edits of comments or spelling change nothing
 * (docs/adr/0007-last-good-configuration.md).
 */
export function configVersion(config: Config): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

/** The probe engine's options for a configuration. */
export function probeOptionsOf(config: Config): ProbeEngineOptions {
  return { ...config.probe, allowCidrs: config.allowCidrs, perTargetMetrics: config.perTargetMetrics };
}
