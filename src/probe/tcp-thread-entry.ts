// Entry point of one TCP probe thread (the pool is TcpProbeThreads in tcp-threads.ts): runs the
// connects it is sent and answers in batches, one message per batch window in each direction.
import { parentPort } from 'node:worker_threads';
import { answersProbe, type ProbeResult } from './outcome.js';
import { tcpConnectAnyPort } from './tcp.js';
import { BATCH_WINDOW_MS, PROBE_FIELDS, type ThreadReply, type ThreadRequest } from './tcp-threads.js';

const port = parentPort!;
let replies: ThreadReply = [];

function flushReplies(): void {
  port.postMessage(replies);
  replies = [];
}

function reply(id: number, result: ProbeResult, durationMs: number, error: string | undefined): void {
  if (replies.length === 0) setTimeout(flushReplies, BATCH_WINDOW_MS);
  replies.push(id, result, durationMs, error ?? null);
}

port.on('message', (probes: ThreadRequest) => {
  for (let i = 0; i < probes.length; i += PROBE_FIELDS) {
    const id = probes[i] as number;
    const address = probes[i + 1] as string;
    const ports = probes[i + 2] as number[];
    const timeoutMs = probes[i + 3] as number;
    const isAnswer = answersProbe(probes[i + 4] as boolean);
    void tcpConnectAnyPort(address, ports, timeoutMs, isAnswer).then((outcome) => reply(id, outcome.result, outcome.durationMs, outcome.error));
  }
});
