// The process environment and command-line flags of the long-running commands (agent,
// controller), read and validated once at start. Nothing else reads process.env.
import { parseArgs } from 'node:util';
import { StartupError } from '../startup.js';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, type LogLevel } from '../log.js';
import { DURATION, settingProblem } from '../settings.js';

export interface Bootstrap {
  kubeconfig?: string;
  /** This node (agent) or pod (controller) name. */
  identity: string;
  /** Namespace of the ConfigMap (and of the controller's Lease). */
  namespace: string;
  configName: string;
  metricsPort: number;
  metricsHost: string;
  logLevel: LogLevel;
}

export interface BootstrapSpec {
  command: string;
  /** Environment variable that names this instance (NODE_NAME for the agent, POD_NAME for the controller). */
  identityEnv: string;
  defaultMetricsPort: number;
}


/** @throws TypeError naming the bad flag. */
export function parseBootstrap(argv: string[], spec: BootstrapSpec, env: NodeJS.ProcessEnv = process.env): Bootstrap | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      identity: { type: 'string' },
      namespace: { type: 'string' },
      'config-name': { type: 'string' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const identity = values.identity ?? env[spec.identityEnv];
  if (!identity) throw new TypeError(`--identity (or ${spec.identityEnv}) is required`);
  const portText = values['metrics-port'] ?? env.METRICS_PORT ?? String(spec.defaultMetricsPort);
  const port = Number(portText);
  if (portText.trim() === '' || settingProblem({ kind: 'integer', min: 0, max: 65535 }, port)) {
    throw new TypeError(`--metrics-port (METRICS_PORT) must be a port number, got "${portText}"`);
  }
  const logLevel = (values['log-level'] ?? env.LOG_LEVEL ?? DEFAULT_LOG_LEVEL) as Bootstrap['logLevel'];
  if (settingProblem({ kind: 'oneOf', values: LOG_LEVELS }, logLevel)) throw new TypeError(`--log-level (LOG_LEVEL) must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    identity,
    namespace: values.namespace ?? env.POD_NAMESPACE ?? 'eps-probe-plugin',
    configName: values['config-name'] ?? env.CONFIG_NAME ?? 'eps-probe-plugin',
    metricsPort: port,
    metricsHost: values['metrics-host'] ?? env.METRICS_HOST ?? '0.0.0.0',
    logLevel,
  };
}

/** A setting of the environment only, in whole milliseconds above zero (the duration rule). */
export interface EnvDuration {
  variable: string;
  default: number;
  /** What it does, for --help. */
  help?: string;
}

type EnvDurations<T> = { readonly [F in keyof T]: Readonly<EnvDuration> };

/** The values of `schema` from the environment, unset ones at their defaults. @throws StartupError naming the variable. */
function fromEnv<T>(schema: EnvDurations<T>, env: NodeJS.ProcessEnv): T {
  return Object.fromEntries(
    Object.entries<Readonly<EnvDuration>>(schema).map(([name, { variable, default: fallback }]) => {
      const value = env[variable];
      if (value === undefined) return [name, fallback];
      const ms = value.trim() === '' ? NaN : Number(value);
      if (settingProblem(DURATION, ms)) {
        throw new StartupError(
          `environment variable ${variable} must be a positive whole number of milliseconds, got "${value}"`,
          `set ${variable} to milliseconds (e.g. ${fallback}, the default) or remove it from the container's env`,
        );
      }
      return [name, ms];
    }),
  ) as T;
}

function defaultsOf<T>(schema: EnvDurations<T>): Readonly<T> {
  return Object.freeze(Object.fromEntries(Object.entries<Readonly<EnvDuration>>(schema).map(([name, setting]) => [name, setting.default])) as T);
}

/** Leader election of the controller (client-go's LeaseDuration, RenewDeadline, RetryPeriod). */
export interface LeaseTimings {
  /** How long a lease holds without renewal; others take over after it. */
  leaseDurationMs: number;
  /** The leader gives up (stops writing) when it could not renew for this long; < leaseDurationMs. */
  renewDeadlineMs: number;
  /** How often to try to acquire or renew; < renewDeadlineMs. */
  retryPeriodMs: number;
}

/** Tests and demos shorten them. */
export const LEASE_TIMINGS: EnvDurations<LeaseTimings> = {
  leaseDurationMs: { variable: 'EPS_LEASE_DURATION_MS', default: 15_000 },
  renewDeadlineMs: { variable: 'EPS_LEASE_RENEW_DEADLINE_MS', default: 10_000 },
  retryPeriodMs: { variable: 'EPS_LEASE_RETRY_PERIOD_MS', default: 2_000 },
};

export const DEFAULT_LEASE_TIMINGS = defaultsOf(LEASE_TIMINGS);

/** A leader must stop writing before its lease can expire for the others, and retry before it gives up. */
export function leaseTimingsInOrder(timings: LeaseTimings): boolean {
  return timings.retryPeriodMs < timings.renewDeadlineMs && timings.renewDeadlineMs < timings.leaseDurationMs;
}

/** @throws StartupError naming the variable. */
export function leaseTimingsOf(env: NodeJS.ProcessEnv = process.env): LeaseTimings {
  const timings = fromEnv(LEASE_TIMINGS, env);
  if (!leaseTimingsInOrder(timings)) {
    const { retryPeriodMs, renewDeadlineMs, leaseDurationMs } = LEASE_TIMINGS;
    const d = DEFAULT_LEASE_TIMINGS;
    throw new StartupError(
      `lease timings must satisfy ${retryPeriodMs.variable} < ${renewDeadlineMs.variable} < ${leaseDurationMs.variable}, got ${timings.retryPeriodMs} < ${timings.renewDeadlineMs} < ${timings.leaseDurationMs}`,
      `change or remove them (defaults ${d.retryPeriodMs} < ${d.renewDeadlineMs} < ${d.leaseDurationMs})`,
    );
  }
  return timings;
}

/** When /healthz (liveness) fails. */
export interface LivenessLimits {
  /** A watch without any answer from the apiserver for this long. */
  watchMs: number;
  /** The event loop behind its timers by more than this. */
  eventLoopLagMs: number;
}

/**
 * Five minutes cover an apiserver restart and the informers' 30 s backoff; five seconds of event
 * loop lag starve every probe timer and the reports' heartbeats.
 */
export const LIVENESS_LIMITS: EnvDurations<LivenessLimits> = {
  watchMs: { variable: 'EPS_LIVENESS_WATCH_MS', default: 5 * 60_000, help: '/healthz fails when a watch got no answer for this long' },
  eventLoopLagMs: { variable: 'EPS_LIVENESS_EVENT_LOOP_LAG_MS', default: 5_000, help: '/healthz fails when timers run this late' },
};

export const DEFAULT_LIVENESS_LIMITS = defaultsOf(LIVENESS_LIMITS);

/** @throws StartupError naming the variable. */
export function livenessLimitsOf(env: NodeJS.ProcessEnv = process.env): LivenessLimits {
  return fromEnv(LIVENESS_LIMITS, env);
}
