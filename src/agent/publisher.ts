// Writes this node's ProbeReport: when the view changes, and otherwise once per heartbeat period.
// A steady state costs one write per heartbeat, none per probe round.
import type { Counter, Registry } from 'prom-client';
import type { ProbeReportSpec, ProbeStats, TargetRtt } from '../contract/probe-report.js';
import type { ReportWriter } from '../kube/report-writer.js';
import { statusCodeOf } from '../kube/resources.js';
import type { Logger } from '../log.js';
import { METRIC_PREFIX, counterIn } from '../metrics.js';
import { sameView, type NodeView } from '../report/view.js';

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
  private readonly writes: Counter<'reason' | 'result'>;

  constructor(
    private readonly writer: ReportWriter,
    private readonly nodeName: string,
    private readonly deps: { logger: Logger; registry: Registry },
  ) {
    this.writes = counterIn(deps.registry, {
      name: `${METRIC_PREFIX}report_writes_total`,
      help: 'ProbeReport writes by reason (change, heartbeat, create) and result (success, error).',
      labelNames: ['reason', 'result'],
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
      await this.writer.put(spec);
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
}
