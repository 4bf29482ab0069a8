// What a node's report may vote on, said compactly enough for 100k targets per node: a report lists
// only what is not reachable, so the controller must know which addresses the node judged at all.
// The configuration version settles the filters and the allow-list; these digests settle the rest:
// which addresses the node knows (its caches may lag or be stuck) and, with probeReplicas, which
// sharding members it assigned them over (docs/adr/0002).
import { createHash } from 'node:crypto';
import { parseAllowList } from '../probe/address.js';
import { hashString } from './rendezvous.js';

/** Buckets of the target-set digest: a change of one address withholds the votes of 1/32 of the addresses until the node catches up. */
export const TARGET_SET_BUCKETS = 32;
const BUCKET_SHIFT = 27; // 32 - log2(TARGET_SET_BUCKETS)
const HEX_PER_BUCKET = 8;

/** The bucket of the target-set digest an address falls in. */
export function bucketOf(address: string): number {
  return hashString(address) >>> BUCKET_SHIFT;
}

/**
 * Per bucket, the sum (mod 2^32) of the hashes of `addresses` (each given once), as 8 hex digits:
 * 256 characters whatever the number of addresses, equal on two nodes when both know the same
 * addresses of that bucket, different (but for a 2^-32 chance) when they do not.
 */
export function targetSetDigest(addresses: Iterable<string>): string {
  const sums = new Uint32Array(TARGET_SET_BUCKETS);
  for (const address of addresses) {
    const hash = hashString(address);
    const bucket = hash >>> BUCKET_SHIFT;
    sums[bucket] = (sums[bucket]! + hash) >>> 0;
  }
  return Array.from(sums, (sum) => sum.toString(16).padStart(HEX_PER_BUCKET, '0')).join('');
}

/** For each bucket, whether `reported` (a node's digest; undefined for an old report) equals `expected`. */
export function matchingBuckets(reported: string | undefined, expected: string): boolean[] {
  return Array.from({ length: TARGET_SET_BUCKETS }, (_, bucket) => {
    const start = bucket * HEX_PER_BUCKET;
    return reported !== undefined && reported.slice(start, start + HEX_PER_BUCKET) === expected.slice(start, start + HEX_PER_BUCKET);
  });
}

/** Digest of a sharding membership (any order). */
export function membersDigest(members: readonly string[]): string {
  return createHash('sha256').update([...new Set(members)].sort().join('\n')).digest('hex').slice(0, 16);
}

/** The addresses the allow-list `allowCidrs` refuses: no agent probes them, so none votes on them. */
export function refusedAddresses(addresses: Iterable<string>, allowCidrs: readonly string[]): Set<string> {
  const allowList = parseAllowList(allowCidrs);
  const refused = new Set<string>();
  for (const address of addresses) if (!allowList.check(address).allowed) refused.add(address);
  return refused;
}
