// Debian's Prometheus for e2e tests: scrapes the given targets every second (optionally evaluating
// rule files), listens on a free loopback port, and answers instant queries.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './controlplane.js';
import { until } from './wait.js';

export const PROMETHEUS = '/usr/bin/prometheus';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  /** Base URL of its HTTP API. */
  api: string;
  /** An instant query's result; throws when Prometheus refuses the query. */
  query(promql: string): Promise<Sample[]>;
  /** The first sample's value, if any. */
  valueOf(promql: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** `jobs`: job name → `host:port` targets. */
export async function startPrometheus(options: { jobs: Record<string, string[]>; ruleFiles?: string[] }): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: apt-get install prometheus (make deps does)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eps-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: Object.entries(options.jobs).map(([job, targets]) => ({ job_name: job, static_configs: [{ targets }] })),
  };
  writeFileSync(path.join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const query = async (promql: string): Promise<Sample[]> => {
    const response = await fetch(`${api}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    const body = (await response.json()) as { status: string; data: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
    return body.data.result;
  };
  try {
    await until('prometheus ready', async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.ok ?? false);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    api,
    query,
    async valueOf(promql) {
      const [sample] = await query(promql);
      return sample ? Number(sample.value[1]) : undefined;
    },
    stop,
  };
}
