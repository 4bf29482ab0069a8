// Runs our built CLI (dist/) as real processes, in the root namespace or in a topology host, and
// collects their JSON log lines for assertions.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from './topology.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The program as deployed: tsc's output bundled into one file (hack/bundle.mjs, run by `make build`). */
export const CLI = path.join(repoRoot, 'dist/eps-probe-plugin.js');

export interface RunningProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Every non-blank output line as written (JSON.parse keeps one of two equal keys without a word). */
  lines: string[];
  /** Lines that were not JSON (should stay empty). */
  rawOutput: string[];
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL at once, like a crash. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Run inside this topology host's network namespace; the root namespace when unset. */
  topology?: Topology;
  host?: string;
  env?: Record<string, string>;
  /**
   * The program that runs the CLI script, with its leading arguments (e.g. `setpriv ... /path/to/node`
   * to run it as another user); process.execPath when unset.
   */
  command?: string[];
  /** The CLI script to run (a staged copy of the app, say); the repository's build when unset. */
  cli?: string;
  /** Mirror the process's output to the test's stderr (debugging). */
  echo?: boolean;
}

export function startCli(args: string[], options: StartOptions = {}): RunningProcess {
  const cli = options.cli ?? CLI;
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`make build\` (npx tsc) before the e2e tests`);
  const env = { ...process.env, ...options.env };
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  const [program, ...lead] = options.command ?? [process.execPath];
  const child =
    options.topology && options.host
      ? options.topology.spawnIn(options.host, program!, [...lead, cli, ...args], { stdio, env })
      : spawn(program!, [...lead, cli, ...args], { stdio, env });
  return superviseProcess(child, options);
}

/** Collects the JSON log lines of a process spawned with piped stdout and stderr (labelled `host` when echoed). */
export function superviseProcess(child: ChildProcess, options: { host?: string; echo?: boolean } = {}): RunningProcess {
  const logs: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  const rawOutput: string[] = [];
  let buffered = '';
  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString();
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    for (const line of complete) {
      if (line.trim()) lines.push(line);
      if (options.echo || process.env.EPS_TEST_ECHO) process.stderr.write(`[${options.host ?? 'cli'}] ${line}\n`);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        if (line.trim()) rawOutput.push(line);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    logs,
    lines,
    rawOutput,
    async stop() {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}
