import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { TcpProbeThreads } from '../../src/probe/tcp-threads.js';

const THREAD_STOPPED = 'TCP probe thread stopped; its probes count as errors';

describe('TcpProbeThreads', () => {
  it('turns the probes of a thread that died into errors, not failures, and starts a new thread a second later', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach((line) => lines.push(JSON.parse(line))));
    const threads = new TcpProbeThreads(1, createLogger({ destination: stream }), new URL('./fixtures/crashing-probe-thread.mjs', import.meta.url));
    try {
      // Nothing is ever connected: the thread exits as soon as it gets the batch.
      const first = await Promise.all([threads.probe('10.0.0.1', [80], 500, true), threads.probe('10.0.0.2', [80], 500, true)]);
      expect(first).toEqual([
        { protocol: 'tcp', result: 'error', durationMs: 0, error: 'ETHREADEXIT' },
        { protocol: 'tcp', result: 'error', durationMs: 0, error: 'ETHREADEXIT' },
      ]);
      // Its slot waits before a new thread: meanwhile probes end as errors at once, without a thread.
      expect(await threads.probe('10.0.0.3', [80], 500, true)).toEqual({ protocol: 'tcp', result: 'error', durationMs: 0, error: 'ETHREADEXIT' });
      expect(lines.filter((line) => line.msg === THREAD_STOPPED).map((line) => line.lost)).toEqual([2]);
      // Then a new thread takes the next probe (and dies the same way) instead of leaving it pending.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(await threads.probe('10.0.0.4', [80], 500, true)).toMatchObject({ result: 'error', error: 'ETHREADEXIT' });
      expect(lines.filter((line) => line.msg === THREAD_STOPPED).map((line) => line.lost)).toEqual([2, 1]);
    } finally {
      await threads.close();
    }
    expect(await threads.probe('10.0.0.5', [80], 500, true)).toMatchObject({ result: 'error', error: 'ABORT_ERR' });
  });

  it('gives a probe thread its own small young generation even when the process runs with --max-semi-space-size', () => {
    const limits = (...flags: string[]): { main: number; thread: number } =>
      JSON.parse(
        execFileSync(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(new URL('./fixtures/thread-heap-limits.ts', import.meta.url))], { encoding: 'utf8' }),
      );
    const small = limits('--max-semi-space-size=1');
    const large = limits('--max-semi-space-size=16');
    // The flag sizes the main thread's young generation (its limit counts it)...
    expect(large.main - small.main).toBeGreaterThanOrEqual(2 * 15 * 2 ** 20);
    // ...and not the thread's, which keeps its own whatever the flag says.
    expect(large.thread).toBe(small.thread);
  });
});
