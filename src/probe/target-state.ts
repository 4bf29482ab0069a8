import type { Target } from '../contract/target.js';
import { INITIAL_HEALTH, type Health } from './hysteresis.js';
import type { RoundMember } from './rounds.js';
import type { Planned } from './schedule.js';

/** One target's probing state (no loop of its own): the engine drives it (planned in the scheduler or probing, one probe at a time). */
export class TargetProbeState implements Planned, RoundMember {
  /** Hysteresis state, replaced after every probe. */
  health: Health = INITIAL_HEALTH;
  /** Wall-clock time (ms since epoch) the last probe finished. */
  lastProbeAt: number | undefined;
  /** Why the last probe did not succeed (protocol, result, errno). */
  lastError: string | undefined;
  /** How long the last probe took to be answered; undefined when it was not. */
  lastRttMs: number | undefined;
  /** Time the next (or running) probe is planned for, to measure lateness. */
  plannedAt = 0;
  /** Position in the scheduler's heap; -1 while not planned (probing, or engine stopped). */
  queueIndex = -1;
  probedInRound = -1;
  /** Set once the target is removed; a probe in flight is then discarded. */
  stopped = false;

  /** `target` is normalised: canonical address, sorted unique ports and owners. */
  constructor(public target: Target) {}

  /** Whether a probe is planned (false while one is running). */
  isPlanned(): boolean {
    return this.queueIndex >= 0;
  }
}
