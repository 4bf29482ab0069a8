import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { ProbeOutcome, ProbeResult } from './outcome.js';
import type { TcpTransport } from './transports.js';

/**
 * Probes and outcomes wait up to this long to cross together. Each message wakes the other thread's
 * event loop: one message per window instead of one per event-loop turn (10× fewer at 10k probes/s)
 * cut the engine's CPU by ~11%. Against intervals of seconds the wait does not matter, and a probe's
 * duration and timeout are measured in its thread.
 */
export const BATCH_WINDOW_MS = 10;

/**
 * Main thread → probe thread, once per batch window: probes to start, flattened as
 * [id, address, ports, timeoutMs, refusedIsReachable, ...] (one array clones far faster than an
 * object per probe).
 */
export type ThreadRequest = unknown[];
export const PROBE_FIELDS = 5;

/** Probe thread → main thread, once per batch window: [id, result, durationMs, error | null, ...]. */
export type ThreadReply = (number | string | null)[];
const REPLY_FIELDS = 4;

/**
 * A thread only holds the sockets in flight: a small young generation keeps its heap, and the node's
 * RSS, small (docs/benchmarks.md).
 */
const PROBE_THREAD_YOUNG_GENERATION_MB = 3;

/** Error code of a probe lost with its thread: a local error, never a target failure. */
const THREAD_LOST = 'ETHREADEXIT';

/**
 * A slot whose thread died stays empty this long: a thread that cannot start (a broken install)
 * must not be restarted for every batch of probes. Its probes meanwhile go to the other threads,
 * or end as errors when none is left.
 */
const RESTART_DELAY_MS = 1000;

interface PendingProbe {
  resolve(outcome: ProbeOutcome): void;
  thread: ProbeThread;
}

class ProbeThread {
  readonly worker: Worker;
  inFlight = 0;
  probes: ThreadRequest = [];

  constructor(url: URL, onReply: (reply: ThreadReply) => void, onExit: (thread: ProbeThread, why: unknown) => void) {
    // From sources (tests, tsx) the thread needs the TypeScript loader too.
    const execArgv = url.pathname.endsWith('.ts') ? ['--import', 'tsx'] : undefined;
    // V8's --max-semi-space-size (the DaemonSet sizes the main thread's young generation with it)
    // would override every later isolate's resourceLimits. V8 reads it only while an isolate sets
    // up its heap, so clearing it now leaves the main heap as it is and lets the thread have its own.
    setFlagsFromString('--max-semi-space-size=0');
    this.worker = new Worker(url, { execArgv, name: 'tcp-probe', resourceLimits: { maxYoungGenerationSizeMb: PROBE_THREAD_YOUNG_GENERATION_MB } });
    this.worker.unref();
    this.worker.on('message', onReply);
    this.worker.on('error', (err) => onExit(this, err));
    this.worker.on('exit', (code) => onExit(this, `exit code ${code}`));
  }

  flush = (): void => {
    this.worker.postMessage(this.probes);
    this.probes = [];
  };

  addProbe(id: number, address: string, ports: readonly number[], timeoutMs: number, refusedIsReachable: boolean): void {
    if (this.probes.length === 0) setTimeout(this.flush, BATCH_WINDOW_MS);
    this.probes.push(id, address, ports, timeoutMs, refusedIsReachable);
    // Only a thread with work keeps the process alive.
    if (this.inFlight++ === 0) this.worker.ref();
  }

  settled(): void {
    if (--this.inFlight === 0) this.worker.unref();
  }
}

/**
 * TCP connects spread over worker threads. On loopback most of a probe's cost is the kernel's
 * handshake inside connect() and close(), which one thread runs one after another: threads let a
 * node probe with more than one core. Scheduling, hysteresis and the pool stay on the main thread;
 * each thread runs `tcpConnectAnyPort`; probes and outcomes travel in batches.
 */
export class TcpProbeThreads implements TcpTransport {
  private readonly threads: (ProbeThread | undefined)[];
  /** Per slot, when a thread may be started there again (after one died). */
  private readonly restartAt: number[];
  private readonly pending = new Map<number, PendingProbe>();
  private nextId = 0;
  private closed = false;
  /** Set by closeWhenIdle(): called once the last pending probe is answered. */
  private onIdle: (() => void) | undefined;

  /** `script`: the thread's entry, replaceable in tests. */
  constructor(
    count: number,
    private readonly logger: Logger,
    private readonly script = new URL(import.meta.url.endsWith('.ts') ? './tcp-thread-entry.ts' : './tcp-thread-entry.js', import.meta.url),
  ) {
    this.threads = Array.from({ length: count }, () => undefined);
    this.restartAt = Array.from({ length: count }, () => 0);
  }

  /**
   * Same contract as tcpConnectAnyPort; a probe lost with a crashed thread is an error. No canceller:
   * probes in flight end with close(), whose thread termination closes their sockets.
   */
  probe(address: string, ports: readonly number[], timeoutMs: number, refusedIsReachable: boolean): Promise<ProbeOutcome> {
    if (this.closed) return Promise.resolve({ protocol: 'tcp', result: 'error', durationMs: 0, error: 'ABORT_ERR' });
    const thread = this.leastBusy();
    if (!thread) return Promise.resolve({ protocol: 'tcp', result: 'error', durationMs: 0, error: THREAD_LOST });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, thread });
      thread.addProbe(id, address, ports, timeoutMs, refusedIsReachable);
    });
  }

  /**
   * Takes no more probes and stops the threads once the probes they have are answered (each has its
   * timeout): replaced threads end without cutting probes short.
   */
  async closeWhenIdle(): Promise<void> {
    this.closed = true;
    if (this.pending.size > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
    await this.close();
  }

  /** Stops every thread at once; probes in flight settle as errors. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, 'error', 0, 'ABORT_ERR');
    const threads = this.threads.filter((thread) => thread !== undefined);
    this.threads.fill(undefined);
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  /** The running thread with the fewest probes in flight, or a new one in a free slot; undefined while every slot waits to restart. */
  private leastBusy(): ProbeThread | undefined {
    let best: ProbeThread | undefined;
    const now = Date.now();
    for (let n = 0; n < this.threads.length; n++) {
      const thread = this.threads[n];
      if (thread) {
        if (!best || thread.inFlight < best.inFlight) best = thread;
      } else if (now >= this.restartAt[n]!) {
        return (this.threads[n] = new ProbeThread(this.script, this.onReply, this.onExit));
      }
    }
    return best;
  }

  private readonly onReply = (reply: ThreadReply): void => {
    for (let i = 0; i < reply.length; i += REPLY_FIELDS) {
      this.settle(reply[i] as number, reply[i + 1] as ProbeResult, reply[i + 2] as number, (reply[i + 3] as string | null) ?? undefined);
    }
  };

  /** A thread that failed or exited loses its probes (errors); a new one starts in its slot after RESTART_DELAY_MS. */
  private readonly onExit = (thread: ProbeThread, why: unknown): void => {
    const slot = this.threads.indexOf(thread);
    if (slot < 0) return;
    this.threads[slot] = undefined;
    this.restartAt[slot] = Date.now() + RESTART_DELAY_MS;
    this.logger.error({ err: why, lost: thread.inFlight }, 'TCP probe thread stopped; its probes count as errors');
    for (const [id, probe] of this.pending) if (probe.thread === thread) this.settle(id, 'error', 0, THREAD_LOST);
    void thread.worker.terminate();
  };

  /** Resolves a probe once (a reply after close() finds nothing). */
  private settle(id: number, result: ProbeResult, durationMs: number, error: string | undefined): void {
    const probe = this.pending.get(id);
    if (!probe) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.onIdle?.();
    probe.thread.settled();
    const outcome: ProbeOutcome = { protocol: 'tcp', result, durationMs };
    if (error !== undefined) outcome.error = error;
    probe.resolve(outcome);
  }
}
