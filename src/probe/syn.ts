import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { loadNativeAddon } from '../native-addon.js';
import { StartupError } from '../startup.js';
import { Expiries } from './expiries.js';
import { answersProbe, timeoutResult, type ProbeOutcome, type ProbeResult } from './outcome.js';
import { probeAnyPort, resultOfConnectError, type PortProber, type ProbeCanceller } from './tcp.js';
import type { TcpTransport } from './transports.js';

/** Raised when the half-open prober cannot run here: no raw sockets (CAP_NET_RAW), or its native part is not built. */
export class HalfOpenUnavailableError extends Error {
  override readonly name = 'HalfOpenUnavailableError';
}

type NativeHandle = { readonly brand: unique symbol };

/** native/syn.c */
interface SynNative {
  open(onReadable: () => void): [NativeHandle, number];
  queue(handle: NativeHandle, address: string, port: number): number | string;
  flush(handle: NativeHandle): (number | string)[] | null;
  receive(handle: NativeHandle, answers: Float64Array): number;
  stats(handle: NativeHandle): [number, number];
  close(handle: NativeHandle): void;
}

/** What native receive() says besides -errno of an ICMP error. */
const ANSWER_OPEN = 1;
const ANSWER_REFUSED = 2;

/** SYNs per sendmmsg in native/syn.c: queued SYNs go out at this count, or at the end of the event-loop turn. */
const SEND_BATCH = 64;

/** Answers per native receive() call. */
const RECEIVE_BATCH = 256;

const PERMISSION_CODES = new Set(['EPERM', 'EACCES']);

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

let loaded: SynNative | undefined;

/** build/Release/syn.node (native/syn.c). */
function synNative(): SynNative {
  if (!loaded) {
    try {
      loaded = loadNativeAddon<SynNative>('syn');
    } catch (err) {
      throw new HalfOpenUnavailableError(`the half-open prober's native part is not built (npm ci or make build builds it): ${(err as Error).message}`, { cause: err });
    }
  }
  return loaded;
}

interface PendingProbe {
  readonly key: number;
  readonly started: number;
  readonly timeoutMs: number;
  readonly resolve: (outcome: ProbeOutcome) => void;
  readonly canceller: ProbeCanceller | undefined;
  readonly cancel: (() => void) | undefined;
  settled: boolean;
  /** Another probe of the same address and port in flight: one answer settles both. */
  next: PendingProbe | undefined;
}

/**
 * Half-open TCP probes, as SYN scanners make them: a SYN from a raw socket; a SYN-ACK (open) or a RST
 * (refused) answers, and the kernel, which knows no such connection, resets the half-open one at the
 * target. An ICMP error quoting the SYN ends the probe as connect() would end (ECONNREFUSED,
 * EHOSTUNREACH...); silence until the timeout is a timeout. A probe is found again from its answer's
 * addresses, ports and acknowledged sequence number (a keyed hash of them, native/syn.c); besides a
 * record of each probe waiting for its answer or timeout, nothing is kept. Every probe of a process
 * uses one source port, held by a bound TCP socket that never listens. SYNs leave in batches at the
 * end of each event-loop turn; answers are read in batches when the sockets are readable.
 */
export class HalfOpenProber implements TcpTransport {
  /** The source port of every probe. */
  readonly port: number;
  private readonly native: SynNative;
  private readonly handle: NativeHandle;
  /** Probes waiting for an answer, by the key native queue() gave them (53 bits of the 4-tuple's hash). */
  private readonly pending = new Map<number, PendingProbe>();
  private readonly answers = new Float64Array(2 * RECEIVE_BATCH);
  private readonly expiries = new Expiries<PendingProbe>((probe) => this.expire(probe));
  private queued = 0;
  private flushPlanned = false;
  /** Set while a batch of timeouts is being decided: answers were read just before it. */
  private answersReadForTimeouts = false;
  private closed = false;
  /** closeWhenIdle() was called: close once the last probe in flight is settled. */
  private idle?: { promise: Promise<void>; resolve: () => void };

  /** @throws HalfOpenUnavailableError without raw-socket permission or without the native part. */
  constructor() {
    this.native = synNative();
    try {
      [this.handle, this.port] = this.native.open(() => this.readAnswers());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (PERMISSION_CODES.has(code)) throw new HalfOpenUnavailableError(`raw TCP sockets not permitted (${(err as Error).message}); CAP_NET_RAW is needed`, { cause: err });
      throw err;
    }
  }

  probe(address: string, ports: readonly number[], timeoutMs: number, refusedIsReachable: boolean): Promise<ProbeOutcome> {
    return probeAnyPort(this.probePort, address, ports, timeoutMs, answersProbe(refusedIsReachable));
  }

  /** Sends one SYN; same contract as tcpConnect. */
  readonly probePort: PortProber = (address, port, timeoutMs, canceller) => {
    const started = performance.now();
    if (this.closed) return Promise.resolve({ protocol: 'tcp', result: 'error', durationMs: 0, error: 'ABORT_ERR' });
    const key = this.native.queue(this.handle, address, port);
    if (typeof key === 'string') return Promise.resolve({ protocol: 'tcp', result: resultOfConnectError(key), durationMs: performance.now() - started, error: key });
    return new Promise((resolve) => {
      const cancel = canceller && ((): void => this.finish(probe, 'error', 'ABORT_ERR'));
      const probe: PendingProbe = { key, started, timeoutMs, resolve, canceller, cancel, settled: false, next: this.pending.get(key) };
      this.pending.set(key, probe);
      if (cancel) canceller!.add(cancel);
      this.expiries.add(probe, timeoutMs);
      if (++this.queued === SEND_BATCH) this.flush();
      else if (!this.flushPlanned) {
        this.flushPlanned = true;
        setImmediate(this.flushAtTurnEnd);
      }
    });
  };

  /** Packets that passed the sockets' filters, and how many of them answered a probe. */
  stats(): { packetsRead: number; answers: number } {
    const [packetsRead, answers] = this.closed ? [0, 0] : this.native.stats(this.handle);
    return { packetsRead, answers };
  }

  /** Closes the sockets; probes in flight end at once as errors. */
  async close(): Promise<void> {
    this.closeNow();
  }

  /** Closes the sockets once the probes in flight are settled (an options change replaced the prober). */
  closeWhenIdle(): Promise<void> {
    if (!this.idle) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.idle = { promise, resolve };
      if (this.pending.size === 0) this.closeNow();
    }
    return this.idle.promise;
  }

  private closeNow(): void {
    this.idle?.resolve();
    if (this.closed) return;
    this.closed = true;
    this.native.close(this.handle);
    this.expiries.clear();
    for (const head of [...this.pending.values()]) {
      for (let probe: PendingProbe | undefined = head; probe; probe = probe.next) this.finish(probe, 'error', 'ABORT_ERR');
    }
  }

  private readonly flushAtTurnEnd = (): void => {
    this.flushPlanned = false;
    this.flush();
  };

  private flush(): void {
    if (this.queued === 0 || this.closed) return;
    this.queued = 0;
    const failures = this.native.flush(this.handle);
    for (let i = 0; failures && i < failures.length; i += 2) {
      const code = failures[i + 1] as string;
      this.settleAll(failures[i] as number, resultOfConnectError(code), code);
    }
    // On loopback and nearby hosts the answers are there at once: read them between batches, before a
    // burst of thousands fills the receive buffer.
    this.readAnswers();
  }

  private readAnswers(): void {
    if (this.closed) return;
    let count: number;
    do {
      count = this.native.receive(this.handle, this.answers);
      for (let i = 0; i < 2 * count; i += 2) {
        const answer = this.answers[i + 1]!;
        if (answer === ANSWER_OPEN) this.settleAll(this.answers[i]!, 'success', undefined);
        else if (answer === ANSWER_REFUSED) this.settleAll(this.answers[i]!, 'refused', 'ECONNREFUSED');
        else {
          const code = ERRNO_NAMES.get(-answer) ?? `errno ${-answer}`;
          this.settleAll(this.answers[i]!, resultOfConnectError(code), code);
        }
      }
    } while (count === RECEIVE_BATCH);
  }

  /** Settles every probe waiting under `key` (a late or repeated answer finds none). */
  private settleAll(key: number, result: ProbeResult, error: string | undefined): void {
    for (let probe = this.pending.get(key); probe; probe = probe.next) this.finish(probe, result, error);
  }

  private expire(probe: PendingProbe): void {
    if (probe.settled) return;
    // Timers run before the event loop polls its sockets: an answer that already waits must win over
    // its own timeout, so read once before the timeouts due now are decided.
    if (!this.answersReadForTimeouts) {
      this.answersReadForTimeouts = true;
      this.readAnswers();
      queueMicrotask(() => (this.answersReadForTimeouts = false));
      if (probe.settled) return;
    }
    const { result, error } = timeoutResult(performance.now() - probe.started, probe.timeoutMs);
    this.finish(probe, result, error);
  }

  private finish(probe: PendingProbe, result: ProbeResult, error: string | undefined): void {
    if (probe.settled) return;
    probe.settled = true;
    this.forget(probe);
    if (probe.cancel) probe.canceller!.delete(probe.cancel);
    const outcome: ProbeOutcome = { protocol: 'tcp', result, durationMs: performance.now() - probe.started };
    if (error !== undefined) outcome.error = error;
    probe.resolve(outcome);
    if (this.idle && this.pending.size === 0) this.closeNow();
  }

  /** Takes a settled probe out of its key's list. */
  private forget(probe: PendingProbe): void {
    let head = this.pending.get(probe.key);
    if (head === probe) {
      if (probe.next) this.pending.set(probe.key, probe.next);
      else this.pending.delete(probe.key);
      return;
    }
    while (head && head.next !== probe) head = head.next;
    if (head) head.next = probe.next;
  }
}

/**
 * The prober for `tcpProbe: half-open`. Where it cannot run, logs why and returns undefined
 * (connect() probes instead), or with `halfOpenUnavailable: fail` throws a StartupError.
 */
export function openHalfOpen(open: () => TcpTransport, halfOpenUnavailable: 'fallback-connect' | 'fail', logger: Logger): TcpTransport | undefined {
  let reason: string;
  try {
    return open();
  } catch (err) {
    if (!(err instanceof HalfOpenUnavailableError)) throw err;
    reason = err.message;
  }
  if (halfOpenUnavailable === 'fail') {
    throw new StartupError(
      `probe.tcpProbe half-open is unavailable here (${reason}), and probe.halfOpenUnavailable is fail`,
      'give the agent container the NET_RAW capability and run node-net-raw as deploy/eps-probe-plugin.yaml does, or set probe.halfOpenUnavailable: fallback-connect or probe.tcpProbe: connect',
    );
  }
  logger.error({ reason }, 'half-open TCP probing configured but unavailable; probing with connect()');
  return undefined;
}
