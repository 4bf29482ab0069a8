import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { parseAllowList } from './address.js';
import { nextDelayMs } from './hysteresis.js';
import { ProbeMetrics } from './metrics.js';
import { resolveProbeOptions, type ProbeEngineOptions } from './options.js';
import { verdictOfOutcomes, type ProbeOutcome, type ProbeVerdict, type Protocol } from './outcome.js';
import { ProbeResults, type ReachabilityChange } from './results.js';
import { ProbeRounds } from './rounds.js';
import { ProbeScheduler } from './schedule.js';
import { TargetSet, type TargetSetDiff } from './target-set.js';
import type { TargetProbeState, TargetStatus } from './target-state.js';
import { NETWORK_TRANSPORTS, Prober, type Transports } from './transports.js';
import type { Target } from '../contract/target.js';

export interface ProbeEngineDeps {
  logger: Logger;
  registry: Registry;
  /** Uniform in [0, 1); spreads probes over the interval. */
  random?: () => number;
  transports?: Transports;
}

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
  private readonly prober: Prober;
  private readonly metrics: ProbeMetrics;
  private readonly targets: TargetSet;
  private running = false;
  /**
   * The pool's queue: a due target waits here until a slot is free. The pool itself is `busy`, a count
   * of the probes in flight, not p-limit: with the scheduler releasing a probe only into a free slot,
   * p-limit's queue stayed unused while it wrapped every probe in five promises and their microtask
   * turns, among the engine's largest per-probe costs in the CPU and allocation profiles
   * (docs/benchmarks.md, "Where the engine's own time goes").
   */
  private readonly scheduler: ProbeScheduler<TargetProbeState>;
  /** Probes in flight; the scheduler starts no more than `concurrency`. */
  private busy = 0;
  /** Resolves stop()'s wait once `busy` drops to 0. */
  private onIdle: (() => void) | undefined;
  private readonly results: ProbeResults;
  private readonly rounds: ProbeRounds;

  /** @throws TypeError naming a bad option. */
  constructor(options: Partial<ProbeEngineOptions>, deps: ProbeEngineDeps) {
    this.options = resolveProbeOptions(options);
    this.logger = deps.logger.child({ subsystem: 'probe' });
    this.random = deps.random ?? Math.random;
    this.prober = new Prober(deps.transports ?? NETWORK_TRANSPORTS, this.logger);
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
    try {
      this.prober.update(previous, next, this.running);
    } catch (err) {
      this.options = previous;
      throw err;
    }
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
    this.prober.open(this.options);
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
    const transportsClosed = this.prober.close();
    this.results.endFirstRound();
    this.rounds.end();
    await transportsClosed;
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

  /** Each target's address and last round-trip time, read in place: no copy of 100k targets for a report's RTT list. */
  rtts(): Iterable<{ readonly address: string; readonly lastRttMs?: number }> {
    return this.targets;
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

  /** Starts a due target's probe in a slot (the scheduler calls it only while `busy < concurrency`). */
  private readonly launch = (state: TargetProbeState): void => {
    this.busy += 1;
    this.metrics.probeStarted(Date.now() - state.plannedAt);
    const protocols = this.prober.protocolsFor(state.target.ports.length > 0, this.options);
    if (protocols.length === 1) void this.probeOne(state, protocols[0]!);
    else void this.probeEach(state, protocols);
  };

  /**
   * A turn with one protocol, the usual case, in a small async frame of its own: no Promise.all and no
   * wrapper around the transport's promise. This runs for every probe.
   */
  private async probeOne(state: TargetProbeState, protocol: Protocol): Promise<void> {
    let outcome: ProbeOutcome;
    try {
      outcome = await this.prober.start(protocol, state.target, this.options);
    } catch (err) {
      outcome = this.prober.threw(err, protocol, state.target.address);
    }
    this.endTurn(state, [outcome], true);
  }

  /** A turn with no protocol that can probe the target (an error outcome, not counted) or with two (mode both). */
  private async probeEach(state: TargetProbeState, protocols: readonly Protocol[]): Promise<void> {
    const { target } = state;
    // Awaited in both cases: a turn never ends within launch(), inside the scheduler's drain().
    const outcomes = await Promise.all(protocols.length === 0 ? [this.prober.unprobeable()] : protocols.map((protocol) => this.prober.probe(protocol, target, this.options)));
    this.endTurn(state, outcomes, protocols.length > 0);
  }

  /** The end of a turn: count and record the probe (`probed`: it ran), plan the next turn, release the slot. Never throws. */
  private endTurn(state: TargetProbeState, outcomes: readonly ProbeOutcome[], probed: boolean): void {
    try {
      if (probed) {
        // A probe cut short by stop() is no result: neither counted nor recorded.
        if (!this.running) return;
        for (const outcome of outcomes) this.metrics.probe(outcome.protocol, outcome.result, outcome.durationMs);
      }
      const verdict = verdictOfOutcomes(outcomes, this.options.refusedIsReachable);
      if (this.running && !state.stopped) this.record(state, verdict, outcomes);
    } catch (err) {
      // A throwing listener is caught in ProbeResults; anything else here is a bug that must not stop the engine.
      this.logger.error({ err, address: state.target.address }, 'recording a probe failed');
    } finally {
      this.busy -= 1;
      if (this.busy === 0) this.onIdle?.();
      if (this.running) this.scheduler.drain();
    }
  }

  private record(state: TargetProbeState, verdict: ProbeVerdict, outcomes: readonly ProbeOutcome[]): void {
    const now = Date.now();
    this.rounds.probed(state);
    const previous = state.record(verdict, outcomes, now, this.options);
    this.results.recorded(state, previous, verdict);
    const delayMs = nextDelayMs(state.health, verdict, this.options);
    this.scheduler.plan(state, now + delayMs * (1 + JITTER * (2 * this.random() - 1)));
  }
}
