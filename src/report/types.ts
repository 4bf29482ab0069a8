// Shapes shared by the agent (writer of reports) and the controller (reader): the ProbeReport CRD
// and the keys of the Kosmos contract (shared/CONTRACT.md).

export const ANNOTATION_ADDRESS = 'kosmos.io/address';
export const ANNOTATION_DISCONNECTED = 'kosmos.io/disconnected-address';
export const ANNOTATION_SERVICE_IMPORT = 'kosmos.io/service-import';
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_MCS_SERVICE_NAME = 'multicluster.kubernetes.io/service-name';
/** Ours, on a synced EndpointSlice: what the controller pruned, so it can restore it exactly. */
export const ANNOTATION_PRUNED = 'epsprobe.kosmos.io/pruned-endpoints';

export const REPORT_GROUP = 'epsprobe.kosmos.io';
export const REPORT_VERSION = 'v1alpha1';
export const REPORT_PLURAL = 'probereports';
export const REPORT_KIND = 'ProbeReport';

/** `namespace/name` of a ServiceImport. */
export type ServiceImportKey = string;

export interface ServiceImportView {
  namespace: string;
  name: string;
  /** Addresses this node sees unreachable (canonical, sorted). */
  unreachable: string[];
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
  /** resourceVersion of the ConfigMap whose configuration is in force (`default` when none). */
  configVersion: string;
  probeReplicas: number;
  targetsProbed: number;
  unreachableCount: number;
  suspect: boolean;
  suspectReason?: string;
  serviceImports: ServiceImportView[];
  /** For people, not votes: last RTTs of at most MAX_REPORTED_RTTS answering targets (src/report/rtt.ts). */
  targetRtts?: TargetRtt[];
}

export interface ProbeReport {
  apiVersion: `${typeof REPORT_GROUP}/${typeof REPORT_VERSION}`;
  kind: typeof REPORT_KIND;
  /** `ownerReferences`: the report's Node, so that the garbage collector deletes the report with it. */
  metadata: { name: string; resourceVersion?: string; uid?: string; ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string }> };
  spec: ProbeReportSpec;
}
