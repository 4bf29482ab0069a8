// The agent: watch (informers) -> target set -> probe engine -> node view -> ProbeReport.
// Level-triggered: every change recomputes the target set from the caches; the engine applies the
// difference, and the publisher writes only when the view changed (plus heartbeats).
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { probeOptionsOf, type Config } from '../config/config.js';
import { ConfigWatch, type AppliedConfig } from '../config/watch.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_VERSION } from '../contract/probe-report.js';
import { ClusterView, DebouncedPass } from '../kube/cluster-view.js';
import { createEventRecorder, type EventRecorder } from '../kube/events.js';
import { reportRefused } from '../kube/failures.js';
import { apiReportWriter } from '../kube/report-writer.js';
import { ReportedProblems, type Logger } from '../log.js';
import { ProbeEngine } from '../probe/engine.js';
import { targetSetDigest } from '../report/coverage.js';
import { reportedRtts } from '../report/rtt.js';
import type { NodeView } from '../report/view.js';
import { shardingMembers } from '../report/validity.js';
import { VERSION } from '../version.js';
import { agentMetrics, type AgentMetrics } from './metrics.js';
import { planTargets, planView } from './plan.js';
import { ProbeStatsMeter } from './probe-stats.js';
import { ReportPublisher } from './publisher.js';
import { starvationRule } from './starvation.js';
import { StarvationWatch } from './starvation-watch.js';

export interface AgentOptions {
  nodeName: string;
  /** Namespace and name of the ConfigMap holding `config.yaml`. */
  configNamespace: string;
  configName: string;
  /** The target set is recomputed at most once per this window (DebouncedPass: a burst of events costs two passes at most). */
  debounceMs?: number;
  /** Readiness fails when an informer has not heard from the apiserver for this long. */
  informerStaleMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_INFORMER_STALE_MS = 2 * 60_000;
/** At most one view is published per window of reachability changes. */
const PUBLISH_DEBOUNCE_MS = 20;
/** How often live membership is recomputed (reports age out without any event). */
const MEMBERSHIP_CHECK_MS = 5_000;

export class Agent {
  private readonly view: ClusterView<AppliedConfig, ConfigWatch>;
  private readonly engine: ProbeEngine;
  private readonly publisher: ReportPublisher;
  private readonly events: EventRecorder;
  private readonly logger: Logger;
  private readonly metrics: AgentMetrics;
  private readonly sync: DebouncedPass;
  /**
   * Changes come in bursts (a cut link makes many targets fail together); one view per window keeps
   * snapshot() of 100k targets off the hot path.
   */
  private readonly publish: DebouncedPass;
  private members: string[] = [];
  private membershipTimer?: NodeJS.Timeout;
  private starvation?: StarvationWatch;
  /** Whether the last published view withheld unreachable votes because this agent was starved. */
  private abstaining = false;
  private readonly probeStats = new ProbeStatsMeter();
  private firstRoundDone = false;
  private stopping = false;
  private lastView?: NodeView;
  /** What this node's votes cover (planTargets()). */
  private targetDigest = targetSetDigest([]);
  /** What this node's report said before a restart (planView()). */
  private inheritedUnreachable = new Set<string>();
  /** Invalid inputs: each logged and counted once while it stays in the caches. */
  private readonly reportedInvalid = new ReportedProblems<string>();

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: AgentOptions,
    deps: { logger: Logger; registry: Registry },
  ) {
    this.logger = deps.logger;
    const { registry } = deps;
    this.events = createEventRecorder(kc, { component: 'eps-probe-agent', instance: options.nodeName }, this.logger);
    const config = { namespace: options.configNamespace, name: options.configName };
    this.view = new ClusterView(kc, { informerStaleMs: options.informerStaleMs ?? DEFAULT_INFORMER_STALE_MS }, { logger: this.logger, registry }, (informerMetrics) =>
      new ConfigWatch(kc, config, { logger: this.logger, registry, informerMetrics, events: this.events }),
    );
    this.engine = new ProbeEngine({}, { logger: this.logger, registry });
    const writer = apiReportWriter(kc, options.nodeName, this.logger.child({ subsystem: 'report' }));
    this.publisher = new ReportPublisher(writer, options.nodeName, { logger: this.logger.child({ subsystem: 'report' }), registry });
    this.metrics = agentMetrics(registry);
    this.sync = new DebouncedPass(() => this.syncTargets(), options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.publish = new DebouncedPass(() => this.publishView(), PUBLISH_DEBOUNCE_MS);
  }

  private get applied(): AppliedConfig {
    return this.view.applied;
  }

  private get config(): Config {
    return this.applied.config;
  }

  /** @throws StartupError when the API cannot be used (see StartupRetry) or ICMP is required but unavailable. */
  async start(): Promise<void> {
    this.applyConfig(await this.view.startConfig());
    const started = await this.view.startWatches({
      onConfig: (applied) => {
        try {
          this.applyConfig(applied);
        } catch (err) {
          // The engine keeps its previous probe options (icmpUnavailable: fail without ICMP, say).
          this.logger.error({ err, version: applied.version }, 'probe options of the new configuration not applied; the previous ones stay');
        }
        this.sync.schedule();
      },
      onTargetsChanged: () => this.sync.schedule(),
      onReportChanged: () => this.checkMembership(),
    });
    if (!started) return;
    this.members = this.currentMembers();
    const ownReport = this.view.reports.get(this.options.nodeName)?.spec;
    this.inheritedUnreachable = new Set(ownReport?.serviceImports.flatMap((view) => view.unreachable) ?? []);
    this.syncTargets();
    this.engine.onChange(() => this.publish.schedule());
    await this.engine.start();
    this.membershipTimer = setInterval(() => this.checkMembership(), MEMBERSHIP_CHECK_MS);
    this.membershipTimer.unref();
    this.starvation!.start();
    this.logger.info({ targets: this.engine.snapshot().length }, 'agent started; waiting for the first full round');
    await this.engine.firstRoundComplete();
    this.firstRoundDone = true;
    this.logger.info('first round complete; publishing');
    await this.publishView();
    // An agent whose report is refused (an admission policy, RBAC) can vote nowhere: say so and stop.
    const refusal = this.publisher.firstWriteRefusal;
    if (refusal !== undefined) throw reportRefused(refusal, this.options.nodeName);
  }

  /** Graceful: stop being ready, stop probing, flush the last report write. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sync.stop();
    this.publish.stop();
    clearInterval(this.membershipTimer);
    this.starvation?.stop();
    this.view.stop();
    await this.engine.stop();
    this.publisher.stop();
  }

  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined {
    return this.view.deadWatch(limitMs);
  }

  /** Undefined when ready: caches synced, first round done, watches alive. */
  readiness(): string | undefined {
    return this.view.readiness(() => (this.firstRoundDone ? undefined : 'first probe round not complete'));
  }

  private applyConfig({ config, version }: AppliedConfig): void {
    this.logger.level = config.logLevel;
    this.engine.updateOptions(probeOptionsOf(config));
    if (this.starvation) this.starvation.setRule(starvationRule(config.probe));
    else {
      this.starvation = new StarvationWatch(starvationRule(config.probe), {
        logger: this.logger,
        events: this.events,
        gauge: this.metrics.starved,
        target: this.reportRef(),
        abstains: () => this.config.abstainWhenStarved,
        // A change of abstention is published at once.
        checked: () => {
          if (this.isAbstaining() !== this.abstaining) void this.publishView();
        },
      });
    }
    this.logger.info({ version, interval: config.probe.intervalMs, mode: config.probe.mode, probeReplicas: config.probeReplicas }, 'configuration in force');
  }

  /** Sharding members: live agents by their reports, and always this node. */
  private currentMembers(): string[] {
    const live = shardingMembers(this.view.reports.list(), { now: new Date(), configVersion: this.applied.version, staleAfterMs: this.config.controller.reportStaleAfterMs });
    return [...new Set([...live, this.options.nodeName])].sort();
  }

  private checkMembership(): void {
    if (this.config.probeReplicas === 0) return;
    const members = this.currentMembers();
    if (members.join(',') === this.members.join(',')) return;
    this.logger.info({ members: members.length }, 'sharding membership changed');
    this.members = members;
    this.sync.schedule();
  }

  private syncTargets(): void {
    if (this.stopping) return;
    const plan = planTargets({
      serviceImports: this.view.serviceImports(),
      slices: this.view.slices.list(),
      nodeName: this.options.nodeName,
      members: this.members,
      settings: this.config,
    });
    for (const problem of plan.invalid) {
      if (!this.reportedInvalid.isNew(`${problem.object}\0${problem.value}`)) continue;
      this.metrics.invalidInputs.inc({ kind: problem.object.split(' ')[0] ?? 'unknown' });
      this.logger.warn({ object: problem.object, value: problem.value, reason: problem.reason }, 'invalid address ignored');
    }
    this.reportedInvalid.endPass();
    this.targetDigest = plan.targetDigest;
    const diff = this.engine.setTargets(plan.targets);
    if (diff.added || diff.removed || diff.changed) {
      this.logger.info({ ...diff, refused: diff.refused.length, total: plan.targets.length }, 'target set updated');
    }
    void this.publishView();
  }

  /** Whether this agent abstains from "unreachable" votes now (see src/agent/starvation.ts). */
  private isAbstaining(): boolean {
    return this.config.abstainWhenStarved && (this.starvation?.isStarved() ?? false);
  }

  private publishView(): Promise<void> {
    if (!this.firstRoundDone || this.stopping) return Promise.resolve();
    this.abstaining = this.isAbstaining();
    const view = planView({
      states: this.engine.snapshot(),
      inheritedUnreachable: this.inheritedUnreachable,
      abstaining: this.abstaining,
      members: this.members,
      targetDigest: this.targetDigest,
      settings: this.config,
    });
    this.trackView(view);
    return this.publisher.update(view, {
      agentVersion: VERSION,
      configVersion: this.applied.version,
      probeReplicas: this.config.probeReplicas,
      heartbeatPeriodMs: this.config.heartbeatPeriodMs,
      targetRtts: () => reportedRtts(this.engine.rtts()),
      probeStats: () => this.probeStats.sample(this.engine.probeTotals(), Date.now()),
    });
  }

  /** Metrics, logs and Events about a new view. */
  private trackView(view: NodeView): void {
    const previous = this.lastView;
    this.lastView = view;
    this.metrics.suspect.set(view.suspect ? 1 : 0);
    this.metrics.unreachableByImport.reset();
    for (const si of view.serviceImports) {
      this.metrics.unreachableByImport.set({ namespace: si.namespace, serviceimport: si.name }, si.unreachable.length);
    }
    if (view.suspect && !previous?.suspect) {
      this.logger.warn({ reason: view.suspectReason }, 'node suspects itself: too many targets unreachable at once; the controller ignores its votes unless most other nodes see the same');
      this.events.warning(this.reportRef(), 'NodeSuspect', view.suspectReason ?? 'too many targets unreachable at once');
    } else if (!view.suspect && previous?.suspect) {
      this.logger.info('node no longer suspect');
      this.events.normal(this.reportRef(), 'NodeRecovered', 'share of unreachable targets back under the self-isolation threshold');
    }
  }

  private reportRef() {
    return { apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name: this.options.nodeName };
  }
}
