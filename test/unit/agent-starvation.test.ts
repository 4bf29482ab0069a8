import { describe, expect, it } from 'vitest';
import { StarvationGuard, starvationRule } from '../../src/agent/starvation.js';

const RULE = starvationRule({ timeoutMs: 1000, intervalMs: 2000, failureThreshold: 3, successThreshold: 2 });

describe('StarvationGuard', () => {
  it('derives its limits from the probe settings: half the timeout, a verdict formed anew', () => {
    expect(RULE).toEqual({ stallLimitMs: 500, calmMs: 7000 });
  });

  it('is not starved by stalls within the limit', () => {
    const guard = new StarvationGuard(RULE);
    for (let t = 0; t < 10_000; t += 500) guard.observe(500, t);
    expect(guard.isStarved(10_000)).toBe(false);
  });

  it('is starved from a stall beyond the limit until calm for the whole calm period', () => {
    const guard = new StarvationGuard(RULE);
    guard.observe(600, 1000);
    expect(guard.isStarved(1000)).toBe(true);
    expect(guard.isStarved(7999)).toBe(true);
    expect(guard.isStarved(8000)).toBe(false);
  });

  it('starts the calm period again at each further stall', () => {
    const guard = new StarvationGuard(RULE);
    guard.observe(600, 1000);
    guard.observe(600, 6000);
    expect(guard.isStarved(12_999)).toBe(true);
    expect(guard.isStarved(13_000)).toBe(false);
  });

  it('names the worst stall of the current starvation, not of an earlier one', () => {
    const guard = new StarvationGuard(RULE);
    guard.observe(2000, 0);
    guard.observe(700, 20_000);
    expect(guard.reason()).toContain('700 ms');
    guard.observe(900, 21_000);
    expect(guard.reason()).toContain('900 ms');
  });
});
