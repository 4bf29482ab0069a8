// The votes of node reports per address, for aggregate(): which nodes judged an address (their
// report's scope, the sharding ring, the allow-list) and how many of them found it unreachable.
import { bucketOf, TARGET_SET_BUCKETS } from './coverage.js';
import type { Rendezvous } from './rendezvous.js';
import type { ProbeReportSpec } from '../contract/probe-report.js';

export interface Ballot {
  /** Nodes that judged the address. */
  voters: number;
  /** Of those, the ones that judged it unreachable. */
  down: number;
}

/** What every tally shares: the sharding ring (none when every member probes everything) and each node's valid buckets. */
export interface Electorate {
  members: readonly string[];
  replicas: number;
  ring?: Rendezvous;
  /** Per eligible node, which buckets of its target-set digest match the controller's. */
  buckets: ReadonlyMap<string, readonly boolean[]>;
  refused: ReadonlySet<string>;
}

/** Whether `node` judges `address` by its report's scope: it knows the address and is assigned it. */
function inScope(electorate: Electorate, node: string, address: string): boolean {
  return electorate.buckets.get(node)?.[bucketOf(address)] === true && (!electorate.ring || electorate.ring.isAssigned(address, node));
}

/**
 * The votes of `reports` (eligible ones) per address. A node votes on an address only if it judged
 * it: in scope (inScope), not refused by the allow-list, and not listed as unknown; it votes
 * unreachable when any of its ServiceImport entries lists the address (reachability belongs to the
 * address, whichever ServiceImport the node filed it under). Lists are short: votes are counted from
 * them, and voters are counted per address without asking every report about every address.
 */
export class Tally {
  private readonly down = new Map<string, number>();
  private readonly unknown = new Map<string, number>();
  /** Per bucket, the nodes of this tally whose digest matches there. */
  private readonly presentByBucket: number[];
  /** Per bucket, the members that do not vote in it (not in this tally, or with a stale digest). */
  private readonly absentByBucket: string[][];
  private readonly voterNames: ReadonlySet<string>;

  constructor(
    reports: readonly ProbeReportSpec[],
    private readonly electorate: Electorate,
  ) {
    this.voterNames = new Set(reports.map((r) => r.nodeName));
    for (const report of reports) {
      const unknown = new Set(report.serviceImports.flatMap((s) => s.unknown ?? []));
      const down = new Set(report.serviceImports.flatMap((s) => s.unreachable).filter((a) => !unknown.has(a)));
      this.count(report.nodeName, unknown, this.unknown);
      this.count(report.nodeName, down, this.down);
    }
    const votesIn = (node: string, bucket: number): boolean => this.voterNames.has(node) && electorate.buckets.get(node)?.[bucket] === true;
    this.presentByBucket = Array.from({ length: TARGET_SET_BUCKETS }, (_, bucket) => reports.filter((r) => votesIn(r.nodeName, bucket)).length);
    this.absentByBucket = Array.from({ length: TARGET_SET_BUCKETS }, (_, bucket) => electorate.members.filter((node) => !votesIn(node, bucket)));
  }

  private count(node: string, addresses: ReadonlySet<string>, into: Map<string, number>): void {
    for (const address of addresses) {
      if (!this.electorate.refused.has(address) && inScope(this.electorate, node, address)) into.set(address, (into.get(address) ?? 0) + 1);
    }
  }

  /** Whether some node of this tally lists `address` as unreachable. */
  seenDown(address: string): boolean {
    return this.down.has(address);
  }

  /** Addresses some node of this tally lists as unreachable. */
  downAddresses(): IterableIterator<string> {
    return this.down.keys();
  }

  ballot(address: string): Ballot {
    if (this.electorate.refused.has(address)) return { voters: 0, down: 0 };
    return { voters: this.scoped(address) - (this.unknown.get(address) ?? 0), down: this.down.get(address) ?? 0 };
  }

  /** Nodes of this tally with `address` in scope. */
  private scoped(address: string): number {
    const { ring, replicas } = this.electorate;
    const bucket = bucketOf(address);
    if (!ring) return this.presentByBucket[bucket]!;
    // The ring's owners are members; a voting node outside the membership owns nothing.
    const absent = this.absentByBucket[bucket]!;
    if (absent.length === 0) return replicas;
    // A non-owner usually fails isAssigned after a few dozen scores, an owner after all of them; with
    // many absent nodes, scoring every member once is cheaper.
    if (absent.length * 16 > this.electorate.members.length) {
      const present = new Set(absent);
      return ring.assignees(address).filter((node) => !present.has(node)).length;
    }
    return replicas - absent.filter((node) => ring.isAssigned(address, node)).length;
  }
}
