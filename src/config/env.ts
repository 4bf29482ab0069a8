// The process environment and command-line flags of the long-running commands (agent,
// controller), read and validated once at start. Nothing else reads process.env.
import { parseArgs } from 'node:util';
import { StartupError } from '../startup.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';

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
  if (portText.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`--metrics-port (METRICS_PORT) must be a port number, got "${portText}"`);
  }
  const logLevel = (values['log-level'] ?? env.LOG_LEVEL ?? 'info') as Bootstrap['logLevel'];
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new TypeError(`--log-level (LOG_LEVEL) must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
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

/** A duration in milliseconds from the environment, or `fallback` when unset. */
function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined) return fallback;
  const ms = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(ms) || ms <= 0) {
    throw new StartupError(
      `environment variable ${name} must be a positive whole number of milliseconds, got "${value}"`,
      `set ${name} to milliseconds (e.g. ${fallback}, the default) or remove it from the container's env`,
    );
  }
  return ms;
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

export const DEFAULT_LEASE_TIMINGS: Readonly<LeaseTimings> = Object.freeze({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });

/**
 * EPS_LEASE_DURATION_MS, EPS_LEASE_RENEW_DEADLINE_MS, EPS_LEASE_RETRY_PERIOD_MS (tests and demos
 * shorten them).
 * @throws StartupError naming the variable.
 */
export function leaseTimingsOf(env: NodeJS.ProcessEnv = process.env): LeaseTimings {
  const timings = {
    leaseDurationMs: milliseconds(env, 'EPS_LEASE_DURATION_MS', DEFAULT_LEASE_TIMINGS.leaseDurationMs),
    renewDeadlineMs: milliseconds(env, 'EPS_LEASE_RENEW_DEADLINE_MS', DEFAULT_LEASE_TIMINGS.renewDeadlineMs),
    retryPeriodMs: milliseconds(env, 'EPS_LEASE_RETRY_PERIOD_MS', DEFAULT_LEASE_TIMINGS.retryPeriodMs),
  };
  // A leader must stop writing before its lease can expire for the others, and retry before it gives up.
  if (!(timings.renewDeadlineMs < timings.leaseDurationMs && timings.retryPeriodMs < timings.renewDeadlineMs)) {
    throw new StartupError(
      `lease timings must satisfy EPS_LEASE_RETRY_PERIOD_MS < EPS_LEASE_RENEW_DEADLINE_MS < EPS_LEASE_DURATION_MS, got ${timings.retryPeriodMs} < ${timings.renewDeadlineMs} < ${timings.leaseDurationMs}`,
      `change or remove them (defaults ${DEFAULT_LEASE_TIMINGS.retryPeriodMs} < ${DEFAULT_LEASE_TIMINGS.renewDeadlineMs} < ${DEFAULT_LEASE_TIMINGS.leaseDurationMs})`,
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
export const DEFAULT_LIVENESS_LIMITS: Readonly<LivenessLimits> = Object.freeze({ watchMs: 5 * 60_000, eventLoopLagMs: 5_000 });

/**
 * EPS_LIVENESS_WATCH_MS, EPS_LIVENESS_EVENT_LOOP_LAG_MS.
 * @throws StartupError naming the variable.
 */
export function livenessLimitsOf(env: NodeJS.ProcessEnv = process.env): LivenessLimits {
  return {
    watchMs: milliseconds(env, 'EPS_LIVENESS_WATCH_MS', DEFAULT_LIVENESS_LIMITS.watchMs),
    eventLoopLagMs: milliseconds(env, 'EPS_LIVENESS_EVENT_LOOP_LAG_MS', DEFAULT_LIVENESS_LIMITS.eventLoopLagMs),
  };
}
