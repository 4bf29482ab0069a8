import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopology, type Topology } from '../harness/topology.js';

/** One TCP connect with a deadline: 'connected', 'refused' or 'timeout'. */
function connect(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => done('connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : (err.code ?? 'error')));
  });
}

describe('network-namespace topology', () => {
  let topology: Topology;

  beforeAll(async () => {
    topology = await createTopology({ name: 'topo', subnet: '10.233.2.0/24' });
    await topology.addPod('web');
    await topology.addNode('n1');
    await topology.listen('web', 8080);
  });
  afterAll(async () => {
    await topology?.destroy();
  });

  it('installs a blackhole route for the whole subnet in the root namespace', () => {
    const routes = execFileSync('ip', ['route', 'show', 'type', 'blackhole'], { encoding: 'utf8' });
    expect(routes).toContain('10.233.2.0/24');
  });

  it('a TCP connect into a pod succeeds, fails after a cut, and succeeds after restore', async () => {
    const pod = '10.233.2.2';
    expect(await connect(pod, 8080, 1000)).toBe('connected');
    await topology.cutPod('web');
    expect(await connect(pod, 8080, 1000)).toBe('timeout');
    await topology.restorePod('web');
    expect(await connect(pod, 8080, 3000)).toBe('connected');
  });

  it('cuts one node-to-pod path without touching the others', async () => {
    const probe = (): string =>
      execFileSync('ip', ['netns', 'exec', 'eps-topo-n1', process.execPath, '-e',
        `const s=require('net').connect(8080,'10.233.2.2');s.setTimeout(800,()=>{console.log('timeout');process.exit()});` +
        `s.on('connect',()=>{console.log('connected');process.exit()});s.on('error',e=>{console.log(e.code);process.exit()})`],
      { encoding: 'utf8' }).trim();
    expect(probe()).toBe('connected');
    await topology.cutPath('n1', 'web');
    expect(probe()).toBe('timeout');
    expect(await connect('10.233.2.2', 8080, 1000)).toBe('connected');
    await topology.restorePath('n1', 'web');
    expect(probe()).toBe('connected');
  });

  it('removes its namespaces, bridge and routes on destroy', async () => {
    const other = await createTopology({ name: 'gone', subnet: '10.233.3.0/24' });
    await other.addPod('p');
    await other.destroy();
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain('eps-gone-');
    expect(execFileSync('ip', ['route', 'show', 'type', 'blackhole'], { encoding: 'utf8' })).not.toContain('10.233.3.0/24');
    expect(execFileSync('ip', ['link', 'show'], { encoding: 'utf8' })).not.toContain('br-epsgone');
  });
});
