import { describe, expect, it } from 'vitest';
import { TARGET_SET_BUCKETS, bucketOf, matchingBuckets, membersDigest, refusedAddresses, targetSetDigest } from '../../src/report/coverage.js';

const ADDRESSES = Array.from({ length: 200 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);

describe('targetSetDigest', () => {
  it('is 8 hex digits per bucket whatever the number of addresses', () => {
    expect(targetSetDigest([])).toBe('0'.repeat(8 * TARGET_SET_BUCKETS));
    expect(targetSetDigest(ADDRESSES)).toMatch(new RegExp(`^[0-9a-f]{${8 * TARGET_SET_BUCKETS}}$`));
  });

  it('does not depend on the order of the addresses', () => {
    expect(targetSetDigest([...ADDRESSES].reverse())).toBe(targetSetDigest(ADDRESSES));
  });

  it('differs exactly in the bucket of an added address', () => {
    const added = '10.2.0.1';
    const matches = matchingBuckets(targetSetDigest([...ADDRESSES, added]), targetSetDigest(ADDRESSES));
    expect(matches.map((same, bucket) => (same ? -1 : bucket)).filter((b) => b >= 0)).toEqual([bucketOf(added)]);
  });
});

describe('matchingBuckets', () => {
  it('matches nothing for a report without a digest, or with a malformed one', () => {
    const expected = targetSetDigest(ADDRESSES);
    expect(matchingBuckets(undefined, expected).some(Boolean)).toBe(false);
    expect(matchingBuckets('stale', expected).some(Boolean)).toBe(false);
    expect(matchingBuckets(expected, expected).every(Boolean)).toBe(true);
  });
});

describe('membersDigest', () => {
  it('does not depend on order or repeats, and changes with the members', () => {
    expect(membersDigest(['b', 'a', 'a'])).toBe(membersDigest(['a', 'b']));
    expect(membersDigest(['a', 'b', 'c'])).not.toBe(membersDigest(['a', 'b']));
  });
});

describe('refusedAddresses', () => {
  it('lists what the allow-list refuses', () => {
    expect([...refusedAddresses(['10.1.0.1', '192.168.0.1', '::1'], ['10.0.0.0/8'])]).toEqual(['192.168.0.1', '::1']);
    expect(refusedAddresses(['10.1.0.1'], []).size).toBe(1);
  });
});
