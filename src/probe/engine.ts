import pLimit, { type LimitFunction } from 'p-limit';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { StartupError } from '../startup.js';
import { parseAllowList } from './address.js';
import { nextDelayMs } from './hysteresis.js';
import { IcmpPinger } from './icmp.js';
import { ProbeMetrics } from './metrics.js';
import { resolveProbeOptions, type ProbeEngineOptions } from './options.js';
import { answersProbe, verdictOfOutcomes, type ProbeOutcome, type ProbeResult, type Protocol, type ProbeVerdict } from './outcome.js';
import { ProbeResults, type ReachabilityChange } from './results.js';
import { ProbeRounds } from './rounds.js';
import { ProbeScheduler } from './schedule.js';
import { ProbeCanceller, tcpConnectAnyPort } from './tcp.js';
import { TcpProbeThreads } from './tcp-threads.js';
import { TargetSet, type TargetSetDiff } from './target-set.js';
import type { TargetProbeState, TargetStatus } from './target-state.js';
import type { Target } from '../contract/target.js';

export interface IcmpProbe {
  ping(address: string, timeoutMs: number): Promise<ProbeOutcome>;
  close(): void;
}

/** The network side of the engine, replaceable in tests. */
export interface Probers {
  tcp(
    address: string,
    ports: readonly number[],
    timeoutMs: number,
    isAnswer: (result: ProbeResult) => boolean,
    canceller: ProbeCanceller,
  ): Promise<ProbeOutcome>;
  /** @throws IcmpUnavailableError when raw sockets are not permitted. */
  openIcmp(logger: Logger): IcmpProbe;
}

export const NETWORK_PROBERS: Probers = {
  tcp: tcpConnectAnyPort,
  openIcmp: (logger) => new IcmpPinger(logger),
};

export interface ProbeEngineDeps {
  logger: Logger;
  registry: Registry;
  /** Uniform in [0, 1); spreads probes over the interval. */
  random?: () => number;
  probers?: Probers;
}

/** protocolsFor's answers, made once rather than per probe. */
const TCP_ONLY: readonly Protocol[] = ['tcp'];
const ICMP_ONLY: readonly Protocol[] = ['icmp'];
const TCP_AND_ICMP: readonly Protocol[] = ['tcp', 'icmp'];
const NO_PROTOCOL: readonly Protocol[] = [];

/** Each planned delay varies by up to ±10% so that targets never fall back into step. */
const JITTER = 0.1;

/**
 * Probes a changing set of targets, planned over the interval in one scheduler, all probes through one
 * bounded pool; reports reachability changes after hysteresis.
 */
export class ProbeEngine {
  private options: ProbeEngineOptions;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly probers: Probers;
  private readonly metrics: ProbeMetrics;
  private readonly pool: LimitFunction;
  private readonly targets: TargetSet;
  private running = false;
  private readonly canceller = new ProbeCanceller();
  private readonly scheduler: ProbeScheduler<TargetProbeState>;
  /** Probes handed to the pool and not finished; the scheduler hands over no more than `concurrency`. */
  private busy = 0;
  /** Resolves stop()'s wait once `busy` drops to 0. */
  private onIdle: (() => void) | undefined;
  private icmp: IcmpProbe | undefined;
  /** Set while running with `tcpThreads` > 0; then TCP probes run there instead of `probers.tcp`. */
  private tcpThreads: TcpProbeThreads | undefined;
  /** Threads replaced by an options change, finishing the probes they have. */
  private readonly retiringThreads = new Set<TcpProbeThreads>();
  /** Why ICMP could not be opened, until stop() or an options change allows another try. */
  private icmpUnavailable: string | undefined;
  private readonly results: ProbeResults;
  private readonly rounds: ProbeRounds;

  /** @throws TypeError naming a bad option. */
  constructor(options: Partial<ProbeEngineOptions>, deps: ProbeEngineDeps) {
    this.options = resolveProbeOptions(options);
    this.logger = deps.logger.child({ subsystem: 'probe' });
    this.random = deps.random ?? Math.random;
    this.probers = deps.probers ?? NETWORK_PROBERS;
    this.pool = pLimit(this.options.concurrency);
    this.scheduler = new ProbeScheduler<TargetProbeState>({ hasRoom: () => this.busy < this.options.concurrency, run: this.launch });
    this.metrics = new ProbeMetrics(deps.registry, {
      targets: () => this.targets.size,
      unreachable: () => this.results.unreachable,
    });
    this.results = new ProbeResults(this.logger, this.metrics, this.options.perTargetMetrics);
    this.rounds = new ProbeRounds((durationMs) => this.metrics.roundCompleted(durationMs));
    this.targets = new TargetSet(parseAllowList(this.options.allowCidrs), {
      refused: (address, reason) => {
        this.logger.warn({ address, reason }, 'target refused by the allow-list; it will not be probed');
        this.metrics.refusedTargets.inc();
      },
      added: (state) => {
        this.rounds.added(state);
        if (this.running) this.scheduleFirstProbe(state);
      },
      removed: (state) => {
        this.scheduler.remove(state);
        this.rounds.removed(state);
        this.results.removed(state);
      },
    });
  }

  /** Replaces the target set; unchanged targets keep their state and planned probe, removed ones lose state and metric series. */
  setTargets(targets: readonly Target[]): TargetSetDiff {
    return this.targets.set(targets);
  }

  /** Applies new options (missing fields take their defaults) without losing target state. */
  updateOptions(options: Partial<ProbeEngineOptions>): void {
    const next = resolveProbeOptions(options);
    const allowList = parseAllowList(next.allowCidrs);
    const previous = this.options;
    this.options = next;
    this.targets.allowList = allowList;
    this.pool.concurrency = next.concurrency;
    if (next.mode !== previous.mode || next.icmpUnavailable !== previous.icmpUnavailable) {
      this.closeIcmp();
      if (this.running && next.mode !== 'tcp') {
        try {
          this.openIcmpForMode();
        } catch (err) {
          this.options = previous;
          throw err;
        }
      }
    }
    if (this.running && next.tcpThreads !== previous.tcpThreads) this.openTcpThreads();
    this.results.setPerTargetMetrics(next.perTargetMetrics, this.targets);
    this.targets.reapply();
    if (this.running && next.intervalMs < previous.intervalMs) {
      // Probes planned with a longer interval would otherwise delay the new cadence by one old interval.
      const now = Date.now();
      for (const state of this.targets) {
        if (state.isPlanned() && state.plannedAt - now > next.intervalMs) this.scheduleFirstProbe(state);
      }
    }
    // A larger pool can take planned probes at once.
    if (this.running) this.scheduler.drain();
  }

  /**
   * Starts probing: each target's first probe at a random point of the first interval.
   * @throws Error when ICMP is needed, unavailable, and `icmpUnavailable` is `fail`.
   */
  async start(): Promise<void> {
    if (this.running) return;
    if (this.options.mode !== 'tcp') this.openIcmpForMode();
    this.openTcpThreads();
    this.running = true;
    this.rounds.begin();
    const { intervalMs, failureThreshold, fastIntervalMs, timeoutMs } = this.options;
    // Long enough for a spread first probe plus a full confirmation, with one interval of slack for a busy pool.
    const deadlineMs = 2 * intervalMs + failureThreshold * (fastIntervalMs + timeoutMs);
    this.results.beginFirstRound(this.targets.addresses(), deadlineMs);
    for (const state of this.targets) this.scheduleFirstProbe(state);
    this.logger.info({ targets: this.targets.size, mode: this.options.mode }, 'probe engine started');
  }

  /** Stops all probing, closes every socket and session; never hangs, safe to call many times. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.scheduler.clear();
    // Queued probes never run once cleared, so they no longer count as busy.
    this.busy -= this.pool.pendingCount;
    this.pool.clearQueue();
    this.canceller.cancelAll();
    this.closeIcmp();
    const threadsClosed = Promise.all([this.tcpThreads, ...this.retiringThreads].map((threads) => threads?.close()));
    this.tcpThreads = undefined;
    this.results.endFirstRound();
    this.rounds.end();
    await threadsClosed;
    if (this.busy > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
    this.onIdle = undefined;
    this.logger.info('probe engine stopped');
  }

  /** Probes started since start and their summed lateness (ms): a monotonic pair to take rates from. */
  probeTotals(): { started: number; latenessMs: number } {
    return { ...this.metrics.totals };
  }

  snapshot(): TargetStatus[] {
    return Array.from(this.targets, (state) => state.status());
  }

  /** Calls `listener` for every change of a target's state; returns the function that unsubscribes. */
  onChange(listener: (change: ReachabilityChange) => void): () => void {
    return this.results.onChange(listener);
  }

  /**
   * Resolves once every target known at start() has a known state or could only be probed with
   * errors, or at a deadline of 2 × interval + failureThreshold × (fastInterval + timeout).
   */
  firstRoundComplete(): Promise<void> {
    return this.results.firstRoundComplete();
  }

  private scheduleFirstProbe(state: TargetProbeState): void {
    this.scheduler.plan(state, Date.now() + this.random() * this.options.intervalMs);
  }

  /** Hands a due target to the pool (the scheduler calls it only while `busy < concurrency`). */
  private readonly launch = (state: TargetProbeState): void => {
    this.busy += 1;
    void this.pool(this.turn, state);
  };

  /** One turn of a target's loop: probe, record, plan the next turn, release the slot. Never rejects. */
  private readonly turn = async (state: TargetProbeState): Promise<void> => {
    try {
      this.metrics.probeStarted(Date.now() - state.plannedAt);
      const { target } = state;
      const protocols = this.protocolsFor(target.ports.length > 0);
      let outcomes: ProbeOutcome[];
      if (protocols.length === 0) {
        const error = `no TCP port to probe and ICMP unavailable (${this.icmpUnavailable ?? 'mode tcp'})`;
        outcomes = [{ protocol: 'icmp', result: 'error', durationMs: 0, error }];
      } else {
        // One protocol (the usual case) without Promise.all and its arrays: this runs for every probe.
        outcomes = protocols.length === 1 ? [await this.probeWith(protocols[0]!, target)] : await Promise.all(protocols.map((protocol) => this.probeWith(protocol, target)));
        // A probe cut short by stop() is no result: neither counted nor recorded.
        if (!this.running) return;
        for (const outcome of outcomes) this.metrics.probe(outcome.protocol, outcome.result, outcome.durationMs);
      }
      const verdict = verdictOfOutcomes(outcomes, this.options.refusedIsReachable);
      if (this.running && !state.stopped) this.record(state, verdict, outcomes);
    } catch (err) {
      // A throwing listener is caught in emit(); anything else here is a bug that must not stop the engine.
      this.logger.error({ err, address: state.target.address }, 'recording a probe failed');
    } finally {
      this.busy -= 1;
      if (this.busy === 0) this.onIdle?.();
      if (this.running) this.scheduler.drain();
    }
  };

  private async probeWith(protocol: Protocol, { address, ports }: Target): Promise<ProbeOutcome> {
    const { timeoutMs, refusedIsReachable } = this.options;
    try {
      if (protocol === 'tcp') {
        if (this.tcpThreads) return await this.tcpThreads.probe(address, ports, timeoutMs, refusedIsReachable);
        return await this.probers.tcp(address, ports, timeoutMs, answersProbe(refusedIsReachable), this.canceller);
      }
      return await this.icmp!.ping(address, timeoutMs);
    } catch (err) {
      // A bug in a prober must cost one probe, not the target's loop.
      this.logger.error({ err, address, protocol }, 'prober threw; counted as a probe error');
      return { protocol, result: 'error', durationMs: 0, error: String(err) };
    }
  }

  /** Which probers apply to a target; ICMP stands in for TCP when the target has no port. */
  private protocolsFor(hasPorts: boolean): readonly Protocol[] {
    const { mode } = this.options;
    const wantsIcmp = mode !== 'tcp' || !hasPorts;
    const icmp = wantsIcmp ? this.lazyIcmp() !== undefined : false;
    const tcp = hasPorts && (mode !== 'icmp' || !icmp);
    return tcp ? (icmp ? TCP_AND_ICMP : TCP_ONLY) : icmp ? ICMP_ONLY : NO_PROTOCOL;
  }

  private record(state: TargetProbeState, verdict: ProbeVerdict, outcomes: readonly ProbeOutcome[]): void {
    const now = Date.now();
    this.rounds.probed(state);
    const previous = state.record(verdict, outcomes, now, this.options);
    this.results.recorded(state, previous, verdict);
    const delayMs = nextDelayMs(state.health, verdict, this.options);
    this.scheduler.plan(state, now + delayMs * (1 + JITTER * (2 * this.random() - 1)));
  }

  /** (Re)starts the TCP probe threads for `tcpThreads`; old threads finish their probes first. */
  private openTcpThreads(): void {
    const old = this.tcpThreads;
    if (old) {
      this.retiringThreads.add(old);
      void old.closeWhenIdle().then(() => this.retiringThreads.delete(old));
    }
    const count = this.options.tcpThreads;
    this.tcpThreads = count > 0 ? new TcpProbeThreads(count, this.logger) : undefined;
  }

  /** Opens ICMP for mode icmp/both; falls back to TCP with a clear log line, or throws in `fail` mode. */
  private openIcmpForMode(): void {
    if (this.lazyIcmp()) return;
    const reason = this.icmpUnavailable;
    if (this.options.icmpUnavailable === 'fail') {
      throw new StartupError(
        `probe.mode ${this.options.mode} needs ICMP, which is unavailable here (${reason}), and probe.icmpUnavailable is fail`,
        'give the agent container the NET_RAW capability and run node-net-raw as deploy/eps-probe-plugin.yaml does, or set probe.icmpUnavailable: fallback-tcp or probe.mode: tcp',
      );
    }
    this.logger.error({ reason, mode: this.options.mode }, 'ICMP probing configured but unavailable; probing with TCP only, targets without a port stay unknown');
  }

  /** The ICMP prober, opened on first need; undefined (and logged once) when it cannot be opened. */
  private lazyIcmp(): IcmpProbe | undefined {
    if (this.icmp || this.icmpUnavailable !== undefined) return this.icmp;
    try {
      this.icmp = this.probers.openIcmp(this.logger);
    } catch (err) {
      this.icmpUnavailable = (err as Error).message;
      // In modes icmp and both, openIcmpForMode reports it (with what happens next).
      if (this.options.mode === 'tcp') this.logger.warn({ err }, 'ICMP unavailable; targets without a TCP port cannot be probed');
    }
    return this.icmp;
  }

  private closeIcmp(): void {
    this.icmp?.close();
    this.icmp = undefined;
    this.icmpUnavailable = undefined;
  }
}
