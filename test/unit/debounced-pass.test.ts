import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DebouncedPass } from '../../src/kube/cluster-view.js';

describe('DebouncedPass', () => {
  let starts: number[];
  let finish: Array<() => void>;
  let pass: DebouncedPass;

  beforeEach(() => {
    vi.useFakeTimers();
    starts = [];
    finish = [];
    pass = new DebouncedPass(() => {
      starts.push(Date.now());
      return new Promise<void>((resolve) => finish.push(resolve));
    }, 20);
  });
  afterEach(() => {
    pass.stop();
    vi.useRealTimers();
  });

  it('runs a lone ask at once, and asks of the same turn once', async () => {
    const t0 = Date.now();
    pass.schedule();
    pass.schedule();
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toEqual([t0]);
  });

  it('runs a burst once now and once at the end of the window', async () => {
    const t0 = Date.now();
    pass.schedule();
    await vi.advanceTimersByTimeAsync(0);
    finish.shift()!();
    for (let ms = 1; ms < 20; ms += 3) {
      await vi.advanceTimersByTimeAsync(3);
      pass.schedule();
    }
    await vi.advanceTimersByTimeAsync(20);
    expect(starts).toEqual([t0, t0 + 20]);
  });

  it('never runs twice at once: an ask during a run runs after it', async () => {
    const t0 = Date.now();
    pass.schedule();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(25);
    pass.schedule();
    await vi.advanceTimersByTimeAsync(100);
    expect(starts).toEqual([t0]);
    finish.shift()!();
    await vi.advanceTimersByTimeAsync(20);
    expect(starts).toHaveLength(2);
    expect(starts[1]! - t0).toBeGreaterThanOrEqual(125);
  });

  it('runs nothing after stop()', async () => {
    pass.schedule();
    pass.stop();
    await vi.advanceTimersByTimeAsync(100);
    expect(starts).toEqual([]);
  });
});
