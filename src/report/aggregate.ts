// Node reports -> the disconnected addresses of each ServiceImport (the controller's decision).
// Pure: the controller passes what it observed and the previous decision; see docs/adr/0002.
import { matchingBuckets, membersDigest, targetSetDigest } from './coverage.js';
import { isolatedNodes } from './isolation.js';
import { rendezvous } from './rendezvous.js';
import { Tally, type Electorate } from './tally.js';
import type { ProbeReportSpec } from '../contract/probe-report.js';
import type { ServiceImportKey } from '../contract/kosmos.js';

/** How many of an address's voters must see it unreachable: one, more than half, or all. */
export const QUORUMS = ['any', 'majority', 'all'] as const;
export type Quorum = (typeof QUORUMS)[number];

export interface AggregateInput {
  /** The reports of agents running the configuration in force (onConfiguration()). */
  reports: readonly ProbeReportSpec[];
  now: Date;
  /** A report whose heartbeat is older than this no longer counts. */
  staleAfterMs: number;
  /** How many of an address's voters must see it unreachable: one, more than half, or all (default majority). */
  quorum: Quorum;
  /** 0..1: at most floor(share × probeable addresses) of one ServiceImport are disconnected (default 0.5). */
  maxEjectionShare: number;
  /** 0..1: the alarm share of the isolation guard (isolatedNodes()); 1 disables the guard. */
  selfIsolationShare: number;
  /** The configuration's probeReplicas; a report with another value runs another configuration and does not vote. */
  probeReplicas: number;
  /**
   * The sharding members as the agents compute them: liveMembers() of the reports on the configuration,
   * before any other filtering of `reports` (a member whose report does not count still owns its
   * share, which then has fewer voters). Default: liveMembers(reports).
   */
  members?: readonly string[];
  /** Every ServiceImport with all its target addresses (pruned ones included). */
  serviceImports: ReadonlyArray<{ key: ServiceImportKey; addresses: readonly string[] }>;
  /** Addresses the configuration's allow-list refuses: no agent probes them, so none votes on them. */
  refused?: ReadonlySet<string>;
  /** The previous result per ServiceImport, kept for addresses without voters. */
  previous: ReadonlyMap<ServiceImportKey, ReadonlySet<string>>;
}

/** Why a previously disconnected address is not disconnected any more. */
export type ReconnectReason =
  /** Its voters see it reachable. */
  | 'reachable'
  /** Some voters still see it unreachable, too few for the quorum. */
  | 'quorum'
  /** Still unreachable by the quorum, but the ejection cap allows fewer disconnected addresses now. */
  | 'capped'
  /** Only nodes the isolation guard ignores see it unreachable. */
  | 'guarded'
  /** No longer an address of the ServiceImport. */
  | 'removed';

/** The aggregation's decision for one ServiceImport. */
export interface ServiceImportVerdict {
  /** The addresses to publish in `kosmos.io/disconnected-address` and prune. */
  disconnected: Set<string>;
  /** Addresses the quorum found unreachable that the ejection cap keeps connected, sorted. */
  ejectionCapped: string[];
  /** Addresses that would reach the quorum only with the votes of nodes the isolation guard ignores, kept connected, sorted. */
  guarded: string[];
  /** Addresses without voters (their previous state is kept), sorted. */
  uncovered: string[];
  /** Addresses of `previous` that are not disconnected any more, with the reason. */
  reconnected: Map<string, ReconnectReason>;
}

export interface Aggregation {
  verdicts: Map<ServiceImportKey, ServiceImportVerdict>;
  /** Nodes whose votes the isolation guard ignores, with the reason. */
  isolated: Map<string, string>;
}

/** Whether a report counts: its heartbeat is at most `staleAfterMs` old (or in the future: clock skew). */
export function isLive(report: ProbeReportSpec, now: Date, staleAfterMs: number): boolean {
  const heartbeat = Date.parse(report.heartbeatTime);
  return Number.isFinite(heartbeat) && now.getTime() - heartbeat <= staleAfterMs;
}

function nodeNames(reports: readonly ProbeReportSpec[]): string[] {
  return [...new Set(reports.map((r) => r.nodeName))].sort();
}

/**
 * The reports that count, for votes and for sharding alike: those of agents running the configuration
 * in force. An agent with other filters or another allow-list probes other addresses.
 */
export function onConfiguration<T extends Pick<ProbeReportSpec, 'configVersion'>>(reports: readonly T[], configVersion: string): T[] {
  return reports.filter((report) => report.configVersion === configVersion);
}

/**
 * The agents that take part in sharding: nodes of live reports, sorted, whatever their isolation:
 * membership must not depend on votes, or an isolated node would leave, stop being judged isolated,
 * and come back. Agents and the controller must both use this rule (an agent adding itself), and
 * each report says which membership its agent used (membersDigest), so a disagreement costs votes,
 * never wrong ones.
 */
export function liveMembers(reports: readonly ProbeReportSpec[], now: Date, staleAfterMs: number): string[] {
  return nodeNames(reports.filter((r) => isLive(r, now, staleAfterMs)));
}

function validate(input: AggregateInput): void {
  if (!(input.staleAfterMs > 0)) {
    throw new TypeError(`staleAfterMs: expected a positive number, got ${input.staleAfterMs}`);
  }
  if (!['any', 'majority', 'all'].includes(input.quorum)) {
    throw new TypeError(`quorum: expected any, majority or all, got ${String(input.quorum)}`);
  }
  if (!(input.maxEjectionShare >= 0 && input.maxEjectionShare <= 1)) {
    throw new TypeError(`maxEjectionShare: expected a number from 0 to 1, got ${input.maxEjectionShare}`);
  }
  if (!(input.selfIsolationShare >= 0 && input.selfIsolationShare <= 1)) {
    throw new TypeError(`selfIsolationShare: expected a number from 0 to 1, got ${input.selfIsolationShare}`);
  }
  if (!Number.isInteger(input.probeReplicas) || input.probeReplicas < 0) {
    throw new TypeError(`probeReplicas: expected a non-negative integer, got ${input.probeReplicas}`);
  }
}

function quorumReached(quorum: Quorum, unreachable: number, voters: number): boolean {
  if (voters === 0) return false;
  if (quorum === 'any') return unreachable >= 1;
  if (quorum === 'majority') return unreachable * 2 > voters;
  return unreachable === voters;
}

type AddressState = 'unreachable' | 'reachable' | 'uncovered';

/**
 * Decides each ServiceImport's disconnected set (docs/adr/0002, "Who votes"). Voters for an address:
 * live, eligible (same probeReplicas; with sharding, the same membership), non-isolated reports that
 * judged it. No voter: the previous state is kept. Then the ejection cap, counted over the probeable
 * addresses (with voters, or previously disconnected), keeps previously disconnected addresses first,
 * then the others by address order, and holds back the rest.
 * @throws TypeError naming a bad option.
 */
export function aggregate(input: AggregateInput): Aggregation {
  validate(input);
  const live = input.reports.filter((r) => isLive(r, input.now, input.staleAfterMs));
  const members = input.members ? [...new Set(input.members)].sort() : nodeNames(live);
  const replicas = input.probeReplicas;
  const sharded = replicas > 0 && replicas < members.length;
  const expectedMembers = membersDigest(members);
  const eligible = live.filter((r) => r.probeReplicas === replicas && (replicas === 0 || r.membersDigest === expectedMembers));
  const refused = input.refused ?? new Set<string>();
  const known = new Set(input.serviceImports.flatMap((s) => s.addresses).filter((a) => !refused.has(a)));
  const expectedTargets = targetSetDigest(known);
  const electorate: Electorate = {
    members,
    replicas,
    ring: sharded ? rendezvous(members, replicas) : undefined,
    buckets: new Map(eligible.map((r) => [r.nodeName, matchingBuckets(r.targetSetDigest, expectedTargets)])),
    refused,
  };
  const isolated = isolatedNodes(live, input.selfIsolationShare);
  const votes = new Tally(eligible.filter((r) => !isolated.has(r.nodeName)), electorate);
  const guardVotes = new Tally(eligible.filter((r) => isolated.has(r.nodeName)), electorate);

  const states = new Map<string, AddressState>();
  const stateOf = (address: string): AddressState => {
    let state = states.get(address);
    if (state !== undefined) return state;
    const { voters, down } = votes.ballot(address);
    state = voters === 0 ? 'uncovered' : quorumReached(input.quorum, down, voters) ? 'unreachable' : 'reachable';
    states.set(address, state);
    return state;
  };
  // Addresses the quorum would find unreachable if the isolated nodes' votes counted.
  const guardedAll = new Set<string>();
  for (const address of guardVotes.downAddresses()) {
    if (stateOf(address) === 'unreachable') continue;
    const kept = votes.ballot(address);
    const ignored = guardVotes.ballot(address);
    if (quorumReached(input.quorum, kept.down + ignored.down, kept.voters + ignored.voters)) guardedAll.add(address);
  }

  const verdicts = new Map<ServiceImportKey, ServiceImportVerdict>();
  for (const { key, addresses } of input.serviceImports) {
    const all = [...new Set(addresses)];
    const previous = input.previous.get(key) ?? new Set<string>();
    const uncovered: string[] = [];
    const candidates: string[] = [];
    let probeable = 0;
    for (const address of all) {
      const state = stateOf(address);
      if (state === 'uncovered') uncovered.push(address);
      if (state !== 'uncovered' || previous.has(address)) probeable++;
      if (state === 'unreachable' || (state === 'uncovered' && previous.has(address))) candidates.push(address);
    }
    // The epsilon keeps e.g. 0.29 × 100 (= 28.999…96 in floating point) at 29.
    const cap = Math.floor(input.maxEjectionShare * probeable + 1e-9);
    candidates.sort((a, b) => Number(previous.has(b)) - Number(previous.has(a)) || (a < b ? -1 : a > b ? 1 : 0));
    const disconnected = new Set(candidates.slice(0, cap));
    const isCandidate = new Set(candidates);
    const guarded = all.filter((a) => guardedAll.has(a) && !isCandidate.has(a)).sort();
    const present = new Set(all);
    const reconnected = new Map<string, ReconnectReason>();
    for (const address of previous) {
      if (disconnected.has(address)) continue;
      const reason: ReconnectReason = !present.has(address)
        ? 'removed'
        : isCandidate.has(address)
          ? 'capped'
          : guardedAll.has(address)
            ? 'guarded'
            : votes.seenDown(address)
              ? 'quorum'
              : 'reachable';
      reconnected.set(address, reason);
    }
    verdicts.set(key, { disconnected, ejectionCapped: candidates.slice(cap).sort(), guarded, uncovered: uncovered.sort(), reconnected });
  }
  return { verdicts, isolated };
}
