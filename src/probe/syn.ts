import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { StartupError } from '../startup.js';
import { Expiries } from './expiries.js';
import { ANSWER_OPEN, ANSWER_REFUSED, ERRNO_NAMES, HalfOpenUnavailableError, PERMISSION_CODES, RECEIVE_BATCH, SEND_BATCH, synNative, type NativeHandle, type SynNative } from './syn-native.js';
import { answersProbe, timeoutResult, type ProbeOutcome, type ProbeResult } from './outcome.js';
import { probeAnyPort, resultOfConnectError, type PortProber, type ProbeCanceller } from './tcp.js';
import type { TcpTransport } from './transports.js';

/** Slots for probes in flight at first; the arrays double when full. */
const INITIAL_SLOTS = 1024;

/** No slot: the end of a key's list. */
const NONE = -1;

/**
 * Half-open TCP probes, as SYN scanners make them: a SYN from a raw socket; a SYN-ACK (open) or a RST
 * (refused) answers, and the kernel, which knows no such connection, resets the half-open one at the
 * target. An ICMP error quoting the SYN ends the probe as connect() would end (ECONNREFUSED,
 * EHOSTUNREACH...); silence until the timeout is a timeout. A probe is found again from its answer's
 * addresses, ports and acknowledged sequence number (a keyed hash of them, native/syn.c); besides a
 * slot per probe waiting for its answer or timeout, nothing is kept. Every probe of a process
 * uses one source port, held by a bound TCP socket that never listens. SYNs leave in batches at the
 * end of each event-loop turn; answers are read in batches when the sockets are readable.
 *
 * A probe's state is a slot in flat arrays, not an object: its timeout entry names the slot, so an
 * answered probe leaves nothing behind for the timeout queue to hold (at thousands of probes per
 * second, objects held for the timeout outlived the young generation and cost the old one's GC). A
 * slot is free again once its timeout entry is due, answered or not, and so is never reused while
 * an entry names it.
 */
export class HalfOpenProber implements TcpTransport {
  /** The source port of every probe. */
  readonly port: number;
  private readonly native: SynNative;
  private readonly handle: NativeHandle;
  /** The head slot of the probes waiting under each key, by the key's low 31 bits (a small integer, no heap number). */
  private readonly pending = new Map<number, number>();
  /** Per slot: how the probe's promise settles; undefined once settled (or free). */
  private resolvers: (((outcome: ProbeOutcome) => void) | undefined)[] = [];
  /** Per slot: the probe's canceller and its entry there, for probes that have one. */
  private cancellers: (ProbeCanceller | undefined)[] = [];
  private cancels: ((() => void) | undefined)[] = [];
  /** Per slot: the key native queue() gave the probe (53 bits of the 4-tuple's hash), its start and timeout. */
  private keys = new Float64Array(INITIAL_SLOTS);
  private started = new Float64Array(INITIAL_SLOTS);
  private timeouts = new Float64Array(INITIAL_SLOTS);
  /** Per slot: the next slot waiting under the same low 31 bits of the key (another probe of the same address and port, or a rare collision). */
  private next = new Int32Array(INITIAL_SLOTS);
  /** Free slots, a stack. */
  private free = Int32Array.from({ length: INITIAL_SLOTS }, (_, n) => INITIAL_SLOTS - 1 - n);
  private freeCount = INITIAL_SLOTS;
  /** The promise executor's resolve, caught by one shared executor (no closure per probe). */
  private caught: ((outcome: ProbeOutcome) => void) | undefined;
  private readonly catchResolve = (resolve: (outcome: ProbeOutcome) => void): void => {
    this.caught = resolve;
  };
  private inFlight = 0;
  private readonly answers = new Float64Array(2 * RECEIVE_BATCH);
  private readonly expiries = new Expiries<number>((slot) => this.expire(slot));
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
    const promise = new Promise(this.catchResolve);
    const slot = this.takeSlot();
    this.resolvers[slot] = this.caught;
    this.caught = undefined;
    this.keys[slot] = key;
    this.started[slot] = started;
    this.timeouts[slot] = timeoutMs;
    const shortKey = key & 0x7fffffff;
    this.next[slot] = this.pending.get(shortKey) ?? NONE;
    this.pending.set(shortKey, slot);
    this.inFlight += 1;
    if (canceller) {
      const cancel = (): void => this.finish(slot, 'error', 'ABORT_ERR');
      this.cancellers[slot] = canceller;
      this.cancels[slot] = cancel;
      canceller.add(cancel);
    }
    this.expiries.add(slot, timeoutMs);
    if (++this.queued === SEND_BATCH) this.flush();
    else if (!this.flushPlanned) {
      this.flushPlanned = true;
      setImmediate(this.flushAtTurnEnd);
    }
    return promise;
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
      if (this.inFlight === 0) this.closeNow();
    }
    return this.idle.promise;
  }

  private closeNow(): void {
    this.idle?.resolve();
    if (this.closed) return;
    this.closed = true;
    this.native.close(this.handle);
    this.expiries.clear();
    for (let slot = 0; slot < this.resolvers.length; slot++) this.finish(slot, 'error', 'ABORT_ERR');
  }

  private takeSlot(): number {
    if (this.freeCount === 0) {
      const size = this.keys.length;
      const grown = <A extends Float64Array | Int32Array>(array: A, make: (length: number) => A): A => {
        const bigger = make(2 * size);
        bigger.set(array);
        return bigger;
      };
      this.keys = grown(this.keys, (n) => new Float64Array(n));
      this.started = grown(this.started, (n) => new Float64Array(n));
      this.timeouts = grown(this.timeouts, (n) => new Float64Array(n));
      this.next = grown(this.next, (n) => new Int32Array(n));
      this.free = new Int32Array(2 * size);
      for (let slot = 2 * size - 1; slot >= size; slot--) this.free[this.freeCount++] = slot;
    }
    return this.free[--this.freeCount]!;
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
    let slot = this.pending.get(key & 0x7fffffff) ?? NONE;
    while (slot !== NONE) {
      const following = this.next[slot]!;
      if (this.keys[slot] === key) this.finish(slot, result, error);
      slot = following;
    }
  }

  /** The timeout entry of `slot` is due: a probe still waiting times out, and the slot is free again. */
  private expire(slot: number): void {
    if (this.resolvers[slot]) {
      // Timers run before the event loop polls its sockets: an answer that already waits must win over
      // its own timeout, so read once before the timeouts due now are decided.
      if (!this.answersReadForTimeouts) {
        this.answersReadForTimeouts = true;
        this.readAnswers();
        queueMicrotask(() => (this.answersReadForTimeouts = false));
      }
      const { result, error } = timeoutResult(performance.now() - this.started[slot]!, this.timeouts[slot]!);
      this.finish(slot, result, error);
    }
    this.free[this.freeCount++] = slot;
  }

  private finish(slot: number, result: ProbeResult, error: string | undefined): void {
    const resolve = this.resolvers[slot];
    if (!resolve) return;
    this.resolvers[slot] = undefined;
    this.inFlight -= 1;
    this.forget(slot);
    const canceller = this.cancellers[slot];
    if (canceller) {
      canceller.delete(this.cancels[slot]!);
      this.cancellers[slot] = undefined;
      this.cancels[slot] = undefined;
    }
    const outcome: ProbeOutcome = { protocol: 'tcp', result, durationMs: performance.now() - this.started[slot]! };
    if (error !== undefined) outcome.error = error;
    resolve(outcome);
    if (this.idle && this.inFlight === 0) this.closeNow();
  }

  /** Takes a settled probe's slot out of its key's list. */
  private forget(slot: number): void {
    const shortKey = this.keys[slot]! & 0x7fffffff;
    const head = this.pending.get(shortKey)!;
    if (head === slot) {
      if (this.next[slot] === NONE) this.pending.delete(shortKey);
      else this.pending.set(shortKey, this.next[slot]!);
      return;
    }
    let before = head;
    while (this.next[before] !== slot) before = this.next[before]!;
    this.next[before] = this.next[slot]!;
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
