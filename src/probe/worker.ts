import { INITIAL_HEALTH, type Health } from './hysteresis.js';

/** One probe target: an endpoint address, the TCP ports to try, and the ServiceImports ("namespace/name") it belongs to. */
export interface Target {
  address: string;
  ports: number[];
  owners: string[];
}

/** The per-target loop's state; the engine drives it (one timer at a time, one probe at a time). */
export class TargetWorker {
  /** Hysteresis state, replaced after every probe. */
  health: Health = INITIAL_HEALTH;
  /** Wall-clock time (ms since epoch) the last probe finished. */
  lastProbeAt: number | undefined;
  /** Why the last probe did not succeed (protocol, result, errno). */
  lastError: string | undefined;
  /** Time the pending probe is planned for, to measure lateness. */
  plannedAt = 0;
  /** Set once the target is removed; a probe in flight is then discarded. */
  stopped = false;
  private timer: NodeJS.Timeout | undefined;

  /** `target` is normalised: canonical address, sorted unique ports and owners. */
  constructor(public target: Target) {}

  /** Plans the next probe in `delayMs`, replacing any planned one. */
  schedule(delayMs: number, run: (worker: TargetWorker) => void): void {
    this.cancel();
    this.plannedAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      run(this);
    }, delayMs);
  }

  /** Whether a probe is planned (false while one is running). */
  isScheduled(): boolean {
    return this.timer !== undefined;
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }
}
