import { describe, expect, it } from 'vitest';
import { ReportedProblems } from '../../src/log.js';

/** Runs one pass over `found` and returns what it reports. */
function pass(problems: ReportedProblems<string>, found: string[]): string[] {
  const reported = found.filter((key) => problems.isNew(key));
  problems.endPass();
  return reported;
}

describe('ReportedProblems', () => {
  it('reports a problem once while it stays, once more after it went and came back', () => {
    const problems = new ReportedProblems<string>();
    expect(pass(problems, ['a', 'b', 'a'])).toEqual(['a', 'b']);
    expect(pass(problems, ['b', 'a'])).toEqual([]);
    expect(pass(problems, ['b'])).toEqual([]);
    expect(pass(problems, ['a', 'b', 'c'])).toEqual(['a', 'c']);
  });

  it('forgets what a pass no longer finds', () => {
    const problems = new ReportedProblems<number>();
    for (let n = 0; n < 1000; n++) {
      expect(problems.isNew(n)).toBe(true);
      problems.endPass();
    }
    // Only the last pass's problem is remembered: the next pass reports it not, its predecessor yes.
    expect(problems.isNew(999)).toBe(false);
    expect(problems.isNew(998)).toBe(true);
  });

  it('tells a condition when it starts or changes, not while it persists', () => {
    const conditions = new ReportedProblems<string>();
    const told = (states: Record<string, string>): string[] => {
      const news = Object.entries(states).filter(([key, state]) => conditions.changed(key, state)).map(([key, state]) => `${key}=${state}`);
      conditions.endPass();
      return news;
    };
    expect(told({ 'ns/a': '10.0.0.1', 'ns/b': '' })).toEqual(['ns/a=10.0.0.1']);
    expect(told({ 'ns/a': '10.0.0.1', 'ns/b': '' })).toEqual([]);
    expect(told({ 'ns/a': '10.0.0.1,10.0.0.2', 'ns/b': '10.0.1.1' })).toEqual(['ns/a=10.0.0.1,10.0.0.2', 'ns/b=10.0.1.1']);
    // Ended (empty) or gone from the pass: told again when it comes back.
    expect(told({ 'ns/a': '' })).toEqual([]);
    expect(told({ 'ns/a': '10.0.0.1,10.0.0.2', 'ns/b': '10.0.1.1' })).toEqual(['ns/a=10.0.0.1,10.0.0.2', 'ns/b=10.0.1.1']);
  });
});
