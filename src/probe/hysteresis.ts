import type { ProbeVerdict } from './outcome.js';

export type Reachability = 'unknown' | 'reachable' | 'unreachable';

/** A target's state and the run of identical verdicts behind it (the kubelet's lastResult + resultRun). */
export interface Health {
  state: Reachability;
  /** Last verdict that was not an error. */
  lastVerdict?: 'success' | 'failure';
  /** How many times in a row `lastVerdict` was seen. */
  run: number;
}

export interface Thresholds {
  failureThreshold: number;
  successThreshold: number;
}

export interface Cadence {
  intervalMs: number;
  fastIntervalMs: number;
}

export const INITIAL_HEALTH: Readonly<Health> = Object.freeze({ state: 'unknown', run: 0 });

/**
 * Applies one probe verdict. `failureThreshold` failures in a row make a target unreachable,
 * `successThreshold` successes in a row make an unreachable one reachable again. An unknown target
 * becomes reachable on its first success (there is no flap to damp yet), and an error changes nothing.
 */
export function observe(health: Health, verdict: ProbeVerdict, thresholds: Thresholds): Health {
  if (verdict === 'error') return health;
  const run = verdict === health.lastVerdict ? health.run + 1 : 1;
  let state = health.state;
  if (verdict === 'failure' && run >= thresholds.failureThreshold) state = 'unreachable';
  if (verdict === 'success' && (state === 'unknown' || run >= thresholds.successThreshold)) state = 'reachable';
  return { state, lastVerdict: verdict, run };
}

/**
 * Delay before the next probe: the fast interval while the last verdict disagrees with the state (or
 * the state is still unknown), so a change is confirmed in threshold × fastInterval rather than
 * threshold × interval. After a local error, a full interval: hurrying would not help.
 */
export function nextDelayMs(health: Health, verdict: ProbeVerdict, cadence: Cadence): number {
  if (verdict === 'error') return cadence.intervalMs;
  const confirming =
    health.state === 'unknown' ||
    (health.lastVerdict === 'failure' && health.state !== 'unreachable') ||
    (health.lastVerdict === 'success' && health.state !== 'reachable');
  return confirming ? cadence.fastIntervalMs : cadence.intervalMs;
}
