// Flags and environment shared by the long-running commands. Only src/cli reads process.env.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from '../log.js';
import { startServer, type Route } from '../server.js';

export interface Bootstrap {
  kubeconfig?: string;
  /** This node (agent) or pod (controller) name. */
  identity: string;
  /** Namespace of the ConfigMap (and of the controller's Lease). */
  namespace: string;
  configName: string;
  metricsPort: number;
  metricsHost: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

export interface BootstrapSpec {
  command: string;
  /** Environment variable that names this instance (NODE_NAME for the agent, POD_NAME for the controller). */
  identityEnv: string;
  defaultMetricsPort: number;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

export function usage(spec: BootstrapSpec): string {
  return `Usage: eps-probe-plugin ${spec.command} [options]

Options (flag, environment variable, default):
  --kubeconfig PATH        KUBECONFIG            in-cluster config, else ~/.kube/config
  --identity NAME          ${spec.identityEnv.padEnd(21)} (required) ${spec.command === 'agent' ? 'node name' : 'pod name'}
  --namespace NS           POD_NAMESPACE         eps-probe-plugin  (ConfigMap${spec.command === 'controller' ? ' and Lease' : ''})
  --config-name NAME       CONFIG_NAME           eps-probe-plugin  (ConfigMap with key config.yaml)
  --metrics-port PORT      METRICS_PORT          ${spec.defaultMetricsPort}  (/metrics, /healthz, /readyz)
  --metrics-host ADDR      METRICS_HOST          0.0.0.0
  --log-level LEVEL        LOG_LEVEL             info  (until the ConfigMap's logLevel applies)
`;
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
  const port = Number(values['metrics-port'] ?? env.METRICS_PORT ?? spec.defaultMetricsPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`--metrics-port must be a port number, got ${values['metrics-port']}`);
  const logLevel = (values['log-level'] ?? env.LOG_LEVEL ?? 'info') as Bootstrap['logLevel'];
  if (!LEVELS.includes(logLevel)) throw new TypeError(`--log-level must be one of ${LEVELS.join(', ')}, got ${logLevel}`);
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

export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** A long-running role (agent, controller) as the command line drives it. */
export interface Service {
  start(): Promise<void>;
  /** Graceful: stop being ready, stop work, flush. */
  stop(): Promise<void>;
  /** Undefined when ready, else why not. */
  readiness(): string | undefined;
}

/**
 * Serves /metrics, /healthz and /readyz, starts `service` and runs it until SIGTERM/SIGINT.
 * Returns the exit code: 0 after a graceful stop, 1 when it could not start.
 */
export async function runService(
  name: string,
  service: Service,
  options: { bootstrap: Bootstrap; logger: Logger; registry: Registry; routes?: Record<string, Route> },
): Promise<number> {
  const { bootstrap, logger, registry } = options;
  const server = await startServer({
    port: bootstrap.metricsPort,
    host: bootstrap.metricsHost,
    registry,
    routes: options.routes,
    readiness: [{ name, check: () => service.readiness() }],
    logger,
  });
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      logger.info({ signal }, 'shutting down');
      service.stop().then(
        () => resolve(),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await service.start();
  } catch (err) {
    logger.fatal({ err }, `${name} failed to start`);
    await service.stop();
    server.close();
    return 1;
  }
  await stopped;
  server.close();
  return 0;
}

/** Parses flags or prints usage; returns an exit code when the command should not run. */
export function bootstrapOrExit(argv: string[], spec: BootstrapSpec): { bootstrap: Bootstrap; logger: Logger } | number {
  let parsed: Bootstrap | 'help';
  try {
    parsed = parseBootstrap(argv, spec);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage(spec)}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(usage(spec));
    return 0;
  }
  return { bootstrap: parsed, logger: createLogger({ level: parsed.logLevel, bindings: { component: spec.command, [spec.command === 'agent' ? 'node' : 'pod']: parsed.identity } }) };
}
