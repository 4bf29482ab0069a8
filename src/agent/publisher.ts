// Writes this node's ProbeReport: when the view changes, and otherwise once per heartbeat period.
// A steady state costs one write per heartbeat, none per probe round.
import * as k8s from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { statusCodeOf } from '../kube/resources.js';
import { METRIC_PREFIX } from '../metrics.js';
import { sameView, type NodeView } from '../report/view.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_PLURAL, REPORT_VERSION, type ProbeReport, type ProbeReportSpec, type ProbeStats, type TargetRtt } from '../contract/probe-report.js';

type OwnerReference = NonNullable<ProbeReport['metadata']['ownerReferences']>[number];

/** What the agent knows besides the view. */
export interface ReportContext {
  agentVersion: string;
  configVersion: string;
  probeReplicas: number;
  heartbeatPeriodMs: number;
  /** Read at each write (heartbeats included) and published with it, never a reason to write. */
  targetRtts?: () => TargetRtt[] | undefined;
  /** Likewise: the probe rate and lateness since the previous write. */
  probeStats?: () => ProbeStats | undefined;
}

export class ReportPublisher {
  /** Last spec written successfully (heartbeat time included). */
  private written?: ProbeReportSpec;
  private pending?: { view: NodeView; context: ReportContext };
  private heartbeatTimer?: NodeJS.Timeout;
  private inFlight: Promise<void> = Promise.resolve();
  private stopped = false;
  private refusal?: unknown;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  /** The owner reference to this node's Node, read once before the first write; undefined when unreadable. */
  private owner?: Promise<OwnerReference | undefined>;
  private readonly writes: Counter<'reason' | 'result'>;

  constructor(
    kc: k8s.KubeConfig,
    private readonly nodeName: string,
    private readonly deps: { logger: Logger; registry: Registry },
  ) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.writes = new Counter({
      name: `${METRIC_PREFIX}report_writes_total`,
      help: 'ProbeReport writes by reason (change, heartbeat, create) and result (success, error).',
      labelNames: ['reason', 'result'],
      registers: [deps.registry],
    });
  }

  /** The refusal (401/403) of the very first write, if it was refused: such an agent can publish nothing. */
  get firstWriteRefusal(): unknown {
    return this.refusal;
  }

  /** The report as last written, if any. */
  get lastWritten(): ProbeReportSpec | undefined {
    return this.written;
  }

  /** Publishes `view` if it differs from what was written; otherwise waits for the heartbeat. */
  update(view: NodeView, context: ReportContext): Promise<void> {
    this.pending = { view, context };
    return this.flush(false);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.heartbeatTimer);
  }

  private flush(heartbeat: boolean): Promise<void> {
    // Writes are serialised: the latest view wins, none is written twice.
    this.inFlight = this.inFlight.then(() => this.write(heartbeat));
    return this.inFlight;
  }

  private async write(heartbeat: boolean): Promise<void> {
    // After a refused first write the agent stops (start-up fails on it): nothing more goes out.
    if (this.stopped || !this.pending || this.refusal !== undefined) return;
    const { view, context } = this.pending;
    const spec: ProbeReportSpec = {
      nodeName: this.nodeName,
      agentVersion: context.agentVersion,
      heartbeatTime: new Date().toISOString(),
      heartbeatPeriodSeconds: Math.round(context.heartbeatPeriodMs / 1000),
      configVersion: context.configVersion,
      probeReplicas: context.probeReplicas,
      ...view,
      targetRtts: context.targetRtts?.(),
    };
    const previous = this.written;
    const forPeople = { targetRtts: undefined, probeStats: undefined };
    const unchanged = previous !== undefined && sameView({ ...previous, ...forPeople }, { ...spec, ...forPeople });
    if (unchanged && !heartbeat) return;
    spec.probeStats = context.probeStats?.();
    const reason = previous === undefined ? 'create' : unchanged ? 'heartbeat' : 'change';
    try {
      await this.put(spec);
      this.written = spec;
      this.writes.inc({ reason, result: 'success' });
      if (reason !== 'heartbeat') {
        this.deps.logger.info({ unreachable: spec.unreachableCount, targets: spec.targetsProbed, suspect: spec.suspect, reason }, 'report written');
      }
    } catch (err) {
      this.writes.inc({ reason, result: 'error' });
      const code = statusCodeOf(err);
      if (previous === undefined && (code === 401 || code === 403)) this.refusal ??= err;
      this.deps.logger.warn({ err, reason }, 'report write failed; retrying at the next change or heartbeat');
      this.scheduleHeartbeat(Math.min(5000, context.heartbeatPeriodMs));
      return;
    }
    this.scheduleHeartbeat(context.heartbeatPeriodMs);
  }

  private scheduleHeartbeat(delayMs: number): void {
    clearTimeout(this.heartbeatTimer);
    if (this.stopped) return;
    this.heartbeatTimer = setTimeout(() => void this.flush(true), delayMs);
    this.heartbeatTimer.unref();
  }

  /**
   * The report belongs to its Node: where the garbage collector runs, it goes with the Node. A Node
   * that cannot be read (no RBAC `get nodes`, say) costs only the reference, never the report: the
   * controller also deletes reports of Nodes that are gone.
   */
  private nodeOwner(): Promise<OwnerReference | undefined> {
    this.owner ??= this.core.readNode({ name: this.nodeName }).then(
      (node) => ({ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid: node.metadata!.uid! }),
      (err: unknown) => {
        this.deps.logger.warn({ err, node: this.nodeName }, 'cannot read this node\'s Node object: the report is published without an owner reference');
        return undefined;
      },
    );
    return this.owner;
  }

  /** Merge-patches the whole spec (only this agent writes it), creating the report when missing. */
  private async put(spec: ProbeReportSpec): Promise<void> {
    const owner = await this.nodeOwner();
    const ownerReferences = owner ? [owner] : undefined;
    // Absent optional fields are sent as null so that a merge patch removes them.
    const patchSpec = { ...spec, suspectReason: spec.suspectReason ?? null, targetRtts: spec.targetRtts ?? null, probeStats: spec.probeStats ?? null };
    try {
      await this.custom.patchClusterCustomObject(
        { group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, name: this.nodeName, body: { metadata: { ownerReferences }, spec: patchSpec } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (statusCodeOf(err) !== 404) throw err;
      const body: ProbeReport = {
        apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`,
        kind: REPORT_KIND,
        metadata: { name: this.nodeName, ownerReferences },
        spec,
      };
      await this.custom.createClusterCustomObject({ group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, body });
    }
  }
}
