// Which ProbeReports may vote at all, before staleness, suspicion and configuration are looked at.
// A report speaks for one node: the node it is named after (the admission policy of the manifest
// makes an agent's token write only that one). Since report names are unique, one node then has at
// most one vote, and reports for names that are no Node, or copies carrying another node's
// `spec.nodeName`, count for nothing. See docs/adr/0004 ("Which reports count").
import { liveMembers, onConfiguration } from './aggregate.js';
import type { ProbeReportSpec } from '../contract/probe-report.js';

/** A heartbeat further ahead of the reader's clock than this is not clock skew but a forged "forever live". */
export const MAX_HEARTBEAT_SKEW_MS = 30_000;

export type InvalidReportReason = 'no-node' | 'malformed' | 'name-mismatch' | 'future-heartbeat';

/** Every reason, for metrics that must show each one (a fixed set: bounded label values). */
export const INVALID_REPORT_REASONS: readonly InvalidReportReason[] = ['no-node', 'malformed', 'name-mismatch', 'future-heartbeat'];

/** The parts of a ProbeReport object the rule reads. */
export interface NamedReport {
  metadata: { name: string };
  spec?: ProbeReportSpec;
}

export interface InvalidReport {
  /** metadata.name of the report. */
  name: string;
  reason: InvalidReportReason;
  /** What is wrong, for a log line. */
  detail: string;
}

export interface ValidityOptions {
  now: Date;
  /**
   * Whether a Node of this name exists. Unset: not checked (agents do not watch Nodes; the
   * controller does, and deletes the reports of Nodes that are gone).
   */
  nodeExists?: (name: string) => boolean;
}

/** What is wrong with `report` besides its Node's existence, or undefined when nothing is. */
function specProblem(report: NamedReport, now: Date): InvalidReport | undefined {
  const { name } = report.metadata;
  const spec = report.spec;
  const heartbeat = Date.parse(spec?.heartbeatTime ?? '');
  if (typeof spec?.nodeName !== 'string' || !Array.isArray(spec.serviceImports) || !Number.isFinite(heartbeat)) {
    return { name, reason: 'malformed', detail: 'spec lacks nodeName, serviceImports or a valid heartbeatTime' };
  }
  if (spec.nodeName !== name) {
    return { name, reason: 'name-mismatch', detail: `spec.nodeName ${JSON.stringify(spec.nodeName)} differs from the report's name` };
  }
  if (heartbeat - now.getTime() > MAX_HEARTBEAT_SKEW_MS) {
    return { name, reason: 'future-heartbeat', detail: `heartbeatTime ${spec.heartbeatTime} is more than ${MAX_HEARTBEAT_SKEW_MS / 1000} s ahead` };
  }
  return undefined;
}

export interface PartitionedReports {
  /** The specs that may vote (one per node). */
  valid: ProbeReportSpec[];
  /** The others, each with its reason. */
  invalid: InvalidReport[];
  /** The specs valid but for their Node's existence: candidates for the sharding ring (agents do not watch Nodes). */
  ring: ProbeReportSpec[];
}

/** Splits reports into those that may vote and the invalid ones with their reason, in one pass. */
export function partitionReports(reports: readonly NamedReport[], options: ValidityOptions): PartitionedReports {
  const partitioned: PartitionedReports = { valid: [], invalid: [], ring: [] };
  for (const report of reports) {
    const problem = specProblem(report, options.now);
    if (!problem) partitioned.ring.push(report.spec!);
    const name = report.metadata.name;
    // The controller deletes the reports of names that are no Node, whatever else is wrong with them.
    if (options.nodeExists && !options.nodeExists(name)) partitioned.invalid.push({ name, reason: 'no-node', detail: `no Node named ${JSON.stringify(name)}` });
    else if (problem) partitioned.invalid.push(problem);
    else partitioned.valid.push(report.spec!);
  }
  return partitioned;
}

/**
 * The nodes that share the targets when probeReplicas > 0, computed alike by agents and controller:
 * live reports on the configuration in force that pass every validity check but the Node's existence
 * (agents do not watch Nodes; docs/adr/0004). A report that does not vote for another reason still
 * holds its place, so both sides agree on the ring.
 */
export function shardingMembers(reports: readonly NamedReport[], options: RingOptions): string[] {
  return ringMembers(partitionReports(reports, { now: options.now }).ring, options);
}

export interface RingOptions {
  now: Date;
  configVersion: string;
  staleAfterMs: number;
}

/** shardingMembers() of reports already partitioned: the live ones of `ring` on the configuration in force. */
export function ringMembers(ring: readonly ProbeReportSpec[], options: RingOptions): string[] {
  return liveMembers(onConfiguration(ring, options.configVersion), options.now, options.staleAfterMs);
}
