import { leaseTimingsOf } from '../config/env.js';
import { Controller } from '../controller/controller.js';
import { LeaderElector } from '../controller/leader.js';
import { createRegistry } from '../metrics.js';
import { statusRoutes } from '../status/routes.js';
import { bootstrapOrExit, loadKubeConfig, runService } from './bootstrap.js';

export async function runControllerCommand(argv: string[], shutdown: AbortSignal): Promise<number> {
  const boot = bootstrapOrExit(argv, { command: 'controller', identityEnv: 'POD_NAME', defaultMetricsPort: 9465 });
  if (typeof boot === 'number') return boot;
  const { bootstrap, logger } = boot;
  const registry = createRegistry();
  return runService({
    name: 'controller',
    bootstrap,
    logger,
    registry,
    shutdown,
    create() {
      const timings = leaseTimingsOf();
      const kc = loadKubeConfig(bootstrap.kubeconfig);
      const leader = new LeaderElector(kc, {
        namespace: bootstrap.namespace,
        leaseName: 'eps-probe-plugin-controller',
        identity: bootstrap.identity,
        ...timings,
      }, { logger: logger.child({ subsystem: 'leader' }), registry });
      const controller = new Controller(kc, { configNamespace: bootstrap.namespace, configName: bootstrap.configName }, leader, {
        logger,
        registry,
        identity: bootstrap.identity,
      });
      return {
        async start() {
          await controller.start();
          await leader.start();
        },
        async stop() {
          controller.stop();
          await leader.stop();
        },
        readiness: () => controller.readiness(),
        deadWatch: (limitMs) => controller.deadWatch(limitMs),
        routes: statusRoutes(controller.statusSources()),
      };
    },
  });
}
