// Measures this process's event-loop stalls and tells when the agent becomes starved or recovers
// (gauge, log line, Event), by the rule of src/agent/starvation.ts.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Gauge } from 'prom-client';
import type { EventRecorder, EventTarget } from '../kube/events.js';
import type { Logger } from '../log.js';
import { StarvationGuard, type StarvationRule } from './starvation.js';

/** How often stalls are read; the delay histogram keeps the longest in between. */
const STARVATION_CHECK_MS = 500;
const STALL_RESOLUTION_MS = 10;

export class StarvationWatch {
  private readonly loopDelay = monitorEventLoopDelay({ resolution: STALL_RESOLUTION_MS });
  private readonly guard: StarvationGuard;
  private timer?: NodeJS.Timeout;
  /** Whether the last check found the agent starved. */
  private starved = false;

  constructor(
    rule: StarvationRule,
    private readonly deps: {
      logger: Logger;
      events: EventRecorder;
      gauge: Gauge;
      /** The Event's object: this node's report. */
      target: EventTarget;
      /** Whether a starved agent abstains (abstainWhenStarved), for what the messages say. */
      abstains: () => boolean;
      /** Called after every check. */
      checked: () => void;
    },
  ) {
    this.guard = new StarvationGuard(rule);
  }

  setRule(rule: StarvationRule): void {
    this.guard.setRule(rule);
  }

  isStarved(): boolean {
    return this.guard.isStarved(Date.now());
  }

  start(): void {
    this.loopDelay.enable();
    this.timer = setInterval(() => this.check(), STARVATION_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.loopDelay.disable();
  }

  /** Feeds the longest stall since the last check to the guard; starvation is told whether or not the agent abstains. */
  private check(): void {
    this.guard.observe(this.loopDelay.max / 1e6, Date.now());
    this.loopDelay.reset();
    const starved = this.isStarved();
    if (starved !== this.starved) {
      this.starved = starved;
      const { logger, events, target } = this.deps;
      this.deps.gauge.set(starved ? 1 : 0);
      const consequence = this.deps.abstains() ? 'no address is voted unreachable from this node until it recovers' : 'its votes still count (abstainWhenStarved: false)';
      if (starved) {
        const reason = this.guard.reason();
        logger.warn({ reason }, `agent starved: ${consequence}`);
        events.warning(target, 'NodeStarved', `${reason}: ${consequence}`);
      } else {
        logger.info('agent no longer starved');
        events.normal(target, 'NodeUnstarved', 'event loop runs smoothly again');
      }
    }
    this.deps.checked();
  }
}
