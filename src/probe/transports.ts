import type { Target } from '../contract/target.js';
import type { Logger } from '../log.js';
import { StartupError } from '../startup.js';
import { IcmpPinger } from './icmp.js';
import { HalfOpenProber, openHalfOpen } from './syn.js';
import type { ProbeEngineOptions } from './options.js';
import { answersProbe, type ProbeOutcome, type Protocol } from './outcome.js';
import { ProbeCanceller, tcpConnectAnyPort } from './tcp.js';
import { TcpProbeThreads } from './tcp-threads.js';

/** One way of running TCP probes. The engine holds one at a time and calls no probe() after a close. */
export interface TcpTransport {
  /** Same contract as tcpConnectAnyPort: the target answers if any port does. */
  probe(address: string, ports: readonly number[], timeoutMs: number, refusedIsReachable: boolean): Promise<ProbeOutcome>;
  /** Ends the probes in flight at once (as errors) and releases everything: the engine stops. */
  close(): Promise<void>;
  /** Resolves once the probes in flight are answered and everything is released: an options change replaced it. */
  closeWhenIdle(): Promise<void>;
}

export interface IcmpTransport {
  ping(address: string, timeoutMs: number): Promise<ProbeOutcome>;
  close(): void;
}

/** The options that choose the TCP transport: when one of them changes, a new transport replaces the old. */
export const TCP_TRANSPORT_OPTIONS = ['tcpThreads', 'tcpProbe', 'halfOpenUnavailable'] as const satisfies readonly (keyof ProbeEngineOptions)[];

/** The network side of the engine: it opens every transport through this, whatever the options, so tests can replace it. */
export interface Transports {
  /** TCP connect(), on the main thread or in `tcpThreads` probe threads. */
  openTcp(options: Pick<ProbeEngineOptions, (typeof TCP_TRANSPORT_OPTIONS)[number]>, logger: Logger): TcpTransport;
  /** Half-open TCP probes (`tcpProbe: half-open`). @throws HalfOpenUnavailableError when raw sockets are not permitted. */
  openHalfOpen(logger: Logger): TcpTransport;
  /** @throws IcmpUnavailableError when raw sockets are not permitted. */
  openIcmp(logger: Logger): IcmpTransport;
}

/** TCP connects on the main thread. */
export class MainThreadTcp implements TcpTransport {
  private readonly canceller = new ProbeCanceller();

  probe(address: string, ports: readonly number[], timeoutMs: number, refusedIsReachable: boolean): Promise<ProbeOutcome> {
    return tcpConnectAnyPort(address, ports, timeoutMs, answersProbe(refusedIsReachable), this.canceller);
  }

  async close(): Promise<void> {
    this.canceller.cancelAll();
  }

  closeWhenIdle(): Promise<void> {
    return this.canceller.whenEmpty();
  }
}

export const NETWORK_TRANSPORTS: Transports = {
  openTcp: ({ tcpThreads }, logger) => (tcpThreads > 0 ? new TcpProbeThreads(tcpThreads, logger) : new MainThreadTcp()),
  openHalfOpen: () => new HalfOpenProber(),
  openIcmp: (logger) => new IcmpPinger(logger),
};

/** protocolsFor's answers, made once rather than per probe. */
const TCP_ONLY: readonly Protocol[] = ['tcp'];
const ICMP_ONLY: readonly Protocol[] = ['icmp'];
const TCP_AND_ICMP: readonly Protocol[] = ['tcp', 'icmp'];
const NO_PROTOCOL: readonly Protocol[] = [];

/**
 * Runs a target's probe over the transports its mode and ports call for (the kubelet's prober), and
 * keeps them open: the TCP transport from open() until close() or a change of the options that choose
 * it, ICMP from its first need until close() or a change of mode.
 */
export class Prober {
  private tcp: TcpTransport | undefined;
  /** TCP transports replaced by an options change, finishing the probes they have. */
  private readonly retiring = new Set<TcpTransport>();
  private icmp: IcmpTransport | undefined;
  /** Why ICMP could not be opened, until close() or an options change allows another try. */
  private icmpUnavailable: string | undefined;

  constructor(
    private readonly transports: Transports,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens what probing with `options` needs (at start).
   * @throws StartupError when ICMP or half-open TCP is needed, unavailable, and its `…Unavailable` option is `fail`.
   */
  open(options: ProbeEngineOptions): void {
    if (options.mode !== 'tcp') this.openIcmpForMode(options);
    this.openTcp(options);
  }

  /**
   * Follows an options change; while not running it only forgets ICMP (open() comes at start).
   * @throws StartupError as open() does, before the TCP transport is touched.
   */
  update(previous: ProbeEngineOptions, next: ProbeEngineOptions, running: boolean): void {
    if (next.mode !== previous.mode || next.icmpUnavailable !== previous.icmpUnavailable) {
      this.closeIcmp();
      if (running && next.mode !== 'tcp') this.openIcmpForMode(next);
    }
    if (running && TCP_TRANSPORT_OPTIONS.some((name) => next[name] !== previous[name])) this.openTcp(next);
  }

  /** Closes every transport (at stop); probes in flight end at once. */
  async close(): Promise<void> {
    const closed = Promise.all([this.tcp, ...this.retiring].map((transport) => transport?.close()));
    this.tcp = undefined;
    this.closeIcmp();
    await closed;
  }

  /** Which protocols apply to a target now; ICMP stands in for TCP when the target has no port. */
  protocolsFor(hasPorts: boolean, { mode }: ProbeEngineOptions): readonly Protocol[] {
    const wantsIcmp = mode !== 'tcp' || !hasPorts;
    const icmp = wantsIcmp ? this.lazyIcmp(mode) !== undefined : false;
    const tcp = hasPorts && (mode !== 'icmp' || !icmp);
    return tcp ? (icmp ? TCP_AND_ICMP : TCP_ONLY) : icmp ? ICMP_ONLY : NO_PROTOCOL;
  }

  /** The outcome of a target that no protocol can probe (protocolsFor gave none). */
  unprobeable(): ProbeOutcome {
    const error = `no TCP port to probe and ICMP unavailable (${this.icmpUnavailable ?? 'mode tcp'})`;
    return { protocol: 'icmp', result: 'error', durationMs: 0, error };
  }

  /** Probes `target` with one of the protocols protocolsFor gave; never rejects. */
  async probe(protocol: Protocol, target: Target, options: ProbeEngineOptions): Promise<ProbeOutcome> {
    try {
      return await this.start(protocol, target, options);
    } catch (err) {
      return this.threw(err, protocol, target.address);
    }
  }

  /**
   * probe() without its own async frame, for a caller that awaits it in one of its own: the promise
   * rejects where a transport throws or rejects, and the caller hands that to threw().
   */
  start(protocol: Protocol, { address, ports }: Target, { timeoutMs, refusedIsReachable }: ProbeEngineOptions): Promise<ProbeOutcome> {
    try {
      if (protocol === 'tcp') return this.tcp!.probe(address, ports, timeoutMs, refusedIsReachable);
      return this.icmp!.ping(address, timeoutMs);
    } catch (err) {
      // A rejection rather than a throw: the caller's await then always yields, so its turn never ends inside the scheduler's drain().
      return Promise.reject(err as Error);
    }
  }

  /** The outcome of a probe whose transport threw or rejected: a bug in a transport must cost one probe, not the target's loop. */
  threw(err: unknown, protocol: Protocol, address: string): ProbeOutcome {
    this.logger.error({ err, address, protocol }, 'prober threw; counted as a probe error');
    return { protocol, result: 'error', durationMs: 0, error: String(err) };
  }

  /**
   * Opens a TCP transport for `options`: half-open where asked for and possible, else connect(). The
   * one it replaces finishes its probes first.
   * @throws StartupError when half-open is asked for, unavailable, and `halfOpenUnavailable` is `fail`.
   */
  private openTcp(options: ProbeEngineOptions): void {
    const halfOpen = options.tcpProbe === 'half-open' ? openHalfOpen(() => this.transports.openHalfOpen(this.logger), options.halfOpenUnavailable, this.logger) : undefined;
    const old = this.tcp;
    this.tcp = halfOpen ?? this.transports.openTcp(options, this.logger);
    if (old) {
      this.retiring.add(old);
      void old.closeWhenIdle().then(() => this.retiring.delete(old));
    }
  }

  /** Opens ICMP for mode icmp/both; falls back to TCP with a clear log line, or throws in `fail` mode. */
  private openIcmpForMode({ mode, icmpUnavailable }: ProbeEngineOptions): void {
    if (this.lazyIcmp(mode)) return;
    const reason = this.icmpUnavailable;
    if (icmpUnavailable === 'fail') {
      throw new StartupError(
        `probe.mode ${mode} needs ICMP, which is unavailable here (${reason}), and probe.icmpUnavailable is fail`,
        'give the agent container the NET_RAW capability and run node-net-raw as deploy/eps-probe-plugin.yaml does, or set probe.icmpUnavailable: fallback-tcp or probe.mode: tcp',
      );
    }
    this.logger.error({ reason, mode }, 'ICMP probing configured but unavailable; probing with TCP only, targets without a port stay unknown');
  }

  /** The ICMP transport, opened on first need; undefined (and logged once) when it cannot be opened. */
  private lazyIcmp(mode: ProbeEngineOptions['mode']): IcmpTransport | undefined {
    if (this.icmp || this.icmpUnavailable !== undefined) return this.icmp;
    try {
      this.icmp = this.transports.openIcmp(this.logger);
    } catch (err) {
      this.icmpUnavailable = (err as Error).message;
      // In modes icmp and both, openIcmpForMode reports it (with what happens next).
      if (mode === 'tcp') this.logger.warn({ err }, 'ICMP unavailable; targets without a TCP port cannot be probed');
    }
    return this.icmp;
  }

  private closeIcmp(): void {
    this.icmp?.close();
    this.icmp = undefined;
    this.icmpUnavailable = undefined;
  }
}
