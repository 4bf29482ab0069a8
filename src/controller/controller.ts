// The slim controller: node reports -> aggregation -> `kosmos.io/disconnected-address` -> pruned
// EndpointSlices. Level-triggered like controller-runtime: every pass recomputes the desired state
// from the caches (the annotation on each ServiceImport is the previous decision, so a restart loses
// nothing) and writes only differences. Only the leader writes, and it checks before every write.
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { ConfigWatch, type AppliedConfig } from '../config/watch.js';
import { ConditionAnnouncer, createEventRecorder, type EventTarget } from '../kube/events.js';
import { servedServiceImportVersion } from '../kube/discovery.js';
import { writeWithRetry, type WriteOutcome } from '../kube/write-policy.js';
import { SupervisedInformer } from '../kube/informer.js';
import { InformerMetrics } from '../kube/informer-metrics.js';
import { endpointSliceInformerSpec, nodeInformerSpec, probeReportInformerSpec, serviceImportInformerSpec, statusCodeOf } from '../kube/resources.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_PLURAL, REPORT_VERSION, type ProbeReport, type ProbeReportSpec } from '../contract/probe-report.js';
import { type ServiceImport, MCS_GROUP, type McsVersion, ANNOTATION_DISCONNECTED } from '../contract/kosmos.js';
import { ReportedProblems, type Logger } from '../log.js';
import { METRIC_PREFIX } from '../metrics.js';
import { formatAddressList, parseAddressList } from '../contract/addresses.js';
import { aggregate, onConfiguration, type ReconnectReason, type ServiceImportVerdict } from '../report/aggregate.js';
import { refusedAddresses } from '../report/coverage.js';
import { addressesByServiceImport, buildTargets, indexSyncedSlices, namespaceAllowed, syncedSliceChangeFilter } from '../report/targets.js';
import { INVALID_REPORT_REASONS, partitionReports, shardingMembers, type InvalidReport } from '../report/validity.js';
import { keepRecentEvents } from '../status/events.js';
import type { LastDecision, StatusSources } from '../status/routes.js';
import { desiredSlice, missingFromSlices } from '../report/prune.js';
import type { LeaderElector } from './leader.js';

export interface ControllerOptions {
  configNamespace: string;
  configName: string;
  /** A pass waits this long for more events, so a burst costs one pass. */
  debounceMs?: number;
  /** Passes also run this often (reports go stale without any event); default: an eighth of reportStaleAfter, 0.5–10 s. */
  resyncMs?: number;
  /** Writes in flight at once. */
  writeConcurrency?: number;
}

const DEFAULT_DEBOUNCE_MS = 20;
/** Re-reads of a slice after conflicts before the pass gives up on it. */
const MAX_CONFLICT_ROUNDS = 5;


export class Controller {
  private readonly informerMetrics: InformerMetrics;
  private readonly reports: SupervisedInformer<ProbeReport>;
  private readonly nodes: SupervisedInformer<k8s.V1Node>;
  private readonly slices: SupervisedInformer<k8s.V1EndpointSlice>;
  private serviceImports?: SupervisedInformer<ServiceImport>;
  private version?: McsVersion;
  private readonly configWatch: ConfigWatch;
  private readonly events: ReturnType<typeof keepRecentEvents>;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly discovery: k8s.DiscoveryV1Api;
  private readonly limit;
  private applied!: AppliedConfig;
  private debounceTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private running = false;
  private rerun = false;
  private stopping = false;
  /** Addresses per ServiceImport, recomputed only when ServiceImports, slices or config changed. */
  private addresses?: Map<string, string[]>;
  /** Of those, the ones the allow-list refuses, recomputed with them. */
  private refused = new Set<string>();
  /** Per slice, `resourceVersion|disconnected` last found already in its desired state: skipped next time. */
  private readonly settledSlices = new Map<string, string>();
  /** Conditions told by an Event when they start or change, not on each pass that still finds them. */
  private readonly announcedEjectionCapped = new ConditionAnnouncer();
  private readonly announcedGuarded = new ConditionAnnouncer();
  private readonly announcedIsolated = new ConditionAnnouncer();
  /** Reports that cannot vote: each logged, counted and told in an Event once while it stays invalid. */
  private readonly reportedInvalid = new ReportedProblems<string>();
  /** Per report of a Node that does not exist, when a pass first found it so (ms). */
  private readonly orphanedSince = new Map<string, number>();
  /** The decision of the last pass while leading, for the status page. */
  private lastDecision?: LastDecision;
  private readonly metrics: {
    writes: Counter<'resource' | 'result'>;
    passes: Counter<'result'>;
    passDuration: Histogram;
    disconnected: Gauge<'namespace' | 'serviceimport'>;
    ejectionCapped: Gauge<'namespace' | 'serviceimport'>;
    missing: Gauge<'namespace' | 'serviceimport'>;
    liveReports: Gauge<'state'>;
    invalidReports: Counter<'reason'>;
  };

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly options: ControllerOptions,
    private readonly leader: LeaderElector,
    private readonly deps: { logger: Logger; registry: Registry; identity: string },
  ) {
    const { registry, logger } = deps;
    this.informerMetrics = new InformerMetrics(registry);
    const informerDeps = { logger, metrics: this.informerMetrics };
    this.reports = new SupervisedInformer(kc, probeReportInformerSpec(kc), informerDeps);
    this.nodes = new SupervisedInformer(kc, nodeInformerSpec(kc), informerDeps);
    this.slices = new SupervisedInformer(kc, endpointSliceInformerSpec(kc), informerDeps);
    this.events = keepRecentEvents(createEventRecorder(kc, { component: 'eps-probe-controller', instance: deps.identity }, logger));
    this.configWatch = new ConfigWatch(kc, { namespace: options.configNamespace, name: options.configName, persist: () => leader.isLeader() }, {
      logger,
      registry,
      informerMetrics: this.informerMetrics,
      events: this.events,
    });
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    this.limit = pLimit(options.writeConcurrency ?? 16);
    this.metrics = {
      writes: new Counter({
        name: `${METRIC_PREFIX}controller_writes_total`,
        help: 'API writes by resource (serviceimports, endpointslices) and result (success, conflict, error, gone).',
        labelNames: ['resource', 'result'],
        registers: [registry],
      }),
      passes: new Counter({
        name: `${METRIC_PREFIX}controller_passes_total`,
        help: 'Reconcile passes by result (done, skipped: not leader).',
        labelNames: ['result'],
        registers: [registry],
      }),
      passDuration: new Histogram({
        name: `${METRIC_PREFIX}controller_pass_duration_seconds`,
        help: 'Duration of a reconcile pass, writes included.',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
      disconnected: new Gauge({
        name: `${METRIC_PREFIX}serviceimport_disconnected_addresses`,
        help: 'Addresses of a ServiceImport published as disconnected (and pruned from its slices).',
        labelNames: ['namespace', 'serviceimport'],
        registers: [registry],
      }),
      ejectionCapped: new Gauge({
        name: `${METRIC_PREFIX}serviceimport_ejection_capped_addresses`,
        help: 'Addresses found unreachable that the ejection cap keeps in service.',
        labelNames: ['namespace', 'serviceimport'],
        registers: [registry],
      }),
      missing: new Gauge({
        name: `${METRIC_PREFIX}serviceimport_missing_addresses`,
        help: 'Addresses not disconnected that none of the ServiceImport\'s synced slices holds (after a Kosmos re-sync overwrote our record, until Kosmos re-syncs again).',
        labelNames: ['namespace', 'serviceimport'],
        registers: [registry],
      }),
      liveReports: new Gauge({
        name: `${METRIC_PREFIX}controller_reports`,
        help: 'Node reports by state: live, suspect, stale, other-config (agent runs another configuration; not counted), invalid (cannot vote: eps_probe_controller_invalid_reports_total says why).',
        labelNames: ['state'],
        registers: [registry],
      }),
      invalidReports: new Counter({
        name: `${METRIC_PREFIX}controller_invalid_reports_total`,
        help: 'Reports found unable to vote, each counted once while it stays so, by reason: malformed, name-mismatch (metadata.name is not spec.nodeName), future-heartbeat, no-node.',
        labelNames: ['reason'],
        registers: [registry],
      }),
    };
    for (const reason of INVALID_REPORT_REASONS) this.metrics.invalidReports.inc({ reason }, 0);
  }

  private get config(): Config {
    return this.applied.config;
  }

  async start(): Promise<void> {
    this.applied = await this.configWatch.start();
    this.configWatch.onApplied((applied) => {
      this.applied = applied;
      this.addresses = undefined;
      if (this.resyncTimer) this.startResync();
      this.deps.logger.level = applied.config.logLevel;
      this.schedule();
    });
    this.deps.logger.level = this.config.logLevel;
    this.version = await servedServiceImportVersion(this.kc, this.deps.logger);
    this.serviceImports = new SupervisedInformer(this.kc, serviceImportInformerSpec(this.kc, this.version), {
      logger: this.deps.logger,
      metrics: this.informerMetrics,
    });
    // A heartbeat alone changes nothing to decide (staleness is caught by the resync): at 1,000
    // nodes a pass per heartbeat kept the controller busy for nothing.
    const views = new Map<string, string>();
    this.reports.onChange((report) => {
      if (!report) {
        views.clear();
        this.schedule();
        return;
      }
      const name = report.metadata.name;
      if (!this.reports.get(name)) {
        views.delete(name); // deleted
      } else {
        const view = JSON.stringify({ ...report.spec, heartbeatTime: undefined });
        if (views.get(name) === view) return;
        views.set(name, view);
      }
      this.schedule();
    });
    // Only a Node appearing or disappearing matters; status updates of 1,000 Nodes must not cost passes.
    const nodeNames = new Set<string>();
    this.nodes.onChange((node) => {
      const name = node?.metadata?.name;
      if (name === undefined) {
        nodeNames.clear();
        for (const n of this.nodes.list()) nodeNames.add(n.metadata!.name!);
      } else {
        const exists = this.nodes.get(name) !== undefined;
        if (exists === nodeNames.has(name)) return;
        if (exists) nodeNames.add(name);
        else nodeNames.delete(name);
      }
      this.schedule();
    });
    const targetsChanged = (): void => {
      this.addresses = undefined;
      this.schedule();
    };
    this.serviceImports.onChange(targetsChanged);
    const relevant = syncedSliceChangeFilter();
    this.slices.onChange((slice) => {
      if (relevant(slice)) targetsChanged();
    });
    await Promise.all([this.reports.start(), this.nodes.start(), this.slices.start(), this.serviceImports.start()]);
    this.leader.onChange((leading) => {
      if (leading) {
        this.configWatch.persistLastGood();
        this.schedule();
      } else {
        // Only the leader's figures mean anything.
        this.lastDecision = undefined;
        this.metrics.disconnected.reset();
        this.metrics.ejectionCapped.reset();
        this.metrics.missing.reset();
      }
    });
    this.startResync();
    this.schedule();
  }

  private startResync(): void {
    clearInterval(this.resyncTimer);
    const resyncMs = this.options.resyncMs ?? Math.min(10_000, Math.max(500, this.config.controller.reportStaleAfterMs / 8));
    this.resyncTimer = setInterval(() => this.schedule(), resyncMs);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopping = true;
    clearTimeout(this.debounceTimer);
    clearInterval(this.resyncTimer);
    for (const informer of [this.reports, this.nodes, this.slices, this.serviceImports]) informer?.stop();
    this.configWatch.stop();
  }

  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined {
    return this.informerMetrics.deadWatch(limitMs);
  }

  readiness(): string | undefined {
    if (this.stopping) return 'shutting down';
    const informers = [this.reports, this.nodes, this.slices, this.serviceImports];
    if (!this.configWatch.isSynced() || informers.some((i) => !i?.isSynced())) return 'caches not synced';
    return undefined;
  }

  private schedule(): void {
    if (this.stopping || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.pass();
    }, this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  private async pass(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    const end = this.metrics.passDuration.startTimer();
    try {
      if (this.leader.isLeader()) {
        await this.reconcileAll();
        this.metrics.passes.inc({ result: 'done' });
      } else {
        this.metrics.passes.inc({ result: 'skipped' });
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'reconcile pass failed; retrying at the next event or resync');
    } finally {
      end();
      this.running = false;
    }
    if (this.rerun) {
      this.rerun = false;
      this.schedule();
    }
  }

  private async reconcileAll(): Promise<void> {
    // ServiceImports outside the namespace filter are not ours to touch, whatever their annotation says.
    const serviceImports = this.serviceImports!.list().filter((si) => namespaceAllowed(si.metadata.namespace, this.config.namespaces));
    // Series of ServiceImports that are gone (or filtered out) disappear with the next pass.
    this.metrics.disconnected.reset();
    this.metrics.ejectionCapped.reset();
    this.metrics.missing.reset();
    const slices = this.slices.list();
    const now = new Date();
    const { valid, invalid } = this.readReports(now);
    const reports = onConfiguration(valid, this.applied.version);
    if (!this.addresses) {
      const { targets } = buildTargets({ serviceImports, slices, namespaceFilter: this.config.namespaces });
      this.addresses = addressesByServiceImport(targets);
      this.refused = refusedAddresses(targets.map((t) => t.address), this.config.allowCidrs);
    }
    const addresses = this.addresses;
    const keyOf = (si: ServiceImport): string => `${si.metadata.namespace}/${si.metadata.name}`;
    const previous = new Map(serviceImports.map((si) => [keyOf(si), new Set(parseAddressList(si.metadata.annotations?.[ANNOTATION_DISCONNECTED]).addresses)]));
    const { verdicts, isolated } = aggregate({
      reports,
      now,
      staleAfterMs: this.config.controller.reportStaleAfterMs,
      quorum: this.config.controller.quorum,
      maxEjectionShare: this.config.controller.maxEjectionShare,
      selfIsolationShare: this.config.selfIsolationShare,
      probeReplicas: this.config.probeReplicas,
      // As the agents compute it: a report that is not counted for another reason (its Node is
      // unknown, its node isolated) still places its node on the ring.
      members: shardingMembers(this.reports.list(), { now, configVersion: this.applied.version, staleAfterMs: this.config.controller.reportStaleAfterMs }),
      serviceImports: [...addresses].map(([key, list]) => ({ key, addresses: list })),
      refused: this.refused,
      previous,
    });
    this.countReports(valid, invalid.length, now, isolated);
    this.reportIsolated(isolated);
    const slicesByKey = indexSyncedSlices(slices);
    await Promise.all(
      serviceImports.map((si) => {
        const key = keyOf(si);
        const verdict = verdicts.get(key) ?? { disconnected: previous.get(key) ?? new Set<string>(), ejectionCapped: [], guarded: [], uncovered: [], reconnected: new Map() };
        return this.reconcileServiceImport(si, verdict, slicesByKey.get(key) ?? [], addresses.get(key) ?? []);
      }),
    );
    this.forgetDeletedSlices([...slicesByKey.values()].flat());
    const present = new Set(serviceImports.map(keyOf));
    this.announcedEjectionCapped.retain(present);
    this.announcedGuarded.retain(present);
    await this.deleteOrphans(invalid.filter((report) => report.reason === 'no-node').map((report) => report.name), now.getTime());
    this.lastDecision = { addresses, verdicts, isolated };
  }

  /** Read-only access to the caches and the last decision, for the status page (src/status). */
  statusSources(): StatusSources {
    return {
      identity: this.deps.identity,
      reports: () => this.reports.list(),
      serviceImports: () => this.serviceImports?.list() ?? [],
      slices: () => this.slices.list(),
      nodeExists: (name) => this.nodes.get(name) !== undefined,
      applied: () => this.applied,
      leading: () => this.leader.isLeader(),
      lastDecision: () => this.lastDecision,
      events: () => this.events.recent(),
    };
  }

  /** The reports that may vote; the others are logged, counted and told in an Event once each. */
  private readReports(now: Date): { valid: ProbeReportSpec[]; invalid: InvalidReport[] } {
    const nodeExists = (name: string): boolean => this.nodes.get(name) !== undefined;
    const { valid, invalid } = partitionReports(this.reports.list(), { now, nodeExists });
    for (const problem of invalid) {
      if (!this.reportedInvalid.isNew(`${problem.name}\0${problem.reason}`)) continue;
      this.metrics.invalidReports.inc({ reason: problem.reason });
      this.deps.logger.warn({ report: problem.name, reason: problem.reason, detail: problem.detail }, 'report ignored: it cannot vote');
      this.events.warning(this.reportRef(problem.name), 'ReportIgnored', `not counted (${problem.reason}): ${problem.detail}`);
    }
    this.reportedInvalid.endPass();
    return { valid, invalid };
  }

  private reportRef(name: string): EventTarget {
    return { apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name, uid: this.reports.get(name)?.metadata.uid };
  }

  /**
   * Deletes the reports of Nodes that are gone (not every cluster runs the garbage collector that
   * their owner reference asks for). A report is deleted only once its Node has been missing for
   * `reportStaleAfter`, so a report written just before its Node reached our cache survives.
   */
  private async deleteOrphans(orphans: readonly string[], nowMs: number): Promise<void> {
    const graceMs = this.config.controller.reportStaleAfterMs;
    const current = new Set(orphans);
    for (const name of this.orphanedSince.keys()) if (!current.has(name)) this.orphanedSince.delete(name);
    await Promise.all(
      orphans.map(async (name) => {
        const since = this.orphanedSince.get(name) ?? nowMs;
        this.orphanedSince.set(name, since);
        if (nowMs - since < graceMs) return;
        const ref = this.reportRef(name);
        // The uid precondition spares a report re-created meanwhile (for a new Node of the same name).
        const body = { preconditions: { uid: ref.uid } };
        const deleted = await this.write('probereports', () => this.custom.deleteClusterCustomObject({ group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, name, body }));
        if (deleted !== 'written') return;
        this.orphanedSince.delete(name);
        const message = `Node ${name} has been gone for ${Math.round((nowMs - since) / 1000)} s: its report is deleted`;
        this.deps.logger.info({ report: name }, message);
        this.events.normal(ref, 'ReportDeleted', message);
      }),
    );
  }

  /** `synced`: the synced MCS slices, the only ones ever recorded as settled. */
  private forgetDeletedSlices(synced: readonly k8s.V1EndpointSlice[]): void {
    if (this.settledSlices.size <= synced.length) return;
    const present = new Set(synced.map((slice) => `${slice.metadata?.namespace}/${slice.metadata?.name}`));
    for (const key of this.settledSlices.keys()) if (!present.has(key)) this.settledSlices.delete(key);
  }

  /** `isolated`: nodes whose votes the isolation guard ignores (state `suspect`). */
  private countReports(reports: readonly ProbeReportSpec[], invalid: number, now: Date, isolated: ReadonlyMap<string, string>): void {
    const staleAfter = this.config.controller.reportStaleAfterMs;
    const counts = { live: 0, suspect: 0, stale: 0, 'other-config': 0, invalid };
    for (const report of reports) {
      if (now.getTime() - Date.parse(report.heartbeatTime) > staleAfter) counts.stale++;
      else if (report.configVersion !== this.applied.version) counts['other-config']++;
      else if (isolated.has(report.nodeName)) counts.suspect++;
      else counts.live++;
    }
    for (const [state, count] of Object.entries(counts)) this.metrics.liveReports.set({ state }, count);
  }

  /** A log line and an Event when a node becomes isolated (or why changes), from the leader only. */
  private reportIsolated(isolated: ReadonlyMap<string, string>): void {
    for (const [node, reason] of isolated) {
      if (!this.announcedIsolated.changed(node, reason)) continue;
      this.deps.logger.info({ node, reason }, 'node isolated: its votes are ignored');
      this.events.warning({ apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name: node }, 'NodeIsolated', `votes ignored by the isolation guard: the node ${reason}`);
    }
    this.announcedIsolated.retain(new Set(isolated.keys()));
  }

  /** `addresses`: all of the ServiceImport's target addresses, as this pass computed them. */
  private async reconcileServiceImport(si: ServiceImport, verdict: ServiceImportVerdict, slices: readonly k8s.V1EndpointSlice[], addresses: readonly string[]): Promise<void> {
    const { namespace, name } = si.metadata;
    const labels = { namespace, serviceimport: name };
    this.metrics.disconnected.set(labels, verdict.disconnected.size);
    this.metrics.ejectionCapped.set(labels, verdict.ejectionCapped.length);
    const current = si.metadata.annotations?.[ANNOTATION_DISCONNECTED];
    const desired = formatAddressList(verdict.disconnected);
    const ref: EventTarget = { apiVersion: `${MCS_GROUP}/${this.version}`, kind: 'ServiceImport', name, namespace, uid: si.metadata.uid };
    const key = `${namespace}/${name}`;
    const ejectionCapped = verdict.ejectionCapped.join(',');
    if (this.announcedEjectionCapped.changed(key, ejectionCapped)) {
      this.events.warning(ref, 'EjectionCapped', `ejection cap (${this.config.controller.maxEjectionShare}) keeps unreachable addresses in service: ${ejectionCapped}`);
    }
    const guarded = verdict.guarded.join(',');
    if (this.announcedGuarded.changed(key, guarded)) {
      this.events.warning(ref, 'IsolationGuarded', `only nodes the isolation guard ignores see these addresses unreachable; kept in service: ${guarded}`);
    }
    let changes: { disconnected: string[]; reconnected: string[] } | undefined;
    if (desired !== (current ?? '')) {
      const before = new Set(parseAddressList(current).addresses);
      const written = await this.write('serviceimports', () => this.patchAnnotation(namespace, name, desired));
      if (written === 'written') {
        changes = {
          disconnected: [...verdict.disconnected].filter((a) => !before.has(a)).sort(),
          reconnected: [...before].filter((a) => !verdict.disconnected.has(a)).sort(),
        };
        this.deps.logger.info({ serviceImport: key, ...changes }, 'disconnected addresses updated');
        if (changes.disconnected.length) this.events.warning(ref, 'EndpointsDisconnected', `unreachable from the cluster, pruned: ${changes.disconnected.join(',')}`);
      }
    }
    const after = await Promise.all(slices.map((slice) => this.reconcileSlice(slice, verdict.disconnected)));
    const missing = missingFromSlices(after, addresses, verdict.disconnected);
    this.metrics.missing.set(labels, missing.size);
    if (changes?.reconnected.length) this.reportReconnected(ref, changes.reconnected, verdict.reconnected, missing);
  }

  /**
   * One Event per reason why addresses came back: only `reachable` means the cluster reaches them
   * again. "Restored" is said only of addresses the synced slices hold again: where a Kosmos re-sync
   * overwrote our record of what we removed, the address is back when Kosmos re-syncs (docs/kosmos.md).
   */
  private reportReconnected(ref: EventTarget, reconnected: readonly string[], reasons: ReadonlyMap<string, ReconnectReason>, missing: ReadonlySet<string>): void {
    const byReason = Map.groupBy(reconnected, (address) => reasons.get(address) ?? 'reachable');
    for (const [reason, addresses] of byReason) {
      const restored = addresses.filter((a) => !missing.has(a));
      const pending = addresses.filter((a) => missing.has(a));
      const outcome = [
        restored.length ? `restored: ${restored.join(',')}` : '',
        pending.length ? `not in the synced slices yet, Kosmos restores them at its re-sync: ${pending.join(',')}` : '',
      ].filter(Boolean).join('; ');
      if (reason === 'reachable') this.events.normal(ref, 'EndpointsReconnected', `reachable again, ${outcome}`);
      if (reason === 'quorum') this.events.normal(ref, 'EndpointsReconnected', `no longer unreachable for the quorum (${this.config.controller.quorum}) of nodes, ${outcome}`);
      if (reason === 'removed') this.events.normal(ref, 'EndpointsReconnected', `no longer addresses of this ServiceImport, dropped from the disconnected list: ${addresses.join(',')}`);
      if (reason === 'capped') this.events.warning(ref, 'EndpointsReleased', `still unreachable, back in service because the ejection cap (${this.config.controller.maxEjectionShare}) allows fewer disconnected addresses; ${outcome}`);
      if (reason === 'guarded') this.events.warning(ref, 'EndpointsReleased', `still unreachable for nodes the isolation guard ignores, back in service; ${outcome}`);
    }
  }

  private patchAnnotation(namespace: string, name: string, value: string): Promise<unknown> {
    return this.custom.patchNamespacedCustomObject(
      { group: MCS_GROUP, version: this.version!, namespace, plural: 'serviceimports', name, body: { metadata: { annotations: { [ANNOTATION_DISCONNECTED]: value } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  /** Prunes/restores one slice; on a conflict re-reads it and recomputes (optimistic concurrency). */
  /**
   * Prunes/restores one slice; on a conflict re-reads it and recomputes (optimistic concurrency).
   * Resolves with the slice as far as this pass knows it afterwards (written, re-read or as observed).
   */
  private async reconcileSlice(observed: k8s.V1EndpointSlice, disconnected: ReadonlySet<string>): Promise<k8s.V1EndpointSlice> {
    const namespace = observed.metadata!.namespace!;
    const name = observed.metadata!.name!;
    const key = `${namespace}/${name}`;
    const stamp = `${observed.metadata!.resourceVersion}|${formatAddressList(disconnected)}`;
    if (this.settledSlices.get(key) === stamp) return observed;
    let slice = observed;
    for (let attempt = 1; attempt <= MAX_CONFLICT_ROUNDS; attempt++) {
      const result = desiredSlice(slice, disconnected);
      if (result.recordProblem) this.deps.logger.warn({ slice: key, problem: result.recordProblem }, 'pruning record ignored');
      if (!result.changed) {
        if (slice === observed) this.settledSlices.set(key, stamp);
        return slice;
      }
      const body = result.slice;
      const outcome = await this.write('endpointslices', () => this.discovery.replaceNamespacedEndpointSlice({ namespace, name, body }), true);
      if (outcome === 'written') {
        this.deps.logger.info({ slice: `${namespace}/${name}`, removed: result.removed, restored: result.restored }, 'endpoint slice updated');
        return body;
      }
      if (outcome !== 'conflict') return slice;
      try {
        slice = await this.discovery.readNamespacedEndpointSlice({ namespace, name });
      } catch (err) {
        if (statusCodeOf(err) !== 404) this.deps.logger.warn({ err, slice: `${namespace}/${name}` }, 'could not re-read slice after a conflict');
        return slice;
      }
    }
    return slice;
  }

  /** One write through the write policy (src/kube/write-policy.ts), at most writeConcurrency at once. */
  private write(resource: string, request: () => Promise<unknown>, callerHandlesConflict = false): Promise<WriteOutcome> {
    return this.limit(() =>
      writeWithRetry(request, {
        isLeader: () => this.leader.isLeader(),
        callerHandlesConflict,
        onAttempt: (result) => this.metrics.writes.inc({ resource, result }),
        onFailed: (err, attempt) => this.deps.logger.error({ err, resource, attempt }, 'write failed; retrying at the next pass'),
      }),
    );
  }
}
