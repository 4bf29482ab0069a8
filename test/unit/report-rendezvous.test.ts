import { describe, expect, it } from 'vitest';
import { assignees, isAssigned, rendezvous } from '../../src/report/rendezvous.js';

const nodes = (count: number): string[] => Array.from({ length: count }, (_, i) => `node-${i}`);
const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

describe('assignees', () => {
  it.each([
    { name: 'replicas 0 assigns every member', replicas: 0, expected: 5 },
    { name: 'replicas equal to the members assigns every member', replicas: 5, expected: 5 },
    { name: 'replicas above the members assigns every member', replicas: 9, expected: 5 },
    { name: 'replicas 1 assigns one member', replicas: 1, expected: 1 },
    { name: 'replicas 3 assigns three members', replicas: 3, expected: 3 },
  ])('$name', ({ replicas, expected }) => {
    const result = assignees('10.0.0.1', nodes(5), replicas);
    expect(result).toHaveLength(expected);
    expect(new Set(result).size).toBe(expected);
    expect(result).toEqual([...result].sort());
  });

  it('gives every key exactly R distinct members of 1,000', () => {
    const ring = rendezvous(nodes(1000), 3);
    for (const key of keys(2000)) {
      const owners = ring.assignees(key);
      expect(new Set(owners).size).toBe(3);
      expect(owners.every((owner) => owner.startsWith('node-'))).toBe(true);
    }
  });

  it('does not depend on the order or duplicates of the members list', () => {
    const members = nodes(50);
    const shuffled = [...members].reverse().concat(members.slice(0, 5));
    for (const key of keys(200)) expect(assignees(key, shuffled, 2)).toEqual(assignees(key, members, 2));
  });

  it('is empty without members', () => {
    expect(assignees('10.0.0.1', [], 2)).toEqual([]);
  });

  it.each([
    { name: 'a negative count', replicas: -1 },
    { name: 'a fraction', replicas: 1.5 },
    { name: 'NaN', replicas: Number.NaN },
  ])('rejects $name of replicas with a TypeError naming the option', ({ replicas }) => {
    expect(() => rendezvous(nodes(3), replicas)).toThrow(/^replicas: /);
  });
});

describe('isAssigned', () => {
  it('agrees with assignees for every member', () => {
    const members = nodes(40);
    const ring = rendezvous(members, 3);
    for (const key of keys(300)) {
      const owners = new Set(ring.assignees(key));
      for (const member of members) expect(ring.isAssigned(key, member)).toBe(owners.has(member));
    }
  });

  it('is false for a non-member', () => {
    expect(isAssigned('10.0.0.1', 'stranger', nodes(3), 0)).toBe(false);
  });

  it('is true for every member when replicas is 0', () => {
    expect(nodes(4).every((node) => isAssigned('10.0.0.1', node, nodes(4), 0))).toBe(true);
  });
});

describe('distribution', () => {
  it('spreads 100k keys over 1,000 members within 35% of the mean load', () => {
    const members = nodes(1000);
    const replicas = 2;
    const ring = rendezvous(members, replicas);
    const load = new Map(members.map((m) => [m, 0]));
    for (const key of keys(100_000)) for (const owner of ring.assignees(key)) load.set(owner, load.get(owner)! + 1);
    const mean = (100_000 * replicas) / members.length; // 200; binomial standard deviation ≈ 14
    for (const count of load.values()) expect(Math.abs(count - mean)).toBeLessThan(mean * 0.35);
  });

  it('moves only the keys of a removed member', () => {
    const members = nodes(100);
    const before = rendezvous(members, 3);
    const after = rendezvous(members.filter((m) => m !== 'node-42'), 3);
    let moved = 0;
    for (const key of keys(20_000)) {
      const old = before.assignees(key);
      const now = after.assignees(key);
      const kept = old.filter((m) => m !== 'node-42');
      expect(now).toEqual(expect.arrayContaining(kept));
      if (old.includes('node-42')) moved++;
      else expect(now).toEqual(old);
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('gives an added member only keys it now wins, each displacing one previous owner', () => {
    const members = nodes(100);
    const before = rendezvous(members, 3);
    const after = rendezvous([...members, 'node-new'], 3);
    for (const key of keys(20_000)) {
      const old = before.assignees(key);
      const now = after.assignees(key);
      if (!now.includes('node-new')) expect(now).toEqual(old);
      else expect(old.filter((m) => !now.includes(m))).toHaveLength(1);
    }
  });

  it('decides 100k keys for one member among 1,000 in well under a second', () => {
    const ring = rendezvous(nodes(1000), 3);
    const started = performance.now();
    let mine = 0;
    for (const key of keys(100_000)) if (ring.isAssigned(key, 'node-7')) mine++;
    expect(performance.now() - started).toBeLessThan(2000); // generous for slow CI; typically ~0.3 s
    expect(mine).toBeGreaterThan(150);
  });
});
