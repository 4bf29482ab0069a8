import type { Logger } from '../log.js';
import type { Reachability } from './hysteresis.js';
import type { ProbeVerdict } from './outcome.js';
import type { TargetProbeState } from './target-state.js';

export interface ReachabilityChange {
  address: string;
  owners: string[];
  previous: Reachability;
  current: Reachability;
}

/** The per-target series the results feed (ProbeMetrics in the engine). */
export interface TargetGauge {
  setTargetReachable(address: string, reachable: boolean): void;
  deleteTarget(address: string): void;
  clearTargets(): void;
}

/**
 * The kubelet's results cache, kept on each target's state rather than in a second map of every
 * address: only changes go on (to the listeners, the log and the per-target gauge). It also counts
 * the unreachable targets and tracks the first round after start().
 */
export class ProbeResults {
  /** Targets whose state is `unreachable`, kept on every change rather than counted at scrape time. */
  private unreachableCount = 0;
  private readonly listeners = new Set<(change: ReachabilityChange) => void>();
  private firstRound = new FirstRound();

  constructor(
    private readonly logger: Logger,
    private readonly gauge: TargetGauge,
    private perTargetMetrics: boolean,
  ) {}

  get unreachable(): number {
    return this.unreachableCount;
  }

  /** Calls `listener` for every change of a target's state; returns the function that unsubscribes. */
  onChange(listener: (change: ReachabilityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Takes a probe's step (`previous`: the state before it): passes a change on, and settles the
   * target's first round once its state is known or the probe could only end in an error.
   */
  recorded(state: TargetProbeState, previous: Reachability, verdict: ProbeVerdict): void {
    const { address, owners } = state.target;
    const current = state.health.state;
    if (current !== previous) {
      this.unreachableCount += Number(current === 'unreachable') - Number(previous === 'unreachable');
      this.export(state);
      this.emit({ address, owners, previous, current });
    }
    if (current !== 'unknown' || verdict === 'error') this.firstRound.settle(address);
  }

  /** Forgets a target that left the set: its count, its series, its place in the first round. */
  removed(state: TargetProbeState): void {
    const { address } = state.target;
    if (state.health.state === 'unreachable') this.unreachableCount -= 1;
    this.gauge.deleteTarget(address);
    this.firstRound.settle(address);
  }

  /** Turns the per-target series on (exporting every known state) or off (deleting them all). */
  setPerTargetMetrics(on: boolean, states: Iterable<TargetProbeState>): void {
    const was = this.perTargetMetrics;
    this.perTargetMetrics = on;
    if (was && !on) this.gauge.clearTargets();
    if (!was && on) for (const state of states) this.export(state);
  }

  /** Starts the first round over `addresses`; it ends when each is settled or removed, or at the deadline. */
  beginFirstRound(addresses: Iterable<string>, deadlineMs: number): void {
    this.firstRound.begin(addresses, deadlineMs, (pending) =>
      this.logger.warn({ pending, deadlineMs }, 'first probe round incomplete at its deadline; those targets stay unknown'),
    );
  }

  /** Ends the first round (on stop) and prepares the next start's. */
  endFirstRound(): void {
    this.firstRound.end();
    this.firstRound = new FirstRound();
  }

  firstRoundComplete(): Promise<void> {
    return this.firstRound.done;
  }

  private export(state: TargetProbeState): void {
    const { state: reachability } = state.health;
    if (this.perTargetMetrics && reachability !== 'unknown') this.gauge.setTargetReachable(state.target.address, reachability === 'reachable');
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
    // Once the round is over (nearly always), not even a hash lookup: the address is cold in memory.
    if (this.pending.size === 0) return;
    if (this.pending.delete(address) && this.pending.size === 0) this.end();
  }

  end(): void {
    clearTimeout(this.deadline);
    this.pending.clear();
    this.resolve();
  }
}
