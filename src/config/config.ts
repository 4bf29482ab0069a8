// The one typed configuration of agent and controller: parsed and validated once per (re)load from
// the ConfigMap's `config.yaml`, then passed into constructors. Nothing else reads the ConfigMap.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { QUORUMS, type Quorum } from '../report/aggregate.js';
import { canonicalJson } from '../report/prune.js';
import { parseAllowList } from '../probe/address.js';
import { DEFAULT_PROBE_OPTIONS, PROBE_OPTIONS, type ProbeEngineOptions } from '../probe/options.js';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, type LogLevel } from '../log.js';
import { BOOLEAN, DURATION, NAMES, SHARE, settingProblem, type SettingRule } from '../settings.js';

type ConfigProbeOptions = Omit<ProbeEngineOptions, 'allowCidrs' | 'perTargetMetrics'>;

export interface Config {
  /** The probe options of config.yaml's `probe` section (PROBE_OPTIONS). */
  probe: ConfigProbeOptions;
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

const { allowCidrs: defaultAllowCidrs, perTargetMetrics: defaultPerTargetMetrics, ...defaultProbe } = DEFAULT_PROBE_OPTIONS;

/** Every default in one object (the probe options' from PROBE_OPTIONS); README's configuration table lists the same values. */
export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze<Config>({
  probe: defaultProbe,
  allowCidrs: defaultAllowCidrs,
  namespaces: { include: [], exclude: [] },
  probeReplicas: 0,
  selfIsolationShare: 0.5,
  abstainWhenStarved: true,
  heartbeatPeriodMs: 30_000,
  perTargetMetrics: defaultPerTargetMetrics,
  logLevel: DEFAULT_LOG_LEVEL,
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

/** Parses `500ms`, `2s`, `1.5s`, `1m` (Kubernetes/Go style) into milliseconds, which must be above zero. */
export function parseDuration(key: string, value: unknown): number {
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value) : null;
  if (!match) throw new ConfigError(key, `must be a duration such as "2s" or "500ms", got ${JSON.stringify(value)}`);
  return checked(key, Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!]!), DURATION, value);
}

/** `value` (parsed from `written`) when it keeps `rule`. */
function checked<T>(key: string, value: T, rule: SettingRule, written: unknown = value): T {
  const problem = settingProblem(rule, value, JSON.stringify(written));
  if (problem) throw new ConfigError(key, problem);
  return value;
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

/** The mapping under `raw[name]` (empty when absent), with no keys but `known`. */
function section(raw: Raw, name: string, known: readonly string[]): Raw {
  const value = name in raw ? object(name, raw[name]) : {};
  rejectUnknown(name, value, known);
  return value;
}

/** `raw[name]` checked by `rule` (a duration written as text) when present, else `fallback`. */
function field<T>(raw: Raw, path: string, name: string, fallback: T, rule: SettingRule): T {
  if (!(name in raw)) return fallback;
  const key = path ? `${path}.${name}` : name;
  return rule.kind === 'duration' ? (parseDuration(key, raw[name]) as T) : checked(key, raw[name] as T, rule);
}

/** The options of config.yaml's `probe` section and their keys there; the others sit at the top. */
const PROBE_SECTION_KEYS = Object.fromEntries(
  Object.entries(PROBE_OPTIONS).flatMap(([name, { key }]) => (key.startsWith('probe.') ? [[name, key.slice('probe.'.length)]] : [])),
) as Record<keyof ConfigProbeOptions, string>;

/** A probe option set at the top of config.yaml, by its key in PROBE_OPTIONS. */
function topProbeOption<F extends 'allowCidrs' | 'perTargetMetrics'>(raw: Raw, name: F): ProbeEngineOptions[F] {
  const { key, rule, default: fallback } = PROBE_OPTIONS[name];
  return field(raw, '', key, fallback, rule);
}

const CONTROLLER_KEYS = ['quorum', 'maxEjectionShare', 'reportStaleAfter'] as const;
const TOP_KEYS = ['probe', 'allowCidrs', 'namespaces', 'probeReplicas', 'selfIsolationShare', 'abstainWhenStarved', 'heartbeatPeriod', 'perTargetMetrics', 'logLevel', 'controller'] as const;

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

  const probeRaw = section(raw, 'probe', Object.values(PROBE_SECTION_KEYS));
  const probe = Object.fromEntries(
    Object.entries(PROBE_SECTION_KEYS).map(([name, key]) => {
      const option = name as keyof ConfigProbeOptions;
      return [option, field(probeRaw, 'probe', key, d.probe[option], PROBE_OPTIONS[option].rule)];
    }),
  ) as unknown as ConfigProbeOptions;
  // A rule of config.yaml, not of PROBE_OPTIONS: the engine copes with a timeout above the interval
  // (a target's next probe waits for the answer), and its loopback tests run it so.
  if (probe.timeoutMs > probe.intervalMs) {
    throw new ConfigError('probe.timeout', `must not exceed probe.interval (${probe.intervalMs}ms), got ${probe.timeoutMs}ms`);
  }

  const allowCidrs = [...topProbeOption(raw, 'allowCidrs')];
  try {
    parseAllowList(allowCidrs);
  } catch (err) {
    throw new ConfigError('allowCidrs', (err as Error).message);
  }

  const namespacesRaw = section(raw, 'namespaces', ['include', 'exclude']);
  const controllerRaw = section(raw, 'controller', CONTROLLER_KEYS);

  return {
    probe,
    allowCidrs,
    namespaces: {
      include: field(namespacesRaw, 'namespaces', 'include', [], NAMES),
      exclude: field(namespacesRaw, 'namespaces', 'exclude', [], NAMES),
    },
    probeReplicas: field(raw, '', 'probeReplicas', d.probeReplicas, { kind: 'integer', min: 0, max: 1000 }),
    selfIsolationShare: field(raw, '', 'selfIsolationShare', d.selfIsolationShare, SHARE),
    abstainWhenStarved: field(raw, '', 'abstainWhenStarved', d.abstainWhenStarved, BOOLEAN),
    heartbeatPeriodMs: field(raw, '', 'heartbeatPeriod', d.heartbeatPeriodMs, DURATION),
    perTargetMetrics: topProbeOption(raw, 'perTargetMetrics'),
    logLevel: field(raw, '', 'logLevel', d.logLevel, { kind: 'oneOf', values: LOG_LEVELS }),
    controller: {
      quorum: field(controllerRaw, 'controller', 'quorum', d.controller.quorum, { kind: 'oneOf', values: QUORUMS }),
      maxEjectionShare: field(controllerRaw, 'controller', 'maxEjectionShare', d.controller.maxEjectionShare, SHARE),
      reportStaleAfterMs: field(controllerRaw, 'controller', 'reportStaleAfter', d.controller.reportStaleAfterMs, DURATION),
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
