import type { Target } from '../contract/target.js';
import { INITIAL_HEALTH, observe, type Health, type Reachability, type Thresholds } from './hysteresis.js';
import { answeredRttMs, type ProbeOutcome, type ProbeVerdict } from './outcome.js';
import type { RoundMember } from './rounds.js';
import type { Planned } from './schedule.js';

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

/** One target's probing state (no loop of its own): the engine drives it (planned in the scheduler or probing, one probe at a time). */
export class TargetProbeState implements Planned, RoundMember {
  /**
   * Hysteresis state: this target's one object, updated after every probe. A new object per probe
   * would live until the target's next probe, long enough to be promoted, and so fill the old
   * generation with garbage at thousands of probes per second; the same goes for a new heap number
   * per probe, which `number | undefined` fields take and NaN-for-none number fields do not.
   */
  readonly health: Health = { ...INITIAL_HEALTH, lastVerdict: undefined };
  /** Wall-clock time (ms since epoch) the last probe finished; NaN before the first. */
  private probedAt = NaN;
  /** Why the last probe did not succeed (protocol, result, errno). */
  lastError: string | undefined;
  /** How long the last probe took to be answered; NaN when it was not. */
  private rttMs = NaN;
  /** Time the next (or running) probe is planned for, to measure lateness. */
  plannedAt = 0;
  /** Position in the scheduler's heap; -1 while not planned (probing, or engine stopped). */
  queueIndex = -1;
  probedInRound = -1;
  /** Set once the target is removed; a probe in flight is then discarded. */
  stopped = false;

  /** `target` is normalised: canonical address, sorted unique ports and owners. */
  constructor(public target: Target) {}

  get address(): string {
    return this.target.address;
  }

  /** Wall-clock time (ms since epoch) the last probe finished. */
  get lastProbeAt(): number | undefined {
    return Number.isNaN(this.probedAt) ? undefined : this.probedAt;
  }

  /** How long the last probe took to be answered; undefined when it was not. */
  get lastRttMs(): number | undefined {
    return Number.isNaN(this.rttMs) ? undefined : this.rttMs;
  }

  /** Whether a probe is planned (false while one is running). */
  isPlanned(): boolean {
    return this.queueIndex >= 0;
  }

  /**
   * The synchronous step after a probe (the kubelet's per-target step, without the probing): records what the
   * probe saw at `now` and moves the hysteresis on. Returns the state before the probe, to compare
   * with `health.state`.
   */
  record(verdict: ProbeVerdict, outcomes: readonly ProbeOutcome[], now: number, options: Thresholds & { refusedIsReachable: boolean }): Reachability {
    this.probedAt = now;
    this.lastError =
      verdict === 'success'
        ? undefined
        : outcomes.map((o) => `${o.protocol} ${o.result}${o.error === undefined ? '' : `: ${o.error}`}`).join('; ');
    this.rttMs = (verdict === 'success' ? answeredRttMs(outcomes, options.refusedIsReachable) : undefined) ?? NaN;
    const { health } = this;
    const previous = health.state;
    const next = observe(health, verdict, options);
    health.state = next.state;
    health.lastVerdict = next.lastVerdict;
    health.run = next.run;
    return previous;
  }

  status(): TargetStatus {
    const { address, owners, ports } = this.target;
    const status: TargetStatus = { address, owners, ports, state: this.health.state };
    if (this.lastProbeAt !== undefined) status.lastProbeAt = this.lastProbeAt;
    if (this.lastError !== undefined) status.lastError = this.lastError;
    if (this.lastRttMs !== undefined) status.lastRttMs = this.lastRttMs;
    return status;
  }
}
