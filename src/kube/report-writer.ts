// The agent's one write: its node's ProbeReport, behind a small interface (an in-memory one in the
// unit tests of the agent's publishing).
import * as k8s from '@kubernetes/client-node';
import { REPORT_GROUP, REPORT_KIND, REPORT_PLURAL, REPORT_VERSION, type ProbeReport, type ProbeReportSpec } from '../contract/probe-report.js';
import type { Logger } from '../log.js';
import { statusCodeOf } from './resources.js';

type OwnerReference = NonNullable<ProbeReport['metadata']['ownerReferences']>[number];

/** Failures are thrown as the client does: an error whose `code` is the HTTP status (statusCodeOf). */
export interface ReportWriter {
  /** Makes the node's report hold `spec`, creating the report when missing. */
  put(spec: ProbeReportSpec): Promise<void>;
}

export function apiReportWriter(kc: k8s.KubeConfig, nodeName: string, logger: Logger): ReportWriter {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let owner: Promise<OwnerReference | undefined> | undefined;

  /**
   * The report belongs to its Node: where the garbage collector runs, it goes with the Node. A Node
   * that cannot be read (no RBAC `get nodes`, say) costs only the reference, never the report: the
   * controller also deletes reports of Nodes that are gone. Read once, before the first write.
   */
  function nodeOwner(): Promise<OwnerReference | undefined> {
    owner ??= core.readNode({ name: nodeName }).then(
      (node) => ({ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata!.uid! }),
      (err: unknown) => {
        logger.warn({ err, node: nodeName }, 'cannot read this node\'s Node object: the report is published without an owner reference');
        return undefined;
      },
    );
    return owner;
  }

  return {
    /** Merge-patches the whole spec (only this agent writes it), creating the report when missing. */
    async put(spec) {
      const reference = await nodeOwner();
      const ownerReferences = reference ? [reference] : undefined;
      // Absent optional fields are sent as null so that a merge patch removes them.
      const patchSpec = { ...spec, suspectReason: spec.suspectReason ?? null, targetRtts: spec.targetRtts ?? null, probeStats: spec.probeStats ?? null };
      try {
        await custom.patchClusterCustomObject(
          { group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, name: nodeName, body: { metadata: { ownerReferences }, spec: patchSpec } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      } catch (err) {
        if (statusCodeOf(err) !== 404) throw err;
        const body: ProbeReport = {
          apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`,
          kind: REPORT_KIND,
          metadata: { name: nodeName, ownerReferences },
          spec,
        };
        await custom.createClusterCustomObject({ group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, body });
      }
    },
  };
}
