// The status model's inputs, read from the objects the controller caches (or the `status` command
// lists): ProbeReports -> node observations, ServiceImports + synced slices -> what each ServiceImport
// holds and what was pruned from it, the last decision per ServiceImport. Pure.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { Config } from '../config/config.js';
import { prunedAddresses } from '../report/prune.js';
import { parseAddressList } from '../contract/addresses.js';
import type { Aggregation } from '../report/aggregate.js';
import { decide as decideFromReports, reportState, type NodeState } from '../report/decide.js';
import { refusedAddresses } from '../report/coverage.js';
import { addressesByServiceImport, buildTargets, indexSyncedSlices, namespaceAllowed } from '../report/targets.js';
import { ANNOTATION_DISCONNECTED, type ServiceImport, type ServiceImportKey } from '../contract/kosmos.js';
import type { ProbeReportSpec } from '../contract/probe-report.js';
import { partitionReports, type NamedReport } from '../report/validity.js';

export type { NodeState };

/** One node as its report shows it. Only `unreachable` is required of a report: the rest is optional. */
export interface NodeObservation {
  name: string;
  state: NodeState;
  /** Why the node does not vote (suspect, stale, invalid), for people. */
  reason?: string;
  configVersion?: string;
  agentVersion?: string;
  heartbeatTime?: string;
  /** The report's probeReplicas (0: the node probes every target). */
  probeReplicas: number;
  targetsProbed?: number;
  /** Addresses the node judged unreachable. */
  unreachable: ReadonlySet<string>;
  /** Addresses the node probes but has no verdict for: no vote either way. */
  unjudged?: ReadonlySet<string>;
  /** Probes started per second and their mean lateness (ms) between the report's last two writes. */
  probesPerSecond?: number;
  meanLatenessMs?: number;
  /** Last round-trip time per address, for the addresses the report carries one for. */
  rttMs?: ReadonlyMap<string, number>;
}

/** One ServiceImport: its target addresses and what is published and pruned for it. */
export interface ServiceImportObservation {
  namespace: string;
  name: string;
  /** Every target address (slices, `kosmos.io/address`, pruned endpoints), sorted. */
  addresses: readonly string[];
  /** `kosmos.io/disconnected-address` as found on the object. */
  published: ReadonlySet<string>;
  /** Addresses our record says were pruned from its synced slices and that none of them holds now. */
  pruned: ReadonlySet<string>;
}

export interface ReportContext {
  now: Date;
  /** Version of the configuration in force: reports of another one do not vote. */
  configVersion: string;
  staleAfterMs: number;
  /** Unset: not checked (the `status` command does not list Nodes). */
  nodeExists?: (name: string) => boolean;
}

function observation(spec: ProbeReportSpec, state: NodeState, reason?: string): NodeObservation {
  const rtts = spec.targetRtts;
  return {
    ...(rtts && { rttMs: new Map(rtts.map((rtt) => [rtt.address, rtt.rttMs])) }),
    name: spec.nodeName,
    state,
    reason,
    configVersion: spec.configVersion,
    agentVersion: spec.agentVersion,
    heartbeatTime: spec.heartbeatTime,
    probeReplicas: spec.probeReplicas,
    targetsProbed: spec.targetsProbed,
    ...(spec.probeStats && { probesPerSecond: spec.probeStats.probesPerSecond, meanLatenessMs: spec.probeStats.meanLatenessMs }),
    unreachable: new Set(spec.serviceImports.flatMap((view) => view.unreachable)),
    unjudged: new Set(spec.serviceImports.flatMap((view) => view.unknown ?? [])),
  };
}

/**
 * The state of each node, by the controller's rules (validity, staleness, configuration, isolation),
 * sorted by name. `isolated`: the nodes whose votes the isolation guard ignores, with the reason.
 */
export function observeReports(reports: readonly NamedReport[], context: ReportContext, isolated: ReadonlyMap<string, string>): NodeObservation[] {
  const { valid, invalid } = partitionReports(reports, { now: context.now, nodeExists: context.nodeExists });
  const nodes = valid.map((spec): NodeObservation => {
    const { state, reason } = reportState(spec, { ...context, isolated });
    return observation(spec, state, reason);
  });
  for (const problem of invalid) {
    nodes.push({ name: problem.name, state: 'invalid', reason: `${problem.reason}: ${problem.detail}`, probeReplicas: 0, unreachable: new Set() });
  }
  return nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The ServiceImport objects and slices as this module reads them. */
export interface ServiceImportSources {
  serviceImports: readonly ServiceImport[];
  slices: readonly V1EndpointSlice[];
  namespaces: Config['namespaces'];
  /** Target addresses per ServiceImport when already known (the controller's last pass); else computed. */
  addresses?: ReadonlyMap<ServiceImportKey, readonly string[]>;
}

/** Every ServiceImport the namespace filter lets in, with its addresses, published and pruned sets. */
export function observeServiceImports(sources: ServiceImportSources): ServiceImportObservation[] {
  const allowed = sources.serviceImports.filter((si) => namespaceAllowed(si.metadata.namespace, sources.namespaces));
  const addresses =
    sources.addresses ?? addressesByServiceImport(buildTargets({ serviceImports: allowed, slices: sources.slices, namespaceFilter: sources.namespaces }).targets);
  const slicesByKey = indexSyncedSlices(sources.slices);
  return allowed.map((si) => {
    const { namespace, name } = si.metadata;
    const key = `${namespace}/${name}`;
    const slices = slicesByKey.get(key) ?? [];
    const present = new Set(slices.flatMap((slice) => (slice.endpoints ?? []).flatMap((endpoint) => endpoint.addresses ?? [])));
    const pruned = new Set(slices.flatMap(prunedAddresses).filter((address) => !present.has(address)));
    return {
      namespace,
      name,
      addresses: [...(addresses.get(key) ?? [])].sort(),
      published: new Set(parseAddressList(si.metadata.annotations?.[ANNOTATION_DISCONNECTED]).addresses),
      pruned,
    };
  });
}

/**
 * The decision per ServiceImport by the controller's own rule, for a reader that has no decision of
 * the leader at hand (the `status` command, a standby replica): the published annotation is the
 * previous decision, as it is for the controller after a restart.
 */
export function decide(input: {
  reports: readonly NamedReport[];
  serviceImports: readonly ServiceImportObservation[];
  config: Config;
  context: ReportContext;
}): Aggregation {
  const { config } = input;
  const { now, nodeExists, configVersion } = input.context;
  const { verdicts, isolated } = decideFromReports({
    reports: input.reports,
    nodeExists,
    now,
    configVersion,
    settings: config,
    serviceImports: input.serviceImports.map((si) => ({ key: `${si.namespace}/${si.name}`, addresses: si.addresses })),
    refused: refusedAddresses(input.serviceImports.flatMap((si) => si.addresses), config.allowCidrs),
    previous: new Map(input.serviceImports.map((si) => [`${si.namespace}/${si.name}`, si.published])),
  });
  return { verdicts, isolated };
}
