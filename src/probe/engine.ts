import pLimit, { type LimitFunction } from 'p-limit';
import type { Registry } from 'prom-client';
import { ReportedProblems, type Logger } from '../log.js';
import { StartupError } from '../startup.js';
import { parseAllowList, type AllowList } from './address.js';
import { canonicalAddress } from '../contract/addresses.js';
import { nextDelayMs, observe, type Reachability } from './hysteresis.js';
import { IcmpPinger } from './icmp.js';
import { ProbeMetrics } from './metrics.js';
import { resolveProbeOptions, type ProbeEngineOptions } from './options.js';
import { answeredRttMs, answersProbe, verdictOfOutcomes, type ProbeOutcome, type ProbeResult, type Protocol, type ProbeVerdict } from './outcome.js';
import { ProbeRounds } from './rounds.js';
import { ProbeScheduler } from './schedule.js';
import { ProbeCanceller, tcpConnectAnyPort } from './tcp.js';
import { TcpProbeThreads } from './tcp-threads.js';
import { HalfOpenProber, openHalfOpen, type HalfOpenProbe } from './syn.js';
import { TargetProbeState } from './target-state.js';
import type { Target } from '../contract/target.js';

export interface ReachabilityChange {
  address: string;
  owners: string[];
  previous: Reachability;
  current: Reachability;
}

export interface TargetStatus {
  address: string;
  owners: string[];
  ports: number[];
  state: Reachability;
  /** Wall-clock time (ms since epoch) the last probe finished. */
  lastProbeAt?: number;
  /** Why the last probe did not succeed. */
  lastError?: string;
  /** How long the last probe took to be answered, when it was. */
  lastRttMs?: number;
}

export interface TargetSetDiff {
  added: number;
  removed: number;
  /** Targets whose ports or owners changed; they keep their state and timer. */
  changed: number;
  /** Addresses refused by the allow-list (as given). */
  refused: string[];
}

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
  /** For `tcpProbe: half-open`; @throws HalfOpenUnavailableError when raw sockets are not permitted. Without it, connect() probes. */
  openHalfOpen?(): HalfOpenProbe;
}

export const NETWORK_PROBERS: Probers = {
  tcp: tcpConnectAnyPort,
  openIcmp: (logger) => new IcmpPinger(logger),
  openHalfOpen: () => new HalfOpenProber(),
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
  private allowList: AllowList;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly probers: Probers;
  private readonly metrics: ProbeMetrics;
  private readonly pool: LimitFunction;
  private readonly workers = new Map<string, TargetProbeState>();
  /** Targets whose state is `unreachable`, kept on every change rather than counted at scrape time. */
  private unreachable = 0;
  private readonly listeners = new Set<(change: ReachabilityChange) => void>();
  /**
   * Last input of setTargets, re-applied when the allow-list changes: the normalised accepted targets
   * and the refused ones as given (holding the caller's objects would double the memory per target).
   */
  private desired: Target[] = [];
  /** Refused addresses: one line per address while it stays in the target set. */
  private readonly refusedLogged = new ReportedProblems<string>();
  private running = false;
  private readonly canceller = new ProbeCanceller();
  private readonly scheduler: ProbeScheduler<TargetProbeState>;
  /** Probes handed to the pool and not finished; the scheduler hands over no more than `concurrency`. */
  private busy = 0;
  /** Resolves stop()'s wait once `busy` drops to 0. */
  private onIdle: (() => void) | undefined;
  private icmp: IcmpProbe | undefined;
  /** Open while running with `tcpProbe: half-open` where raw sockets are permitted; TCP probes then go there. */
  private halfOpen: HalfOpenProbe | undefined;
  /** Set while running with `tcpThreads` > 0; then TCP probes run there instead of `probers.tcp`. */
  private tcpThreads: TcpProbeThreads | undefined;
  /** Threads replaced by an options change, finishing the probes they have. */
  private readonly retiringThreads = new Set<TcpProbeThreads>();
  /** Why ICMP could not be opened, until stop() or an options change allows another try. */
  private icmpUnavailable: string | undefined;
  private firstRound = new FirstRound();
  private readonly rounds: ProbeRounds;

  /** @throws TypeError naming a bad option. */
  constructor(options: Partial<ProbeEngineOptions>, deps: ProbeEngineDeps) {
    this.options = resolveProbeOptions(options);
    this.allowList = parseAllowList(this.options.allowCidrs);
    this.logger = deps.logger.child({ subsystem: 'probe' });
    this.random = deps.random ?? Math.random;
    this.probers = deps.probers ?? NETWORK_PROBERS;
    this.pool = pLimit(this.options.concurrency);
    this.scheduler = new ProbeScheduler<TargetProbeState>({ hasRoom: () => this.busy < this.options.concurrency, run: this.launch });
    this.metrics = new ProbeMetrics(deps.registry, {
      targets: () => this.workers.size,
      unreachable: () => this.unreachable,
    });
    this.rounds = new ProbeRounds((durationMs) => this.metrics.roundCompleted(durationMs));
  }

  /** Replaces the target set; unchanged targets keep their state and planned probe, removed ones lose state and metric series. */
  setTargets(targets: readonly Target[]): TargetSetDiff {
    const { accepted, refused, refusedTargets } = this.admit(targets);
    this.desired = [...accepted.values(), ...refusedTargets];
    let removed = 0;
    let changed = 0;
    for (const [address, worker] of this.workers) {
      const next = accepted.get(address);
      if (!next) {
        this.removeWorker(worker);
        removed += 1;
      } else if (!sameTarget(worker.target, next)) {
        worker.target = next;
        changed += 1;
      }
    }
    let added = 0;
    for (const [address, target] of accepted) {
      if (this.workers.has(address)) continue;
      const worker = new TargetProbeState(target);
      this.workers.set(address, worker);
      this.rounds.added(worker);
      if (this.running) this.scheduleFirstProbe(worker);
      added += 1;
    }
    return { added, removed, changed, refused };
  }

  /** Applies new options (missing fields take their defaults) without losing target state. */
  updateOptions(options: Partial<ProbeEngineOptions>): void {
    const next = resolveProbeOptions(options);
    const allowList = parseAllowList(next.allowCidrs);
    const previous = this.options;
    this.options = next;
    this.allowList = allowList;
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
    if (next.tcpProbe !== previous.tcpProbe || next.halfOpenUnavailable !== previous.halfOpenUnavailable) {
      this.halfOpen?.close();
      this.halfOpen = undefined;
      if (this.running) {
        try {
          this.openHalfOpen();
        } catch (err) {
          this.options = previous;
          throw err;
        }
      }
    }
    if (previous.perTargetMetrics && !next.perTargetMetrics) this.metrics.clearTargets();
    if (!previous.perTargetMetrics && next.perTargetMetrics) {
      for (const worker of this.workers.values()) this.exportTargetState(worker);
    }
    this.setTargets(this.desired);
    if (this.running && next.intervalMs < previous.intervalMs) {
      // Probes planned with a longer interval would otherwise delay the new cadence by one old interval.
      const now = Date.now();
      for (const worker of this.workers.values()) {
        if (worker.isPlanned() && worker.plannedAt - now > next.intervalMs) this.scheduleFirstProbe(worker);
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
    this.openHalfOpen();
    this.openTcpThreads();
    this.running = true;
    this.rounds.begin();
    const { intervalMs, failureThreshold, fastIntervalMs, timeoutMs } = this.options;
    // Long enough for a spread first probe plus a full confirmation, with one interval of slack for a busy pool.
    const deadlineMs = 2 * intervalMs + failureThreshold * (fastIntervalMs + timeoutMs);
    this.firstRound.begin(this.workers.keys(), deadlineMs, (pending) =>
      this.logger.warn({ pending, deadlineMs }, 'first probe round incomplete at its deadline; those targets stay unknown'),
    );
    for (const worker of this.workers.values()) this.scheduleFirstProbe(worker);
    this.logger.info({ targets: this.workers.size, mode: this.options.mode }, 'probe engine started');
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
    this.halfOpen?.close();
    this.halfOpen = undefined;
    const threadsClosed = Promise.all([this.tcpThreads, ...this.retiringThreads].map((threads) => threads?.close()));
    this.tcpThreads = undefined;
    this.firstRound.end();
    this.firstRound = new FirstRound();
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
    const statuses: TargetStatus[] = [];
    for (const worker of this.workers.values()) {
      const status: TargetStatus = {
        address: worker.target.address,
        owners: worker.target.owners,
        ports: worker.target.ports,
        state: worker.health.state,
      };
      if (worker.lastProbeAt !== undefined) status.lastProbeAt = worker.lastProbeAt;
      if (worker.lastError !== undefined) status.lastError = worker.lastError;
      if (worker.lastRttMs !== undefined) status.lastRttMs = worker.lastRttMs;
      statuses.push(status);
    }
    return statuses;
  }

  /** Calls `listener` for every change of a target's state; returns the function that unsubscribes. */
  onChange(listener: (change: ReachabilityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves once every target known at start() has a known state or could only be probed with
   * errors, or at a deadline of 2 × interval + failureThreshold × (fastInterval + timeout).
   */
  firstRoundComplete(): Promise<void> {
    return this.firstRound.done;
  }

  private admit(targets: readonly Target[]): { accepted: Map<string, Target>; refused: string[]; refusedTargets: Target[] } {
    const accepted = new Map<string, Target>();
    const refused: string[] = [];
    const refusedTargets: Target[] = [];
    const ports = new ListInterner<number>((a, b) => a - b);
    const owners = new ListInterner<string>();
    for (const target of targets) {
      const address = canonicalAddress(target.address);
      const decision = address === undefined ? { allowed: false as const, reason: 'not an IP address' } : this.allowList.check(address);
      if (!decision.allowed || address === undefined) {
        refused.push(target.address);
        refusedTargets.push(target);
        if (this.refusedLogged.isNew(target.address)) {
          this.logger.warn({ address: target.address, reason: decision.allowed ? '' : decision.reason }, 'target refused by the allow-list; it will not be probed');
          this.metrics.refusedTargets.inc();
        }
        continue;
      }
      const existing = accepted.get(address);
      accepted.set(address, {
        address,
        ports: ports.get(existing ? [...existing.ports, ...target.ports] : target.ports),
        owners: owners.get(existing ? [...existing.owners, ...target.owners] : target.owners),
      });
    }
    this.refusedLogged.endPass();
    return { accepted, refused, refusedTargets };
  }

  private removeWorker(worker: TargetProbeState): void {
    const { address } = worker.target;
    worker.stopped = true;
    this.scheduler.remove(worker);
    this.workers.delete(address);
    this.rounds.removed(worker);
    if (worker.health.state === 'unreachable') this.unreachable -= 1;
    this.metrics.deleteTarget(address);
    this.firstRound.settle(address);
  }

  private scheduleFirstProbe(worker: TargetProbeState): void {
    this.scheduler.plan(worker, Date.now() + this.random() * this.options.intervalMs);
  }

  /** Hands a due target to the pool (the scheduler calls it only while `busy < concurrency`). */
  private readonly launch = (worker: TargetProbeState): void => {
    this.busy += 1;
    void this.pool(this.turn, worker);
  };

  /** One turn of a target's loop: probe, record, plan the next turn, release the slot. Never rejects. */
  private readonly turn = async (worker: TargetProbeState): Promise<void> => {
    try {
      this.metrics.probeStarted(Date.now() - worker.plannedAt);
      const { target } = worker;
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
      if (this.running && !worker.stopped) this.record(worker, verdict, outcomes);
    } catch (err) {
      // A throwing listener is caught in emit(); anything else here is a bug that must not stop the engine.
      this.logger.error({ err, address: worker.target.address }, 'recording a probe failed');
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
        if (this.halfOpen) return await this.halfOpen.probe(address, ports, timeoutMs, answersProbe(refusedIsReachable));
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

  private record(worker: TargetProbeState, verdict: ProbeVerdict, outcomes: readonly ProbeOutcome[]): void {
    const { address } = worker.target;
    const now = Date.now();
    this.rounds.probed(worker);
    worker.lastProbeAt = now;
    worker.lastError =
      verdict === 'success'
        ? undefined
        : outcomes.map((o) => `${o.protocol} ${o.result}${o.error === undefined ? '' : `: ${o.error}`}`).join('; ');
    worker.lastRttMs = verdict === 'success' ? answeredRttMs(outcomes, this.options.refusedIsReachable) : undefined;
    const previous = worker.health.state;
    worker.health = observe(worker.health, verdict, this.options);
    const current = worker.health.state;
    // Changes only: the kubelet's results cache, kept on the target itself.
    if (current !== previous) {
      this.unreachable += Number(current === 'unreachable') - Number(previous === 'unreachable');
      this.exportTargetState(worker);
      this.emit({ address, owners: worker.target.owners, previous, current });
    }
    if (worker.health.state !== 'unknown' || verdict === 'error') this.firstRound.settle(address);
    const delayMs = nextDelayMs(worker.health, verdict, this.options);
    this.scheduler.plan(worker, now + delayMs * (1 + JITTER * (2 * this.random() - 1)));
  }

  private emit(change: ReachabilityChange): void {
    this.logger.info(change, 'target reachability changed');
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.logger.error({ err, address: change.address }, 'reachability listener threw');
      }
    }
  }

  private exportTargetState(worker: TargetProbeState): void {
    const { state } = worker.health;
    if (this.options.perTargetMetrics && state !== 'unknown') this.metrics.setTargetReachable(worker.target.address, state === 'reachable');
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

  private openHalfOpen(): void {
    if (this.options.tcpProbe === 'half-open') this.halfOpen = openHalfOpen(this.probers.openHalfOpen, this.options.halfOpenUnavailable, this.logger);
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

/** Tracks the targets of the first round after start(). */
class FirstRound {
  readonly done: Promise<void>;
  private resolve!: () => void;
  private pending = new Set<string>();
  private deadline: NodeJS.Timeout | undefined;

  constructor() {
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  begin(addresses: Iterable<string>, deadlineMs: number, onDeadline: (pending: number) => void): void {
    this.pending = new Set(addresses);
    this.deadline = setTimeout(() => {
      onDeadline(this.pending.size);
      this.end();
    }, deadlineMs);
    if (this.pending.size === 0) this.end();
  }

  settle(address: string): void {
    if (this.pending.delete(address) && this.pending.size === 0) this.end();
  }

  end(): void {
    clearTimeout(this.deadline);
    this.pending.clear();
    this.resolve();
  }
}

/**
 * Sorted unique lists, one frozen array per distinct list: the endpoints of a service share their
 * ports and owners, so 100k targets hold a handful of arrays instead of 200k.
 */
class ListInterner<T> {
  private readonly lists = new Map<string, T[]>();

  constructor(private readonly compare?: (a: T, b: T) => number) {}

  get(values: readonly T[]): T[] {
    // Ports are numbers and owners "namespace/name": neither contains a newline.
    const key = values.join('\n');
    let list = this.lists.get(key);
    if (!list) {
      list = Object.freeze([...new Set(values)].sort(this.compare)) as T[];
      this.lists.set(key, list);
    }
    return list;
  }
}

function sameTarget(a: Target, b: Target): boolean {
  return a.ports.join() === b.ports.join() && a.owners.join('\n') === b.owners.join('\n');
}
