// Node reports -> the disconnected addresses of each ServiceImport (the controller's decision).
// Pure: the controller passes what it observed and the previous decision; see docs/adr/0002.
import type { Quorum } from '../config/config.js';
import { rendezvous } from './rendezvous.js';
import type { ProbeReportSpec, ServiceImportKey } from './types.js';

export interface AggregateInput {
  reports: readonly ProbeReportSpec[];
  now: Date;
  /** A report whose heartbeat is older than this no longer counts. */
  staleAfterMs: number;
  /** How many of an address's voters must see it unreachable: one, more than half, or all (default majority). */
  quorum: Quorum;
  /** 0..1: at most floor(share × addresses) of one ServiceImport are disconnected (default 0.5). */
  maxEjectionShare: number;
  /** Every ServiceImport with all its target addresses (pruned ones included). */
  serviceImports: ReadonlyArray<{ key: ServiceImportKey; addresses: readonly string[] }>;
  /** The previous result per ServiceImport, kept for addresses no live report covers. */
  previous: ReadonlyMap<ServiceImportKey, ReadonlySet<string>>;
}

export interface Verdict {
  /** The addresses to publish in `kosmos.io/disconnected-address` and prune. */
  disconnected: Set<string>;
  /** Addresses the quorum found unreachable that the ejection cap keeps connected, sorted. */
  heldBack: string[];
  /** Addresses no live report covers (their previous state is kept), sorted. */
  uncovered: string[];
}

/** Whether a report counts: its heartbeat is at most `staleAfterMs` old (or in the future: clock skew). */
export function isLive(report: ProbeReportSpec, now: Date, staleAfterMs: number): boolean {
  const heartbeat = Date.parse(report.heartbeatTime);
  return Number.isFinite(heartbeat) && now.getTime() - heartbeat <= staleAfterMs;
}

function liveReports(reports: readonly ProbeReportSpec[], now: Date, staleAfterMs: number): ProbeReportSpec[] {
  return reports.filter((r) => !r.suspect && isLive(r, now, staleAfterMs));
}

function nodeNames(reports: readonly ProbeReportSpec[]): string[] {
  return [...new Set(reports.map((r) => r.nodeName))].sort();
}

/**
 * The reports that count, for votes and for sharding alike: those of agents running the configuration
 * in force. Reports list only unreachable addresses, so an agent with other filters would otherwise
 * count as a "reachable" vote for addresses it never probes (ADR 0002).
 */
export function onConfiguration<T extends Pick<ProbeReportSpec, 'configVersion'>>(reports: readonly T[], configVersion: string): T[] {
  return reports.filter((report) => report.configVersion === configVersion);
}

/**
 * The agents that take part in sharding: nodes of live, non-suspect reports, sorted. Agents and the
 * controller must both use this rule (an agent adding itself), or they disagree on who probes what.
 */
export function liveMembers(reports: readonly ProbeReportSpec[], now: Date, staleAfterMs: number): string[] {
  return nodeNames(liveReports(reports, now, staleAfterMs));
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
}

function quorumReached(quorum: Quorum, unreachable: number, voters: number): boolean {
  if (quorum === 'any') return unreachable >= 1;
  if (quorum === 'majority') return unreachable * 2 > voters;
  return unreachable === voters;
}

type AddressState = 'unreachable' | 'reachable' | 'uncovered';

/**
 * Counts, per address, the voters (live reports assigned to it) and those seeing it unreachable.
 * Unreachable votes are counted from each report's (short) list, not by asking every report about
 * every address, and the voter count needs no hashing in the usual case of a single probeReplicas
 * value: 1,000 nodes × 100k addresses would otherwise cost seconds per round.
 */
function tallyVotes(voters: readonly ProbeReportSpec[]): (address: string) => { voters: number; down: number } {
  const members = nodeNames(voters);
  // One group per probeReplicas value: a single one unless a config change is rolling out.
  const groups = [...Map.groupBy(voters, (r) => r.probeReplicas)].map(([replicas, reports]) => {
    // No ring: every member probes every address.
    const ring = replicas === 0 || replicas >= members.length ? undefined : rendezvous(members, replicas);
    const nodes = new Set(reports.map((r) => r.nodeName));
    const down = new Map<string, number>();
    for (const report of reports) {
      for (const address of new Set(report.serviceImports.flatMap((s) => s.unreachable))) {
        if (!ring || ring.isAssigned(address, report.nodeName)) down.set(address, (down.get(address) ?? 0) + 1);
      }
    }
    const votersOf = (address: string): number => {
      if (!ring) return nodes.size;
      if (nodes.size === members.length) return replicas; // every owner is in this group
      return ring.assignees(address).filter((owner) => nodes.has(owner)).length;
    };
    return { down, votersOf };
  });
  return (address) => {
    let count = 0;
    let down = 0;
    for (const group of groups) {
      count += group.votersOf(address);
      down += group.down.get(address) ?? 0;
    }
    return { voters: count, down };
  };
}

/**
 * Decides each ServiceImport's disconnected set. Voters for an address: live, non-suspect reports
 * whose node is assigned the address by rendezvous hashing over `liveMembers` with the report's own
 * `probeReplicas` (0: every node). A voter votes unreachable when any of its ServiceImport entries
 * lists the address (reachability belongs to the address, whichever ServiceImport the node filed it
 * under). No voter: the previous state is kept. Then the ejection cap keeps previously disconnected
 * addresses first, then the others by address order, and holds back the rest.
 * @throws TypeError naming a bad option.
 */
export function aggregate(input: AggregateInput): Map<ServiceImportKey, Verdict> {
  validate(input);
  const tally = tallyVotes(liveReports(input.reports, input.now, input.staleAfterMs));
  const states = new Map<string, AddressState>();
  const stateOf = (address: string): AddressState => {
    let state = states.get(address);
    if (state !== undefined) return state;
    const { voters, down } = tally(address);
    state = voters === 0 ? 'uncovered' : quorumReached(input.quorum, down, voters) ? 'unreachable' : 'reachable';
    states.set(address, state);
    return state;
  };

  const result = new Map<ServiceImportKey, Verdict>();
  for (const { key, addresses } of input.serviceImports) {
    const all = [...new Set(addresses)];
    const previous = input.previous.get(key) ?? new Set<string>();
    const uncovered: string[] = [];
    const candidates: string[] = [];
    for (const address of all) {
      const state = stateOf(address);
      if (state === 'uncovered') uncovered.push(address);
      if (state === 'unreachable' || (state === 'uncovered' && previous.has(address))) candidates.push(address);
    }
    // The epsilon keeps e.g. 0.29 × 100 (= 28.999…96 in floating point) at 29.
    const cap = Math.floor(input.maxEjectionShare * all.length + 1e-9);
    candidates.sort((a, b) => Number(previous.has(b)) - Number(previous.has(a)) || (a < b ? -1 : a > b ? 1 : 0));
    result.set(key, {
      disconnected: new Set(candidates.slice(0, cap)),
      heldBack: candidates.slice(cap).sort(),
      uncovered: uncovered.sort(),
    });
  }
  return result;
}
