import { Agent } from '../agent/agent.js';
import { createRegistry } from '../metrics.js';
import { bootstrapOrExit, loadKubeConfig, runService } from './bootstrap.js';

export async function runAgentCommand(argv: string[]): Promise<number> {
  const boot = bootstrapOrExit(argv, { command: 'agent', identityEnv: 'NODE_NAME', defaultMetricsPort: 9464 });
  if (typeof boot === 'number') return boot;
  const { bootstrap, logger } = boot;
  const registry = createRegistry();
  const agent = new Agent(loadKubeConfig(bootstrap.kubeconfig), {
    nodeName: bootstrap.identity,
    configNamespace: bootstrap.namespace,
    configName: bootstrap.configName,
  }, { logger, registry });
  return runService('agent', agent, { bootstrap, logger, registry });
}
