// Shared by the scale benchmarks (scale-mcs, scale-unrelated-slices, kwok-reports): a farm of
// answering probe targets, bulk object creation, process and metrics sampling.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { parseAllDocuments } from 'yaml';
import type { Topology } from '../test/harness/topology.js';
import { childCpuSeconds } from './probe-bench-support.js';

/**
 * The farm's range: outside every topology subnet (10.233.0.0/16), so it needs its own blackhole in
 * the root namespace; a /15 holds one agent's 100k targets.
 */
export const FARM_CIDR = '10.234.0.0/15';

export function machine(): string {
  return `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version} (shared machine: other benchmarks may run at the same time)`;
}

/** Addresses in FARM_CIDR, a /15: 2^17 minus the all-zeros and all-ones ones. */
export const FARM_ADDRESSES = 2 ** 17 - 2;

/** The `index`-th address of the farm (0-based; 10.234.0.1 upwards). */
export function farmAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= FARM_ADDRESSES) throw new RangeError(`farm address index out of range: ${index}`);
  const value = index + 1;
  return `10.${234 + (value >> 16)}.${(value >> 8) & 0xff}.${value & 0xff}`;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function removeRootBlackhole(): void {
  try {
    ip(['route', 'del', 'blackhole', FARM_CIDR]);
  } catch {
    // not there
  }
}

/**
 * A "farm" namespace on the topology's bridge that answers for every address of FARM_CIDR (AnyIP:
 * a local route over the whole range, so the kernel sends a TCP RST for any port without a single
 * listener), and a route to it from each node. The root namespace gets a blackhole for the range
 * first, so nothing aimed at it can ever leave through the machine's default route. Call remove()
 * in a finally; the topology's destroy() deletes the namespaces and their routes.
 */
export async function addFarm(topology: Topology, nodeNetns: readonly string[]): Promise<{ address: string; remove(): void }> {
  removeRootBlackhole();
  ip(['route', 'add', 'blackhole', FARM_CIDR]);
  process.on('exit', removeRootBlackhole);
  try {
    const farm = await topology.addPod('farm');
    ip(['-n', farm.netns, 'route', 'add', 'local', FARM_CIDR, 'dev', 'lo']);
    for (const netns of nodeNetns) ip(['-n', netns, 'route', 'add', FARM_CIDR, 'via', farm.address]);
    return {
      address: farm.address,
      remove() {
        removeRootBlackhole();
        process.off('exit', removeRootBlackhole);
      },
    };
  } catch (err) {
    removeRootBlackhole();
    throw err;
  }
}

/**
 * How deploy/eps-probe-plugin.yaml runs the agent (DaemonSet) or the controller (Deployment): the node
 * flags of its `command` (none without one: the image's entrypoint) and its `limits.memory` in MiB.
 */
export function manifestContainer(role: 'agent' | 'controller'): { nodeFlags: string[]; memoryLimitMiB: number } {
  const manifest = readFileSync(new URL('../deploy/eps-probe-plugin.yaml', import.meta.url), 'utf8');
  const kind = role === 'agent' ? 'DaemonSet' : 'Deployment';
  const workload = parseAllDocuments(manifest).map((document) => document.toJS()).find((object) => object?.kind === kind);
  const container = workload.spec.template.spec.containers[0];
  const command = (container.command as string[] | undefined) ?? [];
  const limit = /^(\d+)Mi$/.exec(container.resources.limits.memory as string);
  if (!limit) throw new Error(`${kind} limits.memory is not in Mi: ${container.resources.limits.memory}`);
  return { nodeFlags: command.slice(1, -1), memoryLimitMiB: Number(limit[1]) };
}

/**
 * A child of this process's own cgroup for one controller (v1 or v2). A process must start inside it
 * (V8 sizes its heap from a memory limit at start): `command` waits until `adopt(pid)` has moved it
 * in, then becomes the program (same pid), so the group holds it from its first instruction.
 */
function childCgroup(controller: 'memory' | 'cpu', name: string): {
  dir: string;
  v2: boolean;
  command: (program: string, ...lead: string[]) => string[];
  adopt(pid: number): void;
  remove(): void;
} {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const own = readFileSync('/proc/self/cgroup', 'utf8');
  const line = v2 ? /^0::(.*)$/m : new RegExp(`^\\d+:(?:[^:]*,)?${controller}(?:,[^:]*)?:(.*)$`, 'm');
  const ownPath = line.exec(own)![1]!;
  const path = `${ownPath === '/' ? '' : ownPath}/${name}-${process.pid}`;
  const dir = `/sys/fs/cgroup${v2 ? '' : `/${controller}`}${path}`;
  mkdirSync(dir);
  return {
    dir,
    v2,
    command: (program, ...lead) => ['sh', '-c', `until grep -q ':${path}$' /proc/self/cgroup; do sleep 0.01; done; exec "$0" "$@"`, program, ...lead],
    adopt: (pid) => writeFileSync(`${dir}/cgroup.procs`, String(pid)),
    remove: () => rmdirSync(dir),
  };
}

/** A memory cgroup limited to `limitMiB`, like a pod's `limits.memory` (see childCgroup). */
export function memoryCgroup(name: string, limitMiB: number): ReturnType<typeof childCgroup> & { peakMiB(): number } {
  const group = childCgroup('memory', name);
  writeFileSync(`${group.dir}/${group.v2 ? 'memory.max' : 'memory.limit_in_bytes'}`, String(limitMiB * 1024 * 1024));
  return {
    ...group,
    peakMiB: () => Number(readFileSync(`${group.dir}/${group.v2 ? 'memory.peak' : 'memory.max_usage_in_bytes'}`, 'utf8')) / 1024 / 1024,
  };
}

/** A CPU cgroup allowed `cores` of CPU time (0.1: a tenth of one core), like a pod's `limits.cpu` (see childCgroup). */
export function cpuCgroup(name: string, cores: number): ReturnType<typeof childCgroup> {
  const group = childCgroup('cpu', name);
  const periodUs = 100_000;
  const quotaUs = Math.round(cores * periodUs);
  if (group.v2) {
    writeFileSync(`${group.dir}/cpu.max`, `${quotaUs} ${periodUs}`);
  } else {
    writeFileSync(`${group.dir}/cpu.cfs_period_us`, String(periodUs));
    writeFileSync(`${group.dir}/cpu.cfs_quota_us`, String(quotaUs));
  }
  return group;
}

/** Runs `work` over `items` with at most `concurrency` in flight; resolves with the elapsed seconds. */
export async function forEachLimited<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<unknown>): Promise<number> {
  const limit = pLimit(concurrency);
  const started = performance.now();
  await Promise.all(items.map((item, index) => limit(() => work(item, index))));
  return (performance.now() - started) / 1000;
}

export interface ProcessSample {
  cpuSeconds: number;
  rssMb: number;
  /** Peak RSS so far (VmHWM). */
  peakRssMb: number;
}

/** CPU time and memory of a process from /proc/<pid>/stat and /proc/<pid>/status. */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuSeconds: await childCpuSeconds(pid), rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

/** Samples several processes together; `since` gives each one's CPU share (of one core) between two samples. */
export async function sampleAll(pids: Record<string, number>): Promise<Record<string, ProcessSample>> {
  const entries = await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await sampleProcess(pid)] as const));
  return Object.fromEntries(entries);
}

export function cpuShare(before: ProcessSample, after: ProcessSample, seconds: number): number {
  return (after.cpuSeconds - before.cpuSeconds) / seconds;
}

/**
 * Sum of the samples of a metric in Prometheus text whose labels include every `labels` pair
 * (`name` must be exact: `eps_probe_report_writes_total`, `..._sum`, `..._count`).
 */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A table row of per-process figures: CPU share over a window and RSS at its end. */
export function describeWindow(before: Record<string, ProcessSample>, after: Record<string, ProcessSample>, seconds: number): string {
  return Object.keys(after)
    .map((name) => `${name} ${(cpuShare(before[name]!, after[name]!, seconds) * 100).toFixed(0)}% CPU, RSS ${after[name]!.rssMb.toFixed(0)} MB (peak ${after[name]!.peakRssMb.toFixed(0)})`)
    .join('; ');
}

/**
 * Calls `onEvent` for every watch event on `path` from `resourceVersion` on. client-node ends a watch
 * after 30 s without events; this one reopens from the last resourceVersion it saw, so no write is
 * missed and nothing is re-listed.
 */
export function keepWatching(
  kc: k8s.KubeConfig,
  path: string,
  resourceVersion: string,
  onEvent: (phase: string, object: k8s.KubernetesObject) => void,
): { abort(): void } {
  const watch = new k8s.Watch(kc);
  let rv = resourceVersion;
  let request: { abort(): void } | undefined;
  let stopped = false;
  const open = async (): Promise<void> => {
    if (stopped) return;
    try {
      request = await watch.watch(path, { resourceVersion: rv }, (phase, object: k8s.KubernetesObject) => {
        rv = object.metadata?.resourceVersion ?? rv;
        onEvent(phase, object);
      }, () => void setTimeout(() => void open(), 100));
    } catch {
      setTimeout(() => void open(), 1000);
    }
  };
  void open();
  return {
    abort() {
      stopped = true;
      request?.abort();
    },
  };
}
