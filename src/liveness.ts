// Event loop lag for liveness, measured as timer drift: a timer due every periodMs that fires late
// shows how long the loop was busy. A loop that is blocked outright cannot answer /healthz at all (the
// kubelet's probe times out); this catches the loop that still answers between long stalls.

export class EventLoopLag {
  private timer?: NodeJS.Timeout;
  /** When the next tick is due. */
  private dueAt: number;
  private lastLagMs = 0;

  constructor(
    private readonly periodMs = 500,
    /** Milliseconds, monotonic. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.dueAt = now() + periodMs;
  }

  start(): void {
    this.dueAt = this.now() + this.periodMs;
    this.timer = setInterval(() => this.tick(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One timer tick: how late it came. Public for tests, which drive it with a fake clock. */
  tick(): void {
    const now = this.now();
    this.lastLagMs = Math.max(0, now - this.dueAt);
    this.dueAt = now + this.periodMs;
  }

  /** The lag seen by the last tick, or by the tick that is overdue right now if that is more. */
  lagMs(): number {
    return Math.max(this.lastLagMs, this.now() - this.dueAt);
  }

  /** Undefined while the lag is within `limitMs`, else what is wrong. */
  check(limitMs: number): string | undefined {
    const lag = this.lagMs();
    return lag > limitMs ? `event loop stalled: timers ${Math.round(lag)} ms late (limit ${limitMs} ms)` : undefined;
  }
}
