#!/usr/bin/env node
// eps-probe-plugin: one binary, one subcommand per role. main only wires things.
import { VERSION } from '../version.js';
import { shutdownSignal } from './signals.js';

const USAGE = `eps-probe-plugin ${VERSION}

Usage: eps-probe-plugin <command> [options]

Commands:
  agent        probe multi-cluster endpoints from this node and publish a ProbeReport (DaemonSet)
  controller   aggregate ProbeReports, annotate ServiceImports, prune EndpointSlices (leader-elected)
  probe        probe addresses once from here and print the result (debugging a node)
  status       print who reaches which ServiceImport address and what the controller decides
  version      print the version

Run 'eps-probe-plugin <command> --help' for the options of a command.
`;

type Command = (argv: string[]) => Promise<number>;
/** Runs until SIGTERM/SIGINT (the signal), which it must honour at every stage. */
type ServiceCommand = (argv: string[], shutdown: AbortSignal) => Promise<number>;

const services: Record<string, () => Promise<ServiceCommand>> = {
  agent: async () => (await import('./agent.js')).runAgentCommand,
  controller: async () => (await import('./controller.js')).runControllerCommand,
};

const tools: Record<string, () => Promise<Command>> = {
  probe: async () => (await import('./probe.js')).runProbeCommand,
  status: async () => (await import('./status.js')).runStatusCommand,
  version: async () => async () => {
    console.log(VERSION);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  if (name === '--version') return (await tools.version!())([]);
  const service = services[name];
  if (service) {
    const shutdown = shutdownSignal();
    const run = await service();
    return shutdown.aborted ? 0 : run(rest, shutdown);
  }
  const tool = tools[name];
  if (!tool) {
    process.stderr.write(`unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  return (await tool())(rest);
}

// Exit at once: a service stopped within its budget may leave sockets and timers behind.
process.exit(await main(process.argv.slice(2)));
