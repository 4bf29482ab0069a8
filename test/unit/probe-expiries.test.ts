import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Expiries } from '../../src/probe/expiries.js';

/** Expiries on the fake clock; expired items are recorded with their time. */
function setup() {
  const expired: { item: string; at: number }[] = [];
  const expiries = new Expiries<string>((item) => expired.push({ item, at: Date.now() }), () => Date.now());
  return { expiries, expired };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Expiries', () => {
  it('expires each item at its deadline, in order, from one timer', () => {
    const { expiries, expired } = setup();
    expiries.add('a', 1000);
    vi.advanceTimersByTime(300);
    expiries.add('b', 1000);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(699);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([{ item: 'a', at: 1000 }]);
    vi.advanceTimersByTime(300);
    expect(expired).toEqual([
      { item: 'a', at: 1000 },
      { item: 'b', at: 1300 },
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps each timeout length to its own deadline', () => {
    const { expiries, expired } = setup();
    expiries.add('long', 1000);
    expiries.add('short', 200);
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([
      { item: 'short', at: 200 },
      { item: 'long', at: 1000 },
    ]);
  });

  it('expires items added after the queue ran empty', () => {
    const { expiries, expired } = setup();
    expiries.add('first', 100);
    vi.advanceTimersByTime(100);
    expiries.add('second', 100);
    vi.advanceTimersByTime(100);
    expect(expired.map((e) => e.at)).toEqual([100, 200]);
  });

  it('expires every one of thousands of items once, across compactions', () => {
    const { expiries, expired } = setup();
    for (let n = 0; n < 5000; n++) {
      expiries.add(String(n), 1000);
      vi.advanceTimersByTime(1);
    }
    vi.advanceTimersByTime(1000);
    expect(expired).toHaveLength(5000);
    expect(expired.every((e, n) => e.item === String(n) && e.at === n + 1000)).toBe(true);
  });

  it('expires nothing after clear()', () => {
    const { expiries, expired } = setup();
    expiries.add('a', 100);
    expiries.clear();
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
