import { Agent } from '../agent/agent.js';
import { createRegistry } from '../metrics.js';
import { startServer } from '../server.js';
import { bootstrapOrExit, loadKubeConfig, untilSignal } from './bootstrap.js';

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
  const server = await startServer({
    port: bootstrap.metricsPort,
    host: bootstrap.metricsHost,
    registry,
    readiness: [{ name: 'agent', check: () => agent.readiness() }],
    logger,
  });
  const stopped = untilSignal(logger, async () => {
    await agent.stop();
    server.close();
  });
  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err }, 'agent failed to start');
    await agent.stop();
    server.close();
    return 1;
  }
  await stopped;
  return 0;
}
