import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type ProbeOutcome, type ProbeResult, strongestResult, timeoutResult } from './outcome.js';

/** errno codes that describe this host (out of fds, buffers, ports, or forbidden by local policy), not the target. */
const LOCAL_ERROR_CODES = new Set([
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
  'EAGAIN',
  'EPERM',
  'EACCES',
  'EINVAL',
  'ABORT_ERR',
]);

/** What a connect() error code says about the target; the half-open prober reads its send and ICMP errors the same way. */
export function resultOfConnectError(code: string): ProbeResult {
  // Both mean a RST came back: refused before the handshake completed, reset just after it.
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET') return 'refused';
  return LOCAL_ERROR_CODES.has(code) ? 'error' : 'failure';
}

/**
 * Cancels the probes in flight at once (on engine stop), and tells when none is left (a replaced
 * transport finishing its probes). A Set of callbacks rather than an
 * AbortSignal: EventTarget listeners cost O(listeners) per add, which dominated the CPU profile at
 * thousands of probes in flight.
 */
export class ProbeCanceller {
  private readonly cancels = new Set<() => void>();
  /** Set by whenEmpty() while probes are in flight: resolves `empty` once the last one is deleted. */
  private onEmpty: (() => void) | undefined;
  private empty: Promise<void> | undefined;

  add(cancel: () => void): void {
    this.cancels.add(cancel);
  }

  delete(cancel: () => void): void {
    this.cancels.delete(cancel);
    if (this.onEmpty && this.cancels.size === 0) this.emptied();
  }

  cancelAll(): void {
    for (const cancel of [...this.cancels]) cancel();
    this.cancels.clear();
    if (this.onEmpty) this.emptied();
  }

  /** Resolves once no probe is in flight (at once when none is). */
  whenEmpty(): Promise<void> {
    if (this.cancels.size === 0) return Promise.resolve();
    this.empty ??= new Promise((resolve) => (this.onEmpty = resolve));
    return this.empty;
  }

  private emptied(): void {
    const onEmpty = this.onEmpty!;
    this.onEmpty = undefined;
    this.empty = undefined;
    onEmpty();
  }
}

/**
 * Opens one TCP connection to `address:port` and closes it at once. The socket is always destroyed;
 * after a successful connect it is reset (RST) rather than closed, so no TIME_WAIT entry is left behind
 * (at 10k probes/s TIME_WAIT would exhaust the ephemeral ports).
 */
export function tcpConnect(address: string, port: number, timeoutMs: number, canceller?: ProbeCanceller): Promise<ProbeOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = new Socket();
    let settled = false;
    const finish = (result: ProbeResult, error?: string): void => {
      if (settled) return;
      settled = true;
      canceller?.delete(onCancel);
      if (result === 'success') socket.resetAndDestroy();
      else socket.destroy();
      const outcome: ProbeOutcome = { protocol: 'tcp', result, durationMs: performance.now() - started };
      if (error !== undefined) outcome.error = error;
      resolve(outcome);
    };
    const onCancel = (): void => finish('error', 'ABORT_ERR');
    canceller?.add(onCancel);
    socket.setTimeout(timeoutMs, () => {
      // Node runs due timers before it polls sockets: after the event loop was busy, an answer may
      // already wait in the kernel while this timer fires. Deciding after this turn's poll phase
      // (setImmediate) lets that answer win instead of a false timeout.
      setImmediate(() => {
        const { result, error } = timeoutResult(performance.now() - started, timeoutMs);
        finish(result, error);
      });
    });
    socket.once('connect', () => finish('success'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      finish(resultOfConnectError(code), code);
    });
    try {
      socket.connect({ host: address, port });
    } catch (err) {
      finish('error', (err as NodeJS.ErrnoException).code ?? String(err));
    }
  });
}

/** Probes one port of a target: tcpConnect, or the half-open prober's. */
export type PortProber = (address: string, port: number, timeoutMs: number, canceller?: ProbeCanceller) => Promise<ProbeOutcome>;

/** Probes every port of a target at once with `probePort`; the target answers if any port does (see tcpConnectAnyPort). */
export function probeAnyPort(
  probePort: PortProber,
  address: string,
  ports: readonly number[],
  timeoutMs: number,
  isAnswer: (result: ProbeResult) => boolean,
  canceller?: ProbeCanceller,
): Promise<ProbeOutcome> {
  // Not async: one port is the usual case, and an async wrapper would cost a promise per probe.
  if (ports.length === 1) return probePort(address, ports[0]!, timeoutMs, canceller);
  return probePorts(probePort, address, ports, timeoutMs, isAnswer, canceller);
}

/**
 * Connects to every port of a target at once; the target answers if any port does. Once a port gives
 * an answer that settles the probe, the other connections are abandoned.
 */
export const tcpConnectAnyPort = probeAnyPort.bind(undefined, tcpConnect);

async function probePorts(
  probePort: PortProber,
  address: string,
  ports: readonly number[],
  timeoutMs: number,
  isAnswer: (result: ProbeResult) => boolean,
  canceller?: ProbeCanceller,
): Promise<ProbeOutcome> {
  const started = performance.now();
  const siblings = new ProbeCanceller();
  const cancelSiblings = (): void => siblings.cancelAll();
  canceller?.add(cancelSiblings);
  const outcomes = await Promise.all(
    ports.map(async (port) => {
      const outcome = await probePort(address, port, timeoutMs, siblings);
      if (isAnswer(outcome.result)) siblings.cancelAll();
      return outcome;
    }),
  );
  canceller?.delete(cancelSiblings);
  const result = strongestResult(outcomes.map((outcome) => outcome.result));
  const outcome: ProbeOutcome = { protocol: 'tcp', result, durationMs: performance.now() - started };
  const error = outcomes.find((candidate) => candidate.result === result)?.error;
  if (error !== undefined) outcome.error = error;
  return outcome;
}
