// The node's probe rate and lateness between two report writes, from the engine's monotonic totals.
import type { ProbeStats } from '../contract/probe-report.js';

export class ProbeStatsMeter {
  private last?: { atMs: number; started: number; latenessMs: number };

  /** The rate since the previous sample; undefined at the first one, or when no time has passed. */
  sample(totals: { started: number; latenessMs: number }, nowMs: number): ProbeStats | undefined {
    const last = this.last;
    this.last = { atMs: nowMs, ...totals };
    if (!last || nowMs <= last.atMs) return undefined;
    const started = totals.started - last.started;
    return {
      probesPerSecond: Math.round((started * 1000 * 10) / (nowMs - last.atMs)) / 10,
      meanLatenessMs: started > 0 ? Math.round(((totals.latenessMs - last.latenessMs) / started) * 10) / 10 : 0,
    };
  }
}
