// The allow-list on real sockets: a ServiceImport names the IPv4-mapped loopback address while the
// allow-list lists `::ffff:0.0.0.0/96`; the agent refuses it and never connects to the node's own
// loopback, while it probes the pods. And the log lines of agent and controller carry each key once.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneState } from '../harness/cluster.js';
import { MCS_GROUP, MCS_VERSION, makeServiceImport } from '../harness/fixtures.js';
import { duplicateKeys } from '../harness/json-keys.js';
import { POD_PORT, createScenario, fastProbeConfig, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const SUBNET = '10.233.23.0/24';
const MAPPED_LOOPBACK = '::ffff:127.0.0.1';
const COUNTER = 'eps-alw-loopback';

describe('allow-list on real sockets', () => {
  let s: Scenario;
  let loopbackConnections = 0;

  /** Packets the node sent to 127.0.0.1:POD_PORT (an iptables counter in its namespace). */
  const packetsToLoopback = (): number => {
    const out = execFileSync('ip', ['netns', 'exec', s.topology.netnsOf('n1'), 'iptables', '-w', '-L', 'OUTPUT', '-v', '-n', '-x'], { encoding: 'utf8' });
    return Number(out.split('\n').find((line) => line.includes(COUNTER))?.trim().split(/\s+/)[0] ?? NaN);
  };

  beforeAll(async () => {
    s = await createScenario({
      name: 'alw', subnet: SUBNET, pods: 2, nodes: 1, config: fastProbeConfig('heartbeatPeriod: 2s'),
      allowCidrs: ['::ffff:0.0.0.0/96', SUBNET], controlPlane: controlPlaneState(),
    });
    // What `::ffff:127.0.0.1` reaches from the agent: its node's own loopback.
    const script =
      `const s=require('net').createServer(c=>{process.stdout.write('connection\\n');c.on('error',()=>{});c.end()});` +
      `s.listen(${POD_PORT},'127.0.0.1',()=>process.stdout.write('listening\\n'));`;
    const listener = s.topology.spawnIn('n1', process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      listener.stdout!.on('data', (chunk: Buffer) => {
        const lines = chunk.toString().split('\n');
        if (lines.includes('listening')) resolve();
        loopbackConnections += lines.filter((line) => line === 'connection').length;
      });
      listener.once('exit', (code) => reject(new Error(`loopback listener exited with ${code}`)));
    });
    execFileSync('ip', ['netns', 'exec', s.topology.netnsOf('n1'), 'iptables', '-w', '-I', 'OUTPUT', '-d', '127.0.0.1', '-p', 'tcp', '--dport', String(POD_PORT), '-m', 'comment', '--comment', COUNTER, '-j', 'ACCEPT']);
    await s.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports',
      body: makeServiceImport({ name: 'loopback', namespace: s.namespace, addresses: [MAPPED_LOOPBACK], ports: [POD_PORT] }),
    });
    s.startAgent('n1');
    s.startController('c1');
    await until('the first report of n1', async () => ((await s.report('n1'))?.targetsProbed ?? 0) >= 2);
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('refuses an IPv4-mapped loopback target under ::ffff:0.0.0.0/96 and sends it nothing, while the pods are probed', async () => {
    // Several probe intervals (1 s) after the first round.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(loopbackConnections).toBe(0);
    expect(packetsToLoopback()).toBe(0);
    const report = (await s.report('n1'))!;
    expect(report.targetsProbed).toBe(2);
    expect(report.unreachableCount).toBe(0);
    const refusal = s.agents.get('n1')!.logs.find((line) => line.msg === 'target refused by the allow-list; it will not be probed');
    expect(refusal).toMatchObject({ address: MAPPED_LOOPBACK, reason: 'IPv4-mapped address of 127.0.0.1 (loopback)' });
    expect(await s.metrics('n1')).toMatch(/^eps_probe_target_refused_total 1$/m);
    // The listener and the counter do see a connection that is made (so the zeros above mean something).
    execFileSync('nsenter', [`--net=/run/netns/${s.topology.netnsOf('n1')}`, process.execPath, '-e',
      `require('net').connect(${POD_PORT},'::ffff:127.0.0.1').on('connect',function(){this.end()}).on('error',e=>{throw e})`]);
    await expect.poll(() => loopbackConnections, { timeout: 5000, interval: 100 }).toBe(1);
    expect(packetsToLoopback()).toBeGreaterThan(0);
  });

  it('writes each key once on every log line of the agent and the controller', async () => {
    // Lines of child loggers are among them: the probe engine's (agent) and the leader election's (controller).
    const agentLines = s.agents.get('n1')!.lines;
    const controllerLines = s.controllers.get('c1')!.lines;
    await expect.poll(() => controllerLines.some((line) => line.includes('"msg":"became leader"')), { timeout: 30_000, interval: 200 }).toBe(true);
    expect(agentLines.some((line) => line.includes('"msg":"probe engine started"'))).toBe(true);
    for (const lines of [agentLines, controllerLines]) {
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.flatMap((line) => duplicateKeys(line).map((key) => `${key} in ${line}`))).toEqual([]);
    }
  });
});
