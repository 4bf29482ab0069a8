// TCP probe engine at scale: N targets on 127.0.0.0/8 (a share dropped, so probes time out), run for
// a few intervals. Prints probes/s, how long a full round takes vs the interval, CPU and peak RSS.
// Then, as a yardstick taken under the same machine load, the same targets once each through bare
// tcpConnect calls (or HalfOpenProber probes) at the same concurrency (no engine): about the most one
// Node thread can do here.
// Run: bench/probe-run.sh engine [targets=100000] [intervalMs=10000] [rounds=3] [concurrency=2048] [tcpThreads=0] [tcpProbe=connect|half-open]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { createLogger } from '../src/log.js';
import { ProbeEngine, tcpConnect, type ProbeEngineOptions } from '../src/probe/index.js';
import { HalfOpenProber } from '../src/probe/syn.js';
import { benchAddresses, childCpuSeconds, ownCpuSeconds, peakRssMb, startListener } from './probe-bench-support.js';

const [targets = 100_000, intervalMs = 10_000, rounds = 3, concurrency = 2048, tcpThreads = 0] = process.argv.slice(2, 7).map(Number);
const tcpProbe = (process.argv[7] ?? 'connect') as ProbeEngineOptions['tcpProbe'];
const UNREACHABLE_SHARE = 0.05;
const PORT = 8080;
const TIMEOUT_MS = 1000;

const listener = await startListener(PORT);
const { reachable, unreachable } = benchAddresses(targets, UNREACHABLE_SHARE);

const registry = new Registry();
const engine = new ProbeEngine(
  { intervalMs, timeoutMs: TIMEOUT_MS, fastIntervalMs: 200, concurrency, tcpThreads, tcpProbe, halfOpenUnavailable: 'fail', allowCidrs: ['127.0.0.0/8'], mode: 'tcp' },
  { logger: createLogger({ level: 'warn' }), registry },
);

type Sample = { metricName?: string; value: number };
async function samples(name: string): Promise<Sample[]> {
  return (await registry.getSingleMetric(name)!.get()).values as Sample[];
}
/** Sum and count of one of the engine's histograms. */
async function histogramTotals(name: string): Promise<{ sum: number; count: number }> {
  const values = await samples(name);
  const pick = (suffix: string): number => values.find((v) => v.metricName === `${name}${suffix}`)?.value ?? 0;
  return { sum: pick('_sum'), count: pick('_count') };
}

/** Every full round's duration (every target probed once more), read off eps_probe_probe_round_duration_seconds. */
const roundDurations: number[] = [];
let roundsSeen = { sum: 0, count: 0 };
const roundWatch = setInterval(() => {
  void histogramTotals('eps_probe_probe_round_duration_seconds').then((now) => {
    if (now.count > roundsSeen.count) roundDurations.push((now.sum - roundsSeen.sum) / (now.count - roundsSeen.count));
    roundsSeen = now;
  });
}, 100);
engine.setTargets([...reachable, ...unreachable].map((address) => ({ address, ports: [PORT], owners: ['bench/svc'] })));
const started = performance.now();
const cpuStart = process.cpuUsage();
// Event-loop delay while the engine runs: how late any callback (not only probes) gets to run.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const listenerCpuStart = await childCpuSeconds(listener.pid!);
await engine.start();
await engine.firstRoundComplete();
const firstRoundMs = performance.now() - started;
await new Promise((resolve) => setTimeout(resolve, Math.max(0, rounds * intervalMs - firstRoundMs)));
const wallS = (performance.now() - started) / 1000;
const cpuS = ownCpuSeconds(cpuStart);
const probes = (await samples('eps_probe_probes_total')).reduce((acc, v) => acc + v.value, 0);
clearInterval(roundWatch);
const listenerCpuS = (await childCpuSeconds(listener.pid!)) - listenerCpuStart;
loopDelay.disable();
const states = engine.snapshot().reduce<Record<string, number>>((acc, s) => ((acc[s.state] = (acc[s.state] ?? 0) + 1), acc), {});
await engine.stop();
const engineRssMb = peakRssMb();

// Dropped targets spread among the others, as the engine's random first probes spread them: all at the
// end, their timeouts would stretch the run.
const addresses: string[] = [];
const every = reachable.length / unreachable.length;
for (let n = 0, dropped = 0; n < reachable.length; n++) {
  addresses.push(reachable[n]!);
  if (dropped < unreachable.length && n + 1 >= (dropped + 1) * every) addresses.push(unreachable[dropped++]!);
}
let next = 0;
const halfOpen = tcpProbe === 'half-open' ? new HalfOpenProber() : undefined;
const bareProbe = halfOpen ? halfOpen.probePort : tcpConnect;
const bareStarted = performance.now();
const bareCpuStart = process.cpuUsage();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < addresses.length) await bareProbe(addresses[next++]!, PORT, TIMEOUT_MS);
  }),
);
const bareS = (performance.now() - bareStarted) / 1000;
const bareCpuS = ownCpuSeconds(bareCpuStart);
await halfOpen?.close();
listener.kill();

const lateness = await histogramTotals('eps_probe_probe_lateness_seconds');

console.log(
  `targets ${targets} (${unreachable.length} dropped), interval ${intervalMs} ms, timeout ${TIMEOUT_MS} ms, concurrency ${concurrency}, tcpThreads ${tcpThreads}, tcpProbe ${tcpProbe}`,
);
console.log(`first round complete (all targets known) after ${(firstRoundMs / 1000).toFixed(2)} s`);
console.log(`states at end: ${JSON.stringify(states)}`);
console.log(`probes ${probes} in ${wallS.toFixed(1)} s: ${(probes / wallS).toFixed(0)} probes/s`);
console.log(`full rounds completed: ${roundDurations.length}, durations (s): ${roundDurations.map((d) => d.toFixed(2)).join(', ')} (interval ${intervalMs / 1000} s)`);
console.log(`event-loop delay: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms`);
console.log(`mean probe lateness ${((lateness.sum / Math.max(1, lateness.count)) * 1000).toFixed(1)} ms`);
console.log(
  `CPU: engine (all threads) ${cpuS.toFixed(1)} s (${((cpuS / wallS) * 100).toFixed(0)}% of one core, ${((cpuS * 1e6) / probes).toFixed(0)} µs/probe), listener ${listenerCpuS.toFixed(1)} s`,
);
console.log(`peak RSS ${engineRssMb.toFixed(0)} MB`);
console.log(
  `bare ${halfOpen ? 'HalfOpenProber' : 'tcpConnect'}, same targets once: ${(targets / bareS).toFixed(0)} probes/s, CPU ${((bareCpuS / bareS) * 100).toFixed(0)}% of one core, ${((bareCpuS * 1e6) / targets).toFixed(0)} µs/probe`,
);
