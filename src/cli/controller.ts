import { Controller } from '../controller/controller.js';
import { DEFAULT_LEASE_TIMINGS, LeaderElector, type LeaderElectionOptions } from '../controller/leader.js';
import { createRegistry } from '../metrics.js';
import { statusRoutes } from '../status/routes.js';
import { bootstrapOrExit, loadKubeConfig, runService } from './bootstrap.js';

/** Lease timings can be shortened by environment for tests and demos (EPS_LEASE_DURATION_MS, ...). */
function leaseTimings(env: NodeJS.ProcessEnv): Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'> {
  const read = (name: string, fallback: number): number => {
    const value = env[name];
    if (value === undefined) return fallback;
    const ms = Number(value);
    if (!Number.isInteger(ms) || ms <= 0) throw new TypeError(`${name} must be a positive integer (milliseconds), got ${value}`);
    return ms;
  };
  return {
    leaseDurationMs: read('EPS_LEASE_DURATION_MS', DEFAULT_LEASE_TIMINGS.leaseDurationMs),
    renewDeadlineMs: read('EPS_LEASE_RENEW_DEADLINE_MS', DEFAULT_LEASE_TIMINGS.renewDeadlineMs),
    retryPeriodMs: read('EPS_LEASE_RETRY_PERIOD_MS', DEFAULT_LEASE_TIMINGS.retryPeriodMs),
  };
}

export async function runControllerCommand(argv: string[]): Promise<number> {
  const boot = bootstrapOrExit(argv, { command: 'controller', identityEnv: 'POD_NAME', defaultMetricsPort: 9465 });
  if (typeof boot === 'number') return boot;
  const { bootstrap, logger } = boot;
  const registry = createRegistry();
  const kc = loadKubeConfig(bootstrap.kubeconfig);
  const leader = new LeaderElector(kc, {
    namespace: bootstrap.namespace,
    leaseName: 'eps-probe-plugin-controller',
    identity: bootstrap.identity,
    ...leaseTimings(process.env),
  }, { logger: logger.child({ subsystem: 'leader' }), registry });
  const controller = new Controller(kc, { configNamespace: bootstrap.namespace, configName: bootstrap.configName }, leader, {
    logger,
    registry,
    identity: bootstrap.identity,
  });
  return runService('controller', {
    async start() {
      await controller.start();
      leader.start();
    },
    async stop() {
      controller.stop();
      await leader.stop();
    },
    readiness: () => controller.readiness(),
  }, { bootstrap, logger, registry, routes: statusRoutes(controller.statusSources()) });
}
