// What the long-running commands share: usage, the kubeconfig, and runService, which serves health,
// starts the service and runs it until SIGTERM, or logs in one fatal line why it could not start.
import type http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import {
  LEASE_TIMINGS,
  LIVENESS_LIMITS,
  livenessLimitsOf,
  parseBootstrap,
  type Bootstrap,
  type BootstrapSpec,
  type EnvDuration,
} from '../config/env.js';
import { EventLoopLag } from '../liveness.js';
import { DEFAULT_LOG_LEVEL, createLogger, type Logger } from '../log.js';
import { startServer, type Route } from '../server.js';
import { StartupError } from '../startup.js';

/** Exit codes: 0 after SIGTERM/SIGINT, 1 could not start (or crashed), 2 bad flags. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** What SIGTERM leaves a service to stop before the process exits anyway: the exit stays within a second. */
const STOP_BUDGET_MS = 700;

/** A line of the usage's environment-only settings. */
function envUsage({ variable, default: fallback, help }: Readonly<EnvDuration>): string {
  return `  ${variable.padEnd(33)}${help ? `${String(fallback).padEnd(7)} ${help}` : fallback}\n`;
}

export function usage(spec: BootstrapSpec): string {
  const controller = spec.command === 'controller';
  return `Usage: eps-probe-plugin ${spec.command} [options]

Options (flag, environment variable, default):
  --kubeconfig PATH        KUBECONFIG            in-cluster config, else ~/.kube/config
  --identity NAME          ${spec.identityEnv.padEnd(21)} (required) ${controller ? 'pod name' : 'node name'}
  --namespace NS           POD_NAMESPACE         eps-probe-plugin  (ConfigMap${controller ? ' and Lease' : ''})
  --config-name NAME       CONFIG_NAME           eps-probe-plugin  (ConfigMap with key config.yaml)
  --metrics-port PORT      METRICS_PORT          ${spec.defaultMetricsPort}  (/metrics, /healthz, /readyz)
  --metrics-host ADDR      METRICS_HOST          0.0.0.0
  --log-level LEVEL        LOG_LEVEL             ${DEFAULT_LOG_LEVEL}  (until the ConfigMap's logLevel applies)

Environment only (milliseconds, default):
${Object.values(controller ? { ...LIVENESS_LIMITS, ...LEASE_TIMINGS } : LIVENESS_LIMITS).map(envUsage).join('')}
Exit status: 0 after SIGTERM or SIGINT, 1 could not start, 2 bad flags (one fatal log line says why
and what to fix).
`;
}

/** @throws StartupError when the file cannot be read or names no cluster. */
export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const fix = 'pass a readable kubeconfig with --kubeconfig (KUBECONFIG), or neither in a pod, where the ServiceAccount is used';
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new StartupError(`cannot load the kubeconfig ${path ?? '(default locations)'}: ${(err as Error).message}`, fix, { cause: err });
  }
  if (!kc.getCurrentCluster()) throw new StartupError(`the kubeconfig ${path ?? '(default locations)'} has no current context with a cluster`, fix);
  return kc;
}

/** A long-running role (agent, controller) as the command line drives it. Its constructor makes no API call. */
export interface Service {
  /** @throws StartupError (or another error) when it cannot start. */
  start(): Promise<void>;
  /** Graceful: stop being ready, stop work, flush. */
  stop(): Promise<void>;
  /** Undefined when ready, else why not. */
  readiness(): string | undefined;
  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined;
  /** More read-only pages on the metrics port (the controller's /status). */
  routes?: Readonly<Record<string, Route>>;
}

export interface ServiceCommand {
  name: 'agent' | 'controller';
  bootstrap: Bootstrap;
  logger: Logger;
  registry: Registry;
  /** Aborted by SIGTERM or SIGINT, at any time from the start of main. */
  shutdown: AbortSignal;
  /** Builds the service. @throws StartupError for a bad kubeconfig or environment. */
  create(): Service;
}

/**
 * Serves /metrics, /healthz and /readyz, starts the service and runs it until SIGTERM/SIGINT, which
 * it honours at any stage, also while start() is still waiting (for the apiserver, a CRD, the
 * caches). Returns the exit code: 0 after a signal, 1 when it could not start.
 */
export async function runService(command: ServiceCommand): Promise<number> {
  const { name, bootstrap, logger, registry, shutdown } = command;
  if (shutdown.aborted) return 0;
  // A bug, not a start-up failure; still one JSON line, never a raw stack trace.
  const crash = (err: unknown): void => {
    const fields = fatalFields(err);
    logger.fatal(fields, `${name} crashed: ${fields.cause}`);
    process.exit(EXIT_FAILED);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  const loopLag = new EventLoopLag();
  let service: Service;
  let server: http.Server;
  try {
    const limits = livenessLimitsOf();
    const created = command.create();
    service = created;
    server = await startServer({
      port: bootstrap.metricsPort,
      host: bootstrap.metricsHost,
      registry,
      routes: created.routes,
      readiness: [{ name, check: () => created.readiness() }],
      liveness: [
        { name: 'event loop', check: () => loopLag.check(limits.eventLoopLagMs) },
        { name: 'watches', check: () => created.deadWatch(limits.watchMs) },
      ],
      logger,
    });
  } catch (err) {
    return startFailed(logger, name, err);
  }
  loopLag.start();
  const signalled = new Promise<string>((resolve) => {
    if (shutdown.aborted) resolve(String(shutdown.reason));
    else shutdown.addEventListener('abort', () => resolve(String(shutdown.reason)), { once: true });
  });
  const started = (shutdown.aborted ? Promise.resolve() : service.start()).then(
    () => ({ started: true as const }),
    (err: unknown) => ({ err }),
  );
  const first = await Promise.race([started, signalled.then((signal) => ({ signal }))]);
  if ('err' in first) {
    // The fatal line comes last: `kubectl logs --previous` ends with the reason.
    await stopWithin(service, logger);
    server.close();
    loopLag.stop();
    return startFailed(logger, name, first.err);
  }
  const signal = 'signal' in first ? first.signal : await signalled;
  logger.info({ signal }, 'shutting down');
  await stopWithin(service, logger);
  server.close();
  loopLag.stop();
  return 0;
}

async function stopWithin(service: Service, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      logger.warn({ budgetMs: STOP_BUDGET_MS }, 'stopping takes too long; exiting anyway');
      resolve();
    }, STOP_BUDGET_MS);
  });
  const stopped = service.stop().catch((err: unknown) => logger.error({ err }, 'stopping failed'));
  await Promise.race([stopped, budget]);
  clearTimeout(timer);
}

function fatalFields(err: unknown): { cause: string; fix: string; err?: unknown } {
  if (err instanceof StartupError) return { cause: err.message, fix: err.fix };
  return { err, cause: err instanceof Error ? err.message : String(err), fix: 'not a known failure: the stack is under err; please report it' };
}

/** One fatal line, the cause and the fix as fields; returns the exit code of a failed start. */
function startFailed(logger: Logger, name: string, err: unknown): number {
  const fields = fatalFields(err);
  logger.fatal(fields, `${name} cannot start: ${fields.cause}`);
  return EXIT_FAILED;
}

/** Parses flags (or prints usage for --help); returns an exit code when the command should not run. */
export function bootstrapOrExit(argv: string[], spec: BootstrapSpec): { bootstrap: Bootstrap; logger: Logger } | number {
  let parsed: Bootstrap | 'help';
  try {
    parsed = parseBootstrap(argv, spec);
  } catch (err) {
    // Like any start-up failure, one fatal line (in a pod a flag or variable comes from the manifest).
    const fix = `correct the flag or environment variable; eps-probe-plugin ${spec.command} --help lists them`;
    startFailed(createLogger({ bindings: { component: spec.command } }), spec.command, new StartupError((err as Error).message, fix));
    return EXIT_USAGE;
  }
  if (parsed === 'help') {
    process.stdout.write(usage(spec));
    return 0;
  }
  return { bootstrap: parsed, logger: createLogger({ level: parsed.logLevel, bindings: { component: spec.command, [spec.command === 'agent' ? 'node' : 'pod']: parsed.identity } }) };
}
