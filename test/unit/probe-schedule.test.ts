import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProbeScheduler, type Planned } from '../../src/probe/schedule.js';

interface Item extends Planned {
  name: string;
}

function item(name: string): Item {
  return { name, plannedAt: 0, queueIndex: -1 };
}

/** A scheduler whose pool has `room` free slots; released items are recorded with their time. */
function setup(room = Infinity) {
  const released: { name: string; at: number }[] = [];
  const pool = { room };
  const scheduler = new ProbeScheduler<Item>({
    hasRoom: () => pool.room > 0,
    run: (next) => {
      pool.room -= 1;
      released.push({ name: next.name, at: Date.now() });
    },
  });
  return { scheduler, released, pool };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ProbeScheduler', () => {
  it('releases items at their planned time, earliest first', async () => {
    const { scheduler, released } = setup();
    const names = ['c', 'a', 'd', 'b'];
    const times = [300, 100, 400, 200];
    names.forEach((name, n) => scheduler.plan(item(name), times[n]!));
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([
      { name: 'a', at: 100 },
      { name: 'b', at: 200 },
      { name: 'c', at: 300 },
      { name: 'd', at: 400 },
    ]);
    expect(scheduler.size).toBe(0);
  });

  it('keeps due items while the pool is full and releases them on drain()', async () => {
    const { scheduler, released, pool } = setup(1);
    ['a', 'b', 'c'].forEach((name, n) => scheduler.plan(item(name), 10 * (n + 1)));
    await vi.advanceTimersByTimeAsync(50);
    expect(released.map((r) => r.name)).toEqual(['a']);
    expect(scheduler.size).toBe(2);
    pool.room = 1;
    scheduler.drain();
    expect(released.map((r) => r.name)).toEqual(['a', 'b']);
    expect(released[1]!.at).toBe(50);
  });

  it('re-plans an item earlier or later, and forgets a removed one', async () => {
    const { scheduler, released } = setup();
    const [a, b, c] = [item('a'), item('b'), item('c')];
    scheduler.plan(a, 100);
    scheduler.plan(b, 200);
    scheduler.plan(c, 300);
    scheduler.plan(c, 50);
    scheduler.plan(a, 250);
    scheduler.remove(b);
    expect(b.queueIndex).toBe(-1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([
      { name: 'c', at: 50 },
      { name: 'a', at: 250 },
    ]);
  });

  it('stays ordered through many random plans and removals', async () => {
    const { scheduler, released } = setup();
    const items = Array.from({ length: 500 }, (_, n) => item(String(n)));
    let seed = 7;
    const random = (): number => ((seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647);
    for (const entry of items) scheduler.plan(entry, 1 + Math.floor(random() * 1000));
    for (const entry of items.slice(0, 100)) scheduler.plan(entry, 1 + Math.floor(random() * 1000));
    for (const entry of items.slice(400)) scheduler.remove(entry);
    const expected = items.slice(0, 400).map((entry) => entry.plannedAt);
    await vi.advanceTimersByTimeAsync(2000);
    expect(released).toHaveLength(400);
    expect(released.map((r) => r.at)).toEqual(expected.sort((x, y) => x - y));
  });

  it('fires nothing after clear()', async () => {
    const { scheduler, released } = setup();
    const a = item('a');
    scheduler.plan(a, 100);
    scheduler.clear();
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([]);
    expect(a.queueIndex).toBe(-1);
  });
});
