// Shared by the probe benchmarks: target addresses, a listener process, resource figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** Reachable targets live in 127.1.0.0/16 and up; unreachable ones in 127.64.0.0/16 (dropped by probe-run.sh). */
export function benchAddresses(count: number, unreachableShare: number): { reachable: string[]; unreachable: string[] } {
  const unreachableCount = Math.round(count * unreachableShare);
  const at = (base: number, n: number): string => `127.${base + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`;
  const reachable = Array.from({ length: count - unreachableCount }, (_, n) => at(1, n + 256));
  const unreachable = Array.from({ length: unreachableCount }, (_, n) => at(64, n + 256));
  return { reachable, unreachable };
}

/**
 * A listener in a child process (its CPU is not ours) that closes every connection at once. It
 * stands in for remote pods, so with a memory limit on the run (probe-run.sh MEMORY_LIMIT_MIB) it is
 * moved out of that cgroup, into the one named by LISTENER_CGROUP_PROCS.
 */
export async function startListener(port: number): Promise<ChildProcess> {
  const script =
    `const s=require('net').createServer(c=>{c.on('error',()=>{});c.destroy()});` +
    `s.listen({port:${port},host:'0.0.0.0',backlog:65535},()=>process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listenerCgroup = process.env.LISTENER_CGROUP_PROCS;
  if (listenerCgroup) writeFileSync(listenerCgroup, String(child.pid));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener exited with ${code}`)));
  });
  return child;
}

/** CPU seconds (user + system) used by a child process so far, from /proc. */
export async function childCpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

export function ownCpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}
