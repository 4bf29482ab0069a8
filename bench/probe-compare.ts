// The probe engine against standard tools on equal work: the same targets, each probed exactly
// `rounds` times by every side, in the same run, once with no dropped target and once with 5% dropped.
//  - ICMP: the engine (mode icmp), the bare IcmpPinger (no engine) and fping, addresses in a second
//    namespace (probe-run.sh sets it up);
//  - TCP: the engine with connect() and half-open probes (tcpProbe), the bare HalfOpenProber (no
//    engine) and Prometheus' blackbox_exporter (tcp_connect module) at the same concurrency, loopback
//    targets as in probe-engine.ts.
// The engine runs `rounds` start/stop cycles with failureThreshold 1, successThreshold 1 and a long
// interval: each cycle probes every target once, at once (no fast re-probes, no second interval).
// Printed per side: probes (checked to be targets × rounds), wall time, probes/s, CPU seconds and µs
// per probe, peak RSS; then the ratios of CPU per probe. Wall time with dropped targets is mostly
// timeout waits, not a rate: fping sends a target's rounds 1 ms apart and waits one timeout for all,
// the engine never has two probes of one target in flight and so waits one timeout per round.
// Run: [SWEEP_PREFIX=command] [SWEEP_NODE_FLAGS=flags] bench/probe-run.sh compare [icmpTargets=3000] [tcpTargets=10000] [rounds=3] [concurrency=512]
//      (icmpTargets 0 skips ICMP, tcpTargets 0 skips TCP)
import { execFile, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { promisify } from 'node:util';
import pLimit from 'p-limit';
import { Registry } from 'prom-client';
import { createLogger } from '../src/log.js';
import { IcmpPinger, NETWORK_TRANSPORTS, ProbeEngine, type ProbeEngineOptions, type ProbeMode, type TcpTransport, type Transports } from '../src/probe/index.js';
import { HalfOpenProber } from '../src/probe/syn.js';
import { benchAddresses, childCpuSeconds, ownCpuSeconds, peakRssMb, startListener } from './probe-bench-support.js';

const TIMEOUT_MS = 1000;
const TCP_PORT = 8080;
/** Shares of dropped targets: every run compares without and with targets that time out. */
const DROPPED_SHARES = [0, 0.05];
const EXPORTER_ADDRESS = '127.0.0.1:19115';
/** An interval no cycle reaches: after its one probe a target is not due again before stop(). */
const NEVER_AGAIN_MS = 3_600_000;

interface Figures {
  name: string;
  probes: number;
  seconds: number;
  cpuS: number;
  rssMb: number;
  /** Answered probes (success, or refused for TCP). */
  answered: number;
}

/**
 * ICMP targets in the namespace probe-run.sh creates: it answers for 10.233.97.0–10.233.110.255 and
 * drops 10.233.111.0/24, so a share of them times out.
 */
function icmpAddresses(count: number, droppedShare: number): string[] {
  const dropped = Math.round(count * droppedShare);
  if (count - dropped > 14 * 254 || dropped > 254) throw new RangeError(`at most ${14 * 254} answering and 254 dropped ICMP targets`);
  const at = (n: number): string => `10.233.${97 + Math.floor(n / 254)}.${(n % 254) + 1}`;
  const up = Array.from({ length: count - dropped }, (_, n) => at(n));
  const down = Array.from({ length: dropped }, (_, n) => `10.233.111.${(n % 254) + 1}`);
  return [...up, ...down];
}

/**
 * One side of a comparison, run in a child process of its own (so its CPU and RSS are its own): the
 * engine, `rounds` times started and stopped. Thresholds 1/1 settle every target on its first probe,
 * and random 0 with a long interval makes every target due at start and not again before stop(),
 * so each cycle is exactly one probe per target through the engine's whole path (scheduler, pool,
 * hysteresis, metrics).
 */
async function engineSweep(mode: ProbeMode, tcpProbe: ProbeEngineOptions['tcpProbe'], addresses: string[], rounds: number, concurrency: number): Promise<void> {
  let probes = 0;
  let answered = 0;
  const count = (result: string): void => {
    probes += 1;
    if (result === 'success' || result === 'refused') answered += 1;
  };
  /** A transport that counts the outcomes of the one it wraps. */
  const counted = (tcp: TcpTransport): TcpTransport => ({
    probe: async (...args) => {
      const outcome = await tcp.probe(...args);
      count(outcome.result);
      return outcome;
    },
    close: () => tcp.close(),
    closeWhenIdle: () => tcp.closeWhenIdle(),
  });
  const transports: Transports = {
    openTcp: (options, logger) => counted(NETWORK_TRANSPORTS.openTcp(options, logger)),
    openHalfOpen: (logger) => counted(NETWORK_TRANSPORTS.openHalfOpen(logger)),
    openIcmp: (logger) => {
      const icmp = NETWORK_TRANSPORTS.openIcmp(logger);
      return {
        ping: async (address, timeoutMs) => {
          const outcome = await icmp.ping(address, timeoutMs);
          count(outcome.result);
          return outcome;
        },
        close: () => icmp.close(),
      };
    },
  };
  const engine = new ProbeEngine(
    {
      intervalMs: NEVER_AGAIN_MS,
      fastIntervalMs: 1,
      failureThreshold: 1,
      successThreshold: 1,
      timeoutMs: TIMEOUT_MS,
      concurrency,
      mode,
      icmpUnavailable: 'fail',
      tcpProbe,
      halfOpenUnavailable: 'fail',
      allowCidrs: ['127.0.0.0/8', '10.233.96.0/20'],
    },
    { logger: createLogger({ level: 'warn' }), registry: new Registry(), transports, random: () => 0 },
  );
  engine.setTargets(addresses.map((address) => ({ address, ports: mode === 'tcp' ? [TCP_PORT] : [], owners: ['bench/svc'] })));
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    await engine.start();
    await engine.firstRoundComplete();
    await engine.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuS = ownCpuSeconds(cpuStart);
  if (probes !== addresses.length * rounds) throw new Error(`engine made ${probes} probes, not ${addresses.length * rounds}`);
  const figures: Figures = { name: mode === 'tcp' ? `engine ${tcpProbe}` : `engine ${mode}`, probes, seconds, cpuS, rssMb: peakRssMb(), answered };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/**
 * A bare prober, no engine: the IcmpPinger or the HalfOpenProber, every target `rounds` times with
 * `concurrency` probes in flight (a child process too).
 */
async function proberSweep(side: 'pinger' | 'half-open', addresses: string[], rounds: number, concurrency: number): Promise<void> {
  const pinger = side === 'pinger' ? new IcmpPinger(createLogger({ level: 'warn' })) : undefined;
  const halfOpen = side === 'half-open' ? new HalfOpenProber() : undefined;
  const total = addresses.length * rounds;
  let next = 0;
  let answered = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const address = addresses[next++ % addresses.length]!;
        const outcome = pinger ? await pinger.ping(address, TIMEOUT_MS) : await halfOpen!.probePort(address, TCP_PORT, TIMEOUT_MS);
        if (outcome.result === 'success' || outcome.result === 'refused') answered += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuS = ownCpuSeconds(cpuStart);
  pinger?.close();
  await halfOpen?.close();
  const figures: Figures = { name: pinger ? 'IcmpPinger alone' : 'HalfOpenProber alone', probes: total, seconds, cpuS, rssMb: peakRssMb(), answered };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/** The sides sweepInChild runs: the engine per mode and TCP prober, or a bare prober. */
type Side = 'icmp' | 'tcp-connect' | 'tcp-half-open' | 'pinger' | 'half-open';

/** Runs engineSweep or proberSweep in a child process (this file with `sweep` arguments) and reads its figures. */
async function sweepInChild(side: Side, addresses: string[], rounds: number, concurrency: number): Promise<Figures> {
  const file = `.tmp/bench/targets-${side}.txt`;
  await writeFile(file, addresses.join('\n'));
  // SWEEP_PREFIX runs the side under a profiler, e.g. "perf stat -e task-clock,raw_syscalls:sys_enter" (its report goes to stderr).
  // SWEEP_NODE_FLAGS: node flags for the side, e.g. the manifest's (V8 flags are not allowed in NODE_OPTIONS).
  const command = [...(process.env.SWEEP_PREFIX?.split(' ') ?? []), process.execPath, ...(process.env.SWEEP_NODE_FLAGS?.split(' ') ?? []), ...process.execArgv, process.argv[1]!, 'sweep', side, file, String(rounds), String(concurrency)];
  const { stdout, stderr } = await promisify(execFile)(command[0]!, command.slice(1), { maxBuffer: 1 << 20 });
  if (process.env.SWEEP_PREFIX) process.stderr.write(`${side}:${stderr}`);
  await rm(file);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Figures;
}

/** fping at its fastest pacing as root (-i 0: no gap between packets, -p 1: 1 ms between rounds of a target), no retries. */
async function fping(addresses: string[], rounds: number): Promise<Figures> {
  const started = performance.now();
  // GNU time prints user, system seconds and peak RSS (KiB) of fping on the last stderr line.
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', 'fping', '-q', '-c', String(rounds), '-p', '1', '-i', '0', '-r', '0', '-t', String(TIMEOUT_MS), '-f', '-'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stdin.end(addresses.join('\n'));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise((resolve) => child.once('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  const lines = stderr.trim().split('\n');
  const [user, system, rssKb] = lines.at(-1)!.split(' ').map(Number);
  // Per target: "10.233.97.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = ...".
  let probes = 0;
  let answered = 0;
  for (const match of stderr.matchAll(/xmt\/rcv\/%loss = (\d+)\/(\d+)\//g)) {
    probes += Number(match[1]);
    answered += Number(match[2]);
  }
  return { name: 'fping', probes, seconds, cpuS: user! + system!, rssMb: rssKb! / 1024, answered };
}

/** Our own blackbox_exporter on loopback, with a tcp_connect module of TIMEOUT_MS. */
async function startExporter(): Promise<{ pid: number; stop: () => void }> {
  const config = '.tmp/bench/blackbox.yml';
  await writeFile(config, `modules:\n  tcp_connect:\n    prober: tcp\n    timeout: ${TIMEOUT_MS / 1000}s\n`);
  const child = spawn('prometheus-blackbox-exporter', [`--config.file=${config}`, `--web.listen-address=${EXPORTER_ADDRESS}`, '--log.level=error'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let attempt = 0; ; attempt++) {
    try {
      await get('/-/healthy');
      break;
    } catch (err) {
      if (attempt === 50) throw new Error('blackbox_exporter did not start', { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { pid: child.pid!, stop: () => child.kill() };
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const [host, port] = EXPORTER_ADDRESS.split(':');
    request({ host, port: Number(port), path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** Every target `rounds` times through /probe, `concurrency` requests in flight; the exporter's own CPU and peak RSS. */
async function blackbox(addresses: string[], rounds: number, concurrency: number): Promise<{ exporter: Figures; driverCpuS: number }> {
  const exporter = await startExporter();
  const limit = pLimit(concurrency);
  const cpuBefore = await childCpuSeconds(exporter.pid);
  const driverStart = process.cpuUsage();
  const started = performance.now();
  let answered = 0;
  const jobs: Promise<void>[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const address of addresses) {
      jobs.push(
        limit(async () => {
          const body = await get(`/probe?module=tcp_connect&target=${address}:${TCP_PORT}`);
          if (/^probe_success 1$/m.test(body)) answered += 1;
        }),
      );
    }
  }
  await Promise.all(jobs);
  const seconds = (performance.now() - started) / 1000;
  const driverCpuS = ownCpuSeconds(driverStart);
  const cpuS = (await childCpuSeconds(exporter.pid)) - cpuBefore;
  const status = await readFile(`/proc/${exporter.pid}/status`, 'utf8');
  const rssMb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024;
  exporter.stop();
  agent.destroy();
  return { exporter: { name: 'blackbox_exporter', probes: addresses.length * rounds, seconds, cpuS, rssMb, answered }, driverCpuS };
}

function row(f: Figures): string {
  const perProbeUs = (f.cpuS * 1e6) / f.probes;
  return `${f.name.padEnd(18)} ${String(f.probes).padStart(7)} probes (${f.answered} answered) in ${f.seconds.toFixed(2)} s: ${(f.probes / f.seconds).toFixed(0).padStart(6)} probes/s, CPU ${f.cpuS.toFixed(2)} s (${perProbeUs.toFixed(1)} µs/probe), peak RSS ${f.rssMb.toFixed(0)} MB`;
}

function ratios(side: Figures, tool: Figures): string {
  const cpu = (f: Figures): number => f.cpuS / f.probes;
  return `${side.name}/${tool.name}: CPU per probe ×${(cpu(side) / cpu(tool)).toPrecision(2)}, wall time ×${(side.seconds / tool.seconds).toFixed(2)}, peak RSS ×${(side.rssMb / tool.rssMb).toFixed(1)}`;
}

async function main(): Promise<void> {
  const [icmpCount = 3000, tcpCount = 10_000, rounds = 3, concurrency = 512] = process.argv.slice(2).map(Number);
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(`every target probed exactly ${rounds} times by each side, timeout ${TIMEOUT_MS} ms, concurrency ${concurrency}; load average at start ${load}`);

  for (const droppedShare of icmpCount === 0 ? [] : DROPPED_SHARES) {
    const icmpTargets = icmpAddresses(icmpCount, droppedShare);
    const icmpEngine = await sweepInChild('icmp', icmpTargets, rounds, concurrency);
    const icmpPinger = await sweepInChild('pinger', icmpTargets, rounds, concurrency);
    const icmpTool = await fping(icmpTargets, rounds);
    console.log(`\nICMP, ${icmpCount} targets in a namespace, ${droppedShare * 100}% dropped`);
    for (const side of [icmpEngine, icmpPinger, icmpTool]) console.log(row(side));
    console.log(ratios(icmpEngine, icmpTool));
    console.log(ratios(icmpPinger, icmpTool));
  }

  if (tcpCount === 0) return;
  const listener = await startListener(TCP_PORT);
  try {
    for (const droppedShare of DROPPED_SHARES) {
      const { reachable, unreachable } = benchAddresses(tcpCount, droppedShare);
      const tcpTargets = [...reachable, ...unreachable];
      const tcpEngine = await sweepInChild('tcp-connect', tcpTargets, rounds, concurrency);
      const halfOpenEngine = await sweepInChild('tcp-half-open', tcpTargets, rounds, concurrency);
      const halfOpen = await sweepInChild('half-open', tcpTargets, rounds, concurrency);
      const { exporter, driverCpuS } = await blackbox(tcpTargets, rounds, concurrency);
      console.log(`\nTCP, ${tcpCount} targets on loopback, ${droppedShare * 100}% dropped`);
      for (const side of [tcpEngine, halfOpenEngine, halfOpen]) console.log(row(side));
      console.log(`${row(exporter)} (+ ${driverCpuS.toFixed(2)} s CPU in our HTTP driver)`);
      for (const side of [tcpEngine, halfOpenEngine, halfOpen]) console.log(ratios(side, exporter));
      console.log(ratios(halfOpenEngine, tcpEngine));
    }
  } finally {
    listener.kill();
  }
}

if (process.argv[2] === 'sweep') {
  const [, side, file, rounds, concurrency] = process.argv.slice(2) as [string, Side, string, string, string];
  const addresses = (await readFile(file, 'utf8')).split('\n');
  if (side === 'pinger' || side === 'half-open') await proberSweep(side, addresses, Number(rounds), Number(concurrency));
  else if (side === 'icmp') await engineSweep('icmp', 'connect', addresses, Number(rounds), Number(concurrency));
  else await engineSweep('tcp', side === 'tcp-half-open' ? 'half-open' : 'connect', addresses, Number(rounds), Number(concurrency));
} else {
  await main();
}
