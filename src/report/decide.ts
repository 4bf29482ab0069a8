// One decision from the reports, the same for the leading controller, a standby replica and the
// `status` command: which reports count and why not, then aggregate() over those that do.
import type { ServiceImportKey } from '../contract/kosmos.js';
import type { ProbeReportSpec } from '../contract/probe-report.js';
import { aggregate, isLive, onConfiguration, type Aggregation, type Quorum } from './aggregate.js';
import { partitionReports, ringMembers, type InvalidReport, type NamedReport } from './validity.js';

/** The settings a decision reads; the configuration (src/config) has this shape. */
export interface DecisionSettings {
  controller: { quorum: Quorum; maxEjectionShare: number; reportStaleAfterMs: number };
  selfIsolationShare: number;
  probeReplicas: number;
}

export interface DecisionInput {
  reports: readonly NamedReport[];
  /** Unset: not checked (the `status` command does not list Nodes). */
  nodeExists?: (name: string) => boolean;
  now: Date;
  /** Version of the configuration in force: reports of another one do not vote. */
  configVersion: string;
  settings: DecisionSettings;
  /** Every ServiceImport with all its target addresses (pruned ones included). */
  serviceImports: ReadonlyArray<{ key: ServiceImportKey; addresses: readonly string[] }>;
  /** Addresses the allow-list refuses: no agent probes them. */
  refused: ReadonlySet<string>;
  /** The previous decision per ServiceImport: its published annotation. */
  previous: ReadonlyMap<ServiceImportKey, ReadonlySet<string>>;
}

export interface Decision extends Aggregation {
  /** The reports that may vote (before staleness, configuration and isolation). */
  valid: ProbeReportSpec[];
  /** The reports that may not, with the reason. */
  invalid: InvalidReport[];
}

export function decide(input: DecisionInput): Decision {
  const { now, configVersion, settings } = input;
  const staleAfterMs = settings.controller.reportStaleAfterMs;
  const { valid, invalid, ring } = partitionReports(input.reports, { now, nodeExists: input.nodeExists });
  const { verdicts, isolated } = aggregate({
    reports: onConfiguration(valid, configVersion),
    now,
    staleAfterMs,
    quorum: settings.controller.quorum,
    maxEjectionShare: settings.controller.maxEjectionShare,
    selfIsolationShare: settings.selfIsolationShare,
    probeReplicas: settings.probeReplicas,
    // As the agents compute it: a report that is not counted for another reason (its Node is
    // unknown, its node isolated) still places its node on the ring.
    members: ringMembers(ring, { now, configVersion, staleAfterMs }),
    serviceImports: input.serviceImports,
    refused: input.refused,
    previous: input.previous,
  });
  return { verdicts, isolated, valid, invalid };
}

/** Whether a node's report counts: `invalid` (partitionReports), then these in this order. */
export type NodeState = 'live' | 'suspect' | 'stale' | 'other-config' | 'invalid';

/** The state of a valid report, with why it does not vote when it does not. */
export function reportState(
  spec: ProbeReportSpec,
  context: { now: Date; staleAfterMs: number; configVersion: string; isolated: ReadonlyMap<string, string> },
): { state: Exclude<NodeState, 'invalid'>; reason?: string } {
  if (!isLive(spec, context.now, context.staleAfterMs)) return { state: 'stale', reason: `no heartbeat since ${spec.heartbeatTime}` };
  if (spec.configVersion !== context.configVersion) return { state: 'other-config', reason: `runs configuration ${spec.configVersion}, not ${context.configVersion}` };
  const isolation = context.isolated.get(spec.nodeName);
  if (isolation !== undefined) return { state: 'suspect', reason: `isolated: the node ${isolation}` };
  return { state: 'live' };
}
