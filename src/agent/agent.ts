// The agent: watch (informers) -> target set -> probe engine -> node view -> ProbeReport.
// Level-triggered: every change recomputes the target set from the caches; the engine applies the
// difference, and the publisher writes only when the view changed (plus heartbeats).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type * as k8s from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import { probeOptionsOf, type Config } from '../config/config.js';
import { ConfigWatch, type AppliedConfig } from '../config/watch.js';
import { servedServiceImportVersion } from '../kube/discovery.js';
import { createEventRecorder, type EventRecorder } from '../kube/events.js';
import { SupervisedInformer } from '../kube/informer.js';
import { InformerMetrics } from '../kube/informer-metrics.js';
import { endpointSliceInformerSpec, probeReportInformerSpec, serviceImportInformerSpec } from '../kube/resources.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_VERSION, type ProbeReport } from '../contract/probe-report.js';
import type { ServiceImport } from '../contract/kosmos.js';
import { ReportedProblems, type Logger } from '../log.js';
import { METRIC_PREFIX } from '../metrics.js';
import { ProbeEngine } from '../probe/engine.js';
import { membersDigest, refusedAddresses, targetSetDigest } from '../report/coverage.js';
import { rendezvous } from '../report/rendezvous.js';
import { buildTargets, syncedSliceChangeFilter } from '../report/targets.js';
import { reportedRtts } from '../report/rtt.js';
import { buildNodeView, type NodeView } from '../report/view.js';
import { shardingMembers } from '../report/validity.js';
import { VERSION } from '../version.js';
import { reportRefused } from '../kube/failures.js';
import { ReportPublisher } from './publisher.js';
import { ProbeStatsMeter } from './probe-stats.js';
import { StarvationGuard, starvationRule } from './starvation.js';

export interface AgentOptions {
  nodeName: string;
  /** Namespace and name of the ConfigMap holding `config.yaml`. */
  configNamespace: string;
  configName: string;
  /** Recomputing the target set waits this long for more changes (a burst of events costs one pass). */
  debounceMs?: number;
  /** Readiness fails when an informer has not heard from the apiserver for this long. */
  informerStaleMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_INFORMER_STALE_MS = 2 * 60_000;
/** Reachability changes within this window are published as one view. */
const PUBLISH_DEBOUNCE_MS = 20;
/** How often live membership is recomputed (reports age out without any event). */
const MEMBERSHIP_CHECK_MS = 5_000;
/** How often stalls are read; the delay histogram keeps the longest in between. */
const STARVATION_CHECK_MS = 500;
const STALL_RESOLUTION_MS = 10;

export class Agent {
  private readonly informerMetrics: InformerMetrics;
  private readonly slices: SupervisedInformer<k8s.V1EndpointSlice>;
  private readonly reports: SupervisedInformer<ProbeReport>;
  private readonly configWatch: ConfigWatch;
  private readonly engine: ProbeEngine;
  private readonly publisher: ReportPublisher;
  private readonly events: EventRecorder;
  private readonly logger: Logger;
  private applied!: AppliedConfig;
  private serviceImports?: SupervisedInformer<ServiceImport>;
  private members: string[] = [];
  private debounceTimer?: NodeJS.Timeout;
  private publishTimer?: NodeJS.Timeout;
  private membershipTimer?: NodeJS.Timeout;
  /** Stalls of this process's event loop, read and reset by the starvation check. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: STALL_RESOLUTION_MS });
  private starvation?: StarvationGuard;
  private starvationTimer?: NodeJS.Timeout;
  /** Whether the last published view withheld unreachable votes because this agent was starved. */
  private abstaining = false;
  /** Whether the last starvation check found the agent starved. */
  private starved = false;
  private readonly starvedGauge: Gauge;
  private readonly probeStats = new ProbeStatsMeter();
  private firstRoundDone = false;
  private stopping = false;
  private lastView?: NodeView;
  /** targetSetDigest() of the addresses this node would probe before sharding: what its votes cover. */
  private targetDigest = targetSetDigest([]);
  /**
   * What this node's report said before a restart. A target whose state is still unknown (its first
   * probes have not settled) keeps that verdict, so that a restart never flips the report.
   */
  private inheritedUnreachable = new Set<string>();
  /** Invalid inputs: each logged and counted once while it stays in the caches. */
  private readonly reportedInvalid = new ReportedProblems<string>();
  private readonly invalidInputs: Counter<'kind'>;
  private readonly suspectGauge: Gauge;
  private readonly unreachableByImport: Gauge<'namespace' | 'serviceimport'>;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly options: AgentOptions,
    deps: { logger: Logger; registry: Registry },
  ) {
    this.logger = deps.logger;
    const { registry } = deps;
    this.informerMetrics = new InformerMetrics(registry);
    const informerDeps = { logger: this.logger, metrics: this.informerMetrics };
    this.slices = new SupervisedInformer(kc, endpointSliceInformerSpec(kc), informerDeps);
    this.reports = new SupervisedInformer(kc, probeReportInformerSpec(kc), informerDeps);
    this.events = createEventRecorder(
      kc,
      { component: 'eps-probe-agent', instance: options.nodeName },
      this.logger,
    );
    this.configWatch = new ConfigWatch(kc, { namespace: options.configNamespace, name: options.configName }, {
      logger: this.logger,
      registry,
      informerMetrics: this.informerMetrics,
      events: this.events,
    });
    this.engine = new ProbeEngine({}, { logger: this.logger, registry });
    this.publisher = new ReportPublisher(kc, options.nodeName, { logger: this.logger.child({ subsystem: 'report' }), registry });
    this.invalidInputs = new Counter({
      name: `${METRIC_PREFIX}invalid_inputs_total`,
      help: 'Invalid addresses or slices found in ServiceImports and EndpointSlices (each counted once).',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.suspectGauge = new Gauge({
      name: `${METRIC_PREFIX}node_suspect`,
      help: '1 when this node sees so many targets unreachable that it suspects itself (self-isolation guard).',
      registers: [registry],
    });
    this.starvedGauge = new Gauge({
      name: `${METRIC_PREFIX}node_starved`,
      help: '1 while this agent counts as starved (its event loop stalled beyond half of probe.timeout); with abstainWhenStarved it then votes no address unreachable.',
      registers: [registry],
    });
    this.unreachableByImport = new Gauge({
      name: `${METRIC_PREFIX}serviceimport_unreachable_addresses`,
      help: 'Addresses of a ServiceImport this node sees unreachable.',
      labelNames: ['namespace', 'serviceimport'],
      registers: [registry],
    });
  }

  private get config(): Config {
    return this.applied.config;
  }

  /** @throws StartupError when the API cannot be used (see StartupRetry) or ICMP is required but unavailable. */
  async start(): Promise<void> {
    this.applied = await this.configWatch.start();
    this.applyConfig(this.applied);
    this.configWatch.onApplied((applied) => {
      this.applied = applied;
      try {
        this.applyConfig(applied);
      } catch (err) {
        // The engine keeps its previous probe options (icmpUnavailable: fail without ICMP, say).
        this.logger.error({ err, version: applied.version }, 'probe options of the new configuration not applied; the previous ones stay');
      }
      this.scheduleSync();
    });
    const version = await servedServiceImportVersion(this.kc, this.logger);
    if (this.stopping) return;
    this.serviceImports = new SupervisedInformer(this.kc, serviceImportInformerSpec(this.kc, version), {
      logger: this.logger,
      metrics: this.informerMetrics,
    });
    this.serviceImports.onChange(() => this.scheduleSync());
    const relevant = syncedSliceChangeFilter();
    this.slices.onChange((slice) => {
      if (relevant(slice)) this.scheduleSync();
    });
    this.reports.onChange(() => this.checkMembership());
    await Promise.all([this.serviceImports.start(), this.slices.start(), this.reports.start()]);
    this.members = this.currentMembers();
    const ownReport = this.reports.get(this.options.nodeName)?.spec;
    this.inheritedUnreachable = new Set(ownReport?.serviceImports.flatMap((view) => view.unreachable) ?? []);
    this.syncTargets();
    this.engine.onChange(() => this.schedulePublish());
    await this.engine.start();
    this.membershipTimer = setInterval(() => this.checkMembership(), MEMBERSHIP_CHECK_MS);
    this.membershipTimer.unref();
    this.loopDelay.enable();
    this.starvationTimer = setInterval(() => this.checkStarvation(), STARVATION_CHECK_MS);
    this.starvationTimer.unref();
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
    clearTimeout(this.debounceTimer);
    clearTimeout(this.publishTimer);
    clearInterval(this.membershipTimer);
    clearInterval(this.starvationTimer);
    this.loopDelay.disable();
    for (const informer of [this.serviceImports, this.slices, this.reports]) informer?.stop();
    this.configWatch.stop();
    await this.engine.stop();
    this.publisher.stop();
  }

  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined {
    return this.informerMetrics.deadWatch(limitMs);
  }

  /** Undefined when ready: caches synced, first round done, watches alive. */
  readiness(): string | undefined {
    if (this.stopping) return 'shutting down';
    const informers = [this.serviceImports, this.slices, this.reports];
    if (!this.configWatch.isSynced() || informers.some((i) => !i?.isSynced())) return 'caches not synced';
    if (!this.firstRoundDone) return 'first probe round not complete';
    const staleMs = this.options.informerStaleMs ?? DEFAULT_INFORMER_STALE_MS;
    const stale = informers.find((i) => i!.lastActivityAgeMs() > staleMs);
    if (stale) return `no news from the apiserver about ${stale.resource} for ${Math.round(stale.lastActivityAgeMs() / 1000)}s`;
    return undefined;
  }

  private applyConfig({ config, version }: AppliedConfig): void {
    this.logger.level = config.logLevel;
    this.engine.updateOptions(probeOptionsOf(config));
    if (this.starvation) this.starvation.setRule(starvationRule(config.probe));
    else this.starvation = new StarvationGuard(starvationRule(config.probe));
    this.logger.info({ version, interval: config.probe.intervalMs, mode: config.probe.mode, probeReplicas: config.probeReplicas }, 'configuration in force');
  }

  private scheduleSync(): void {
    if (this.stopping || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.syncTargets();
    }, this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /** Sharding members: live agents by their reports, and always this node. */
  private currentMembers(): string[] {
    const live = shardingMembers(this.reports.list(), { now: new Date(), configVersion: this.applied.version, staleAfterMs: this.config.controller.reportStaleAfterMs });
    return [...new Set([...live, this.options.nodeName])].sort();
  }

  private checkMembership(): void {
    if (this.config.probeReplicas === 0) return;
    const members = this.currentMembers();
    if (members.join(',') === this.members.join(',')) return;
    this.logger.info({ members: members.length }, 'sharding membership changed');
    this.members = members;
    this.scheduleSync();
  }

  private syncTargets(): void {
    if (this.stopping || !this.serviceImports) return;
    const { targets, invalid } = buildTargets({
      serviceImports: this.serviceImports.list(),
      slices: this.slices.list(),
      namespaceFilter: this.config.namespaces,
    });
    for (const problem of invalid) {
      if (!this.reportedInvalid.isNew(`${problem.object}\0${problem.value}`)) continue;
      this.invalidInputs.inc({ kind: problem.object.split(' ')[0] ?? 'unknown' });
      this.logger.warn({ object: problem.object, value: problem.value, reason: problem.reason }, 'invalid address ignored');
    }
    this.reportedInvalid.endPass();
    const refused = refusedAddresses(targets.map((t) => t.address), this.config.allowCidrs);
    this.targetDigest = targetSetDigest(targets.map((t) => t.address).filter((address) => !refused.has(address)));
    const replicas = this.config.probeReplicas;
    const shard = replicas > 0 ? rendezvous(this.members, replicas) : undefined;
    const mine = shard ? targets.filter((t) => shard.isAssigned(t.address, this.options.nodeName)) : targets;
    const diff = this.engine.setTargets(mine);
    if (diff.added || diff.removed || diff.changed) {
      this.logger.info({ ...diff, refused: diff.refused.length, total: mine.length }, 'target set updated');
    }
    void this.publishView();
  }

  /**
   * Changes come in bursts (a cut link makes many targets fail together); one view per burst keeps
   * snapshot() of 100k targets off the hot path, for a few milliseconds of latency.
   */
  private schedulePublish(): void {
    if (this.publishTimer) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      void this.publishView();
    }, PUBLISH_DEBOUNCE_MS);
  }

  private isStarved(): boolean {
    return this.starvation?.isStarved(Date.now()) ?? false;
  }

  /** Whether this agent abstains from "unreachable" votes now (see src/agent/starvation.ts). */
  private isAbstaining(): boolean {
    return this.config.abstainWhenStarved && this.isStarved();
  }

  /**
   * Feeds the longest stall since the last check to the guard. Starvation is told (gauge, log, Event)
   * whether or not the agent abstains; a change of abstention is published at once.
   */
  private checkStarvation(): void {
    this.starvation!.observe(this.loopDelay.max / 1e6, Date.now());
    this.loopDelay.reset();
    const starved = this.isStarved();
    if (starved !== this.starved) {
      this.starved = starved;
      this.starvedGauge.set(starved ? 1 : 0);
      const consequence = this.config.abstainWhenStarved ? 'no address is voted unreachable from this node until it recovers' : 'its votes still count (abstainWhenStarved: false)';
      if (starved) {
        const reason = this.starvation!.reason();
        this.logger.warn({ reason }, `agent starved: ${consequence}`);
        this.events.warning(this.reportRef(), 'NodeStarved', `${reason}: ${consequence}`);
      } else {
        this.logger.info('agent no longer starved');
        this.events.normal(this.reportRef(), 'NodeUnstarved', 'event loop runs smoothly again');
      }
    }
    if (this.isAbstaining() !== this.abstaining) void this.publishView();
  }

  private publishView(): Promise<void> {
    if (!this.firstRoundDone || this.stopping) return Promise.resolve();
    this.abstaining = this.isAbstaining();
    // A starved agent's "unreachable" becomes no vote at all; its "reachable" still counts (an answer is an answer).
    const abstaining = this.abstaining;
    const states = this.engine.snapshot().map((target) => {
      const state = target.state === 'unknown' && this.inheritedUnreachable.has(target.address) ? 'unreachable' : target.state;
      if (abstaining && state === 'unreachable') return { ...target, state: 'unknown' as const };
      return state === target.state ? target : { ...target, state };
    });
    const view: NodeView = {
      ...buildNodeView({ states, suspectShare: this.config.selfIsolationShare }),
      membersDigest: this.config.probeReplicas > 0 ? membersDigest(this.members) : '',
      targetSetDigest: this.targetDigest,
    };
    this.trackView(view);
    return this.publisher.update(view, {
      agentVersion: VERSION,
      configVersion: this.applied.version,
      probeReplicas: this.config.probeReplicas,
      heartbeatPeriodMs: this.config.heartbeatPeriodMs,
      targetRtts: () => reportedRtts(this.engine.snapshot()),
      probeStats: () => this.probeStats.sample(this.engine.probeTotals(), Date.now()),
    });
  }

  /** Metrics, logs and Events about a new view. */
  private trackView(view: NodeView): void {
    const previous = this.lastView;
    this.lastView = view;
    this.suspectGauge.set(view.suspect ? 1 : 0);
    this.unreachableByImport.reset();
    for (const si of view.serviceImports) {
      this.unreachableByImport.set({ namespace: si.namespace, serviceimport: si.name }, si.unreachable.length);
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
