// A starved agent doubts itself first (as a slow member does in SWIM's Lifeguard): while its event
// loop stalls, its probe verdicts say more about its own CPU than about the targets, so it stops
// voting "unreachable" until it has run smoothly long enough for every verdict to be formed anew.
// Pure: the agent feeds it measured stalls and the time.

export interface StarvationRule {
  /** A stall longer than this makes the agent starved. */
  stallLimitMs: number;
  /** Starved until no stall beyond the limit for this long: the time a verdict takes to form again. */
  calmMs: number;
}

/**
 * The rule for a probe configuration: stalls beyond half the probe timeout (a stall must be of the
 * timeout's order to turn an answer into a timeout; shorter ones are the GC pauses and scheduling noise
 * of any busy node), calm for the longer threshold's worth of intervals plus a timeout.
 */
export function starvationRule(probe: { timeoutMs: number; intervalMs: number; failureThreshold: number; successThreshold: number }): StarvationRule {
  return {
    stallLimitMs: probe.timeoutMs / 2,
    calmMs: probe.intervalMs * Math.max(probe.failureThreshold, probe.successThreshold) + probe.timeoutMs,
  };
}

export class StarvationGuard {
  /** When the last stall beyond the limit was seen (ms); none yet. */
  private lastStallAtMs = -Infinity;
  /** The longest of those stalls since the agent last became starved, for the log. */
  private worstStallMs = 0;

  constructor(private rule: StarvationRule) {}

  setRule(rule: StarvationRule): void {
    this.rule = rule;
  }

  /** One measurement: the longest stall (ms) since the previous one, at `nowMs`. */
  observe(stallMs: number, nowMs: number): void {
    if (stallMs <= this.rule.stallLimitMs) return;
    if (!this.isStarved(nowMs)) this.worstStallMs = 0;
    this.lastStallAtMs = nowMs;
    this.worstStallMs = Math.max(this.worstStallMs, stallMs);
  }

  isStarved(nowMs: number): boolean {
    return nowMs - this.lastStallAtMs < this.rule.calmMs;
  }

  /** Why the agent is starved, for logs and Events. */
  reason(): string {
    return `event loop stalled ${Math.round(this.worstStallMs)} ms (limit ${Math.round(this.rule.stallLimitMs)} ms, half of probe.timeout)`;
  }
}
