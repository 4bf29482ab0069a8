// The ProbeReport CRD (group epsprobe.kosmos.io): written by the agent, read by the controller.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

export const REPORT_GROUP = 'epsprobe.kosmos.io';
export const REPORT_VERSION = 'v1alpha1';
export const REPORT_PLURAL = 'probereports';
export const REPORT_KIND = 'ProbeReport';

/** One ServiceImport as a node reports it: the addresses it cannot reach or has no verdict for. */
export interface ReportedServiceImport {
  namespace: string;
  name: string;
  /** Addresses this node judged unreachable (canonical, sorted). */
  unreachable: string[];
  /** Addresses this node probes but has no verdict for yet (sorted; absent when none): no vote either way. */
  unknown?: string[];
}

/** The last round-trip time of one target, in milliseconds. */
export interface TargetRtt {
  address: string;
  rttMs: number;
}

/** spec of a ProbeReport: one node's view. */
export interface ProbeReportSpec {
  nodeName: string;
  agentVersion: string;
  /** RFC 3339. */
  heartbeatTime: string;
  heartbeatPeriodSeconds: number;
  /** Digest of the configuration in force (configVersion()). */
  configVersion: string;
  probeReplicas: number;
  /**
   * With probeReplicas > 0: digest of the sharding members the agent assigned its targets over
   * (membersDigest()); empty otherwise.
   */
  membersDigest?: string;
  /**
   * Digest of every address the agent would probe before sharding (allow-list applied), per hash
   * bucket (targetSetDigest()): the controller counts the node as a voter only for addresses of
   * buckets where this equals its own digest, i.e. where the node knows the same addresses.
   */
  targetSetDigest?: string;
  targetsProbed: number;
  /** Targets with a verdict (reachable or unreachable): those the node votes on. */
  targetsJudged?: number;
  unreachableCount: number;
  /** The agent's own hint: more than selfIsolationShare of its judged targets are unreachable. */
  suspect: boolean;
  suspectReason?: string;
  /** Per ServiceImport with unreachable or unknown addresses; every other judged address is reachable. */
  serviceImports: ReportedServiceImport[];
  /** For people, not votes: last RTTs of at most MAX_REPORTED_RTTS answering targets (src/report/rtt.ts). */
  targetRtts?: TargetRtt[];
  /** For people, not votes: the node's probe rate and lateness since its previous write. */
  probeStats?: ProbeStats;
}

export interface ProbeStats {
  /** Probes started per second. */
  probesPerSecond: number;
  /** How late, on average, those probes started after their planned time (ms). */
  meanLatenessMs: number;
}

/** A ProbeReport object, as the agent writes it and agent and controller read it back. */
export interface ProbeReport extends KubernetesObject {
  apiVersion: `${typeof REPORT_GROUP}/${typeof REPORT_VERSION}`;
  kind: typeof REPORT_KIND;
  /** `ownerReferences`: the report's Node, so that the garbage collector deletes the report with it. */
  metadata: V1ObjectMeta & { name: string };
  spec: ProbeReportSpec;
}
