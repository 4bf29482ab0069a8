import { Agent } from '../agent/agent.js';
import { createRegistry } from '../metrics.js';
import { bootstrapOrExit, loadKubeConfig, runService } from './bootstrap.js';

export async function runAgentCommand(argv: string[], shutdown: AbortSignal): Promise<number> {
  const boot = bootstrapOrExit(argv, { command: 'agent', identityEnv: 'NODE_NAME', defaultMetricsPort: 9464 });
  if (typeof boot === 'number') return boot;
  const { bootstrap, logger } = boot;
  const registry = createRegistry();
  return runService({
    name: 'agent',
    bootstrap,
    logger,
    registry,
    shutdown,
    create: () =>
      new Agent(loadKubeConfig(bootstrap.kubeconfig), {
        nodeName: bootstrap.identity,
        configNamespace: bootstrap.namespace,
        configName: bootstrap.configName,
      }, { logger, registry }),
  });
}
