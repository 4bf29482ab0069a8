import { describe, expect, it } from 'vitest';
import { ProbeRounds, type RoundMember } from '../../src/probe/rounds.js';

function setup() {
  let now = 0;
  const rounds: number[] = [];
  const tracker = new ProbeRounds(
    (durationMs) => rounds.push(durationMs),
    () => now,
  );
  const members = (n: number): RoundMember[] =>
    Array.from({ length: n }, () => {
      const member = { probedInRound: 0 };
      tracker.added(member);
      return member;
    });
  return { tracker, rounds, members, at: (ms: number) => (now = ms) };
}

describe('ProbeRounds', () => {
  it('ends a round once every target was probed, however often some were probed meanwhile', () => {
    const { tracker, rounds, members, at } = setup();
    const [a, b, c] = members(3);
    tracker.begin();
    at(100);
    tracker.probed(a!);
    tracker.probed(a!);
    tracker.probed(b!);
    expect(rounds).toEqual([]);
    at(1100);
    tracker.probed(c!);
    expect(rounds).toEqual([1100]);
    // The next round starts when the last one ended, for all three again.
    at(1500);
    tracker.probed(c!);
    tracker.probed(b!);
    at(2600);
    tracker.probed(a!);
    expect(rounds).toEqual([1100, 1500]);
  });

  it('does not wait for a removed target, and waits for one added during the round', () => {
    const { tracker, rounds, members, at } = setup();
    const [a, b] = members(2);
    tracker.begin();
    tracker.probed(a!);
    const [late] = members(1);
    at(300);
    tracker.removed(b!);
    expect(rounds).toEqual([]);
    at(700);
    tracker.probed(late!);
    expect(rounds).toEqual([700]);
  });

  it('does not count a removed target that was already probed in the round', () => {
    const { tracker, rounds, members, at } = setup();
    const [a, b, c] = members(3);
    tracker.begin();
    tracker.probed(a!);
    tracker.removed(a!);
    tracker.probed(b!);
    expect(rounds).toEqual([]);
    at(50);
    tracker.probed(c!);
    expect(rounds).toEqual([50]);
  });

  it('reports nothing while stopped, and starts afresh on begin', () => {
    const { tracker, rounds, members, at } = setup();
    const [a] = members(1);
    tracker.probed(a!);
    tracker.begin();
    tracker.end();
    tracker.probed(a!);
    expect(rounds).toEqual([]);
    at(1000);
    tracker.begin();
    at(1200);
    tracker.probed(a!);
    expect(rounds).toEqual([200]);
  });
});
