// The slim controller: node reports -> aggregation -> `kosmos.io/disconnected-address` -> pruned
// EndpointSlices. Level-triggered like controller-runtime: every pass recomputes the desired state
// from the caches (the annotation on each ServiceImport is the previous decision, so a restart loses
// nothing) and writes only differences. Only the leader writes, and it checks before every write.
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { ConfigWatch, type AppliedConfig } from '../config/watch.js';
import { createEventRecorder, type EventRecorder, type EventTarget } from '../kube/events.js';
import { InformerMetrics, SupervisedInformer } from '../kube/informer.js';
import {
  MCS_GROUP,
  endpointSliceInformerSpec,
  probeReportInformerSpec,
  serviceImportInformerSpec,
  servedServiceImportVersion,
  statusCodeOf,
  type McsVersion,
  type ProbeReportObject,
  type ServiceImport,
} from '../kube/resources.js';
import type { Logger } from '../log.js';
import { METRIC_PREFIX } from '../metrics.js';
import { formatAddressList, parseAddressList } from '../report/addresses.js';
import { aggregate, liveMembers, onConfiguration, type ReconnectReason, type Verdict } from '../report/aggregate.js';
import { refusedAddresses } from '../report/coverage.js';
import { addressesByServiceImport, buildTargets, indexSyncedSlices, namespaceAllowed, syncedSliceChangeFilter } from '../report/targets.js';
import { ANNOTATION_DISCONNECTED, REPORT_GROUP, REPORT_KIND, REPORT_VERSION } from '../report/types.js';
import { desiredSlice } from './prune.js';
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
const MAX_WRITE_ATTEMPTS = 5;

class NotLeaderError extends Error {
  constructor() {
    super('not the leader any more; write skipped');
  }
}

export class Controller {
  private readonly informerMetrics: InformerMetrics;
  private readonly reports: SupervisedInformer<ProbeReportObject>;
  private readonly slices: SupervisedInformer<k8s.V1EndpointSlice>;
  private serviceImports?: SupervisedInformer<ServiceImport>;
  private version?: McsVersion;
  private readonly configWatch: ConfigWatch;
  private readonly events: EventRecorder;
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
  private readonly metrics: {
    writes: Counter<'resource' | 'result'>;
    passes: Counter<'result'>;
    passDuration: Histogram;
    disconnected: Gauge<'namespace' | 'serviceimport'>;
    heldBack: Gauge<'namespace' | 'serviceimport'>;
    liveReports: Gauge<'state'>;
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
    this.slices = new SupervisedInformer(kc, endpointSliceInformerSpec(kc), informerDeps);
    this.events = createEventRecorder(kc, { component: 'eps-probe-controller', instance: deps.identity }, logger);
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
      heldBack: new Gauge({
        name: `${METRIC_PREFIX}serviceimport_ejection_capped_addresses`,
        help: 'Addresses found unreachable that the ejection cap keeps in service.',
        labelNames: ['namespace', 'serviceimport'],
        registers: [registry],
      }),
      liveReports: new Gauge({
        name: `${METRIC_PREFIX}controller_reports`,
        help: 'Node reports by state: live, suspect, stale, other-config (agent runs another configuration; not counted).',
        labelNames: ['state'],
        registers: [registry],
      }),
    };
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
    this.version = await servedServiceImportVersion(this.kc);
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
    const targetsChanged = (): void => {
      this.addresses = undefined;
      this.schedule();
    };
    this.serviceImports.onChange(targetsChanged);
    const relevant = syncedSliceChangeFilter();
    this.slices.onChange((slice) => {
      if (relevant(slice)) targetsChanged();
    });
    await Promise.all([this.reports.start(), this.slices.start(), this.serviceImports.start()]);
    this.leader.onChange((leading) => {
      if (leading) {
        this.configWatch.persistLastGood();
        this.schedule();
      } else {
        // Only the leader's figures mean anything.
        this.metrics.disconnected.reset();
        this.metrics.heldBack.reset();
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
    for (const informer of [this.reports, this.slices, this.serviceImports]) informer?.stop();
    this.configWatch.stop();
  }

  readiness(): string | undefined {
    if (this.stopping) return 'shutting down';
    const informers = [this.reports, this.slices, this.serviceImports];
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
    this.metrics.heldBack.reset();
    const slices = this.slices.list();
    const all = this.reports.list().map((r) => r.spec).filter((spec) => spec?.nodeName);
    const now = new Date();
    const reports = onConfiguration(all, this.applied.version);
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
      // As the agents compute it, from every report on the configuration: a report that is not
      // counted for another reason still places its node on the ring.
      members: liveMembers(reports, now, this.config.controller.reportStaleAfterMs),
      serviceImports: [...addresses].map(([key, list]) => ({ key, addresses: list })),
      refused: this.refused,
      previous,
    });
    this.countReports(all, now, isolated);
    this.reportIsolated(isolated);
    const slicesByKey = indexSyncedSlices(slices);
    await Promise.all(
      serviceImports.map((si) => {
        const key = keyOf(si);
        const verdict = verdicts.get(key) ?? { disconnected: previous.get(key) ?? new Set<string>(), heldBack: [], guarded: [], uncovered: [], reconnected: new Map() };
        return this.reconcileServiceImport(si, verdict, slicesByKey.get(key) ?? []);
      }),
    );
    this.forgetDeletedSlices([...slicesByKey.values()].flat());
  }

  /** `synced`: the synced MCS slices, the only ones ever recorded as settled. */
  private forgetDeletedSlices(synced: readonly k8s.V1EndpointSlice[]): void {
    if (this.settledSlices.size <= synced.length) return;
    const present = new Set(synced.map((slice) => `${slice.metadata?.namespace}/${slice.metadata?.name}`));
    for (const key of this.settledSlices.keys()) if (!present.has(key)) this.settledSlices.delete(key);
  }

  /** `isolated`: nodes whose votes the isolation guard ignores (state `suspect`). */
  private countReports(reports: ReadonlyArray<ProbeReportObject['spec']>, now: Date, isolated: ReadonlyMap<string, string>): void {
    const staleAfter = this.config.controller.reportStaleAfterMs;
    const counts = { live: 0, suspect: 0, stale: 0, 'other-config': 0 };
    for (const report of reports) {
      if (now.getTime() - Date.parse(report.heartbeatTime) > staleAfter) counts.stale++;
      else if (report.configVersion !== this.applied.version) counts['other-config']++;
      else if (isolated.has(report.nodeName)) counts.suspect++;
      else counts.live++;
    }
    for (const [state, count] of Object.entries(counts)) this.metrics.liveReports.set({ state }, count);
  }

  /** A log line and an Event per isolated node (the recorder drops repeats), from the leader only. */
  private reportIsolated(isolated: ReadonlyMap<string, string>): void {
    for (const [node, reason] of isolated) {
      this.deps.logger.debug({ node, reason }, 'node isolated: its votes are ignored');
      this.events.warning({ apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name: node }, 'NodeIsolated', `votes ignored by the isolation guard: the node ${reason}`);
    }
  }

  private async reconcileServiceImport(si: ServiceImport, verdict: Verdict, slices: readonly k8s.V1EndpointSlice[]): Promise<void> {
    const { namespace, name } = si.metadata;
    const labels = { namespace, serviceimport: name };
    this.metrics.disconnected.set(labels, verdict.disconnected.size);
    this.metrics.heldBack.set(labels, verdict.heldBack.length);
    const current = si.metadata.annotations?.[ANNOTATION_DISCONNECTED];
    const desired = formatAddressList(verdict.disconnected);
    const ref: EventTarget = { apiVersion: `${MCS_GROUP}/${this.version}`, kind: 'ServiceImport', name, namespace, uid: si.metadata.uid };
    if (verdict.heldBack.length > 0) {
      this.events.warning(ref, 'EjectionCapped', `ejection cap (${this.config.controller.maxEjectionShare}) keeps unreachable addresses in service: ${verdict.heldBack.join(',')}`);
    }
    if (verdict.guarded.length > 0) {
      this.events.warning(ref, 'IsolationGuarded', `only nodes the isolation guard ignores see these addresses unreachable; kept in service: ${verdict.guarded.join(',')}`);
    }
    if (desired !== (current ?? '')) {
      const before = new Set(parseAddressList(current).addresses);
      const written = await this.write('serviceimports', () => this.patchAnnotation(namespace, name, desired));
      if (!written) return;
      const disconnected = [...verdict.disconnected].filter((a) => !before.has(a)).sort();
      const reconnected = [...before].filter((a) => !verdict.disconnected.has(a)).sort();
      this.deps.logger.info({ serviceImport: `${namespace}/${name}`, disconnected, reconnected }, 'disconnected addresses updated');
      if (disconnected.length) this.events.warning(ref, 'EndpointsDisconnected', `unreachable from the cluster, pruned: ${disconnected.join(',')}`);
      this.reportReconnected(ref, reconnected, verdict.reconnected);
    }
    await Promise.all(slices.map((slice) => this.reconcileSlice(slice, verdict.disconnected)));
  }

  /** One Event per reason why addresses came back: only `reachable` means the cluster reaches them again. */
  private reportReconnected(ref: EventTarget, reconnected: readonly string[], reasons: ReadonlyMap<string, ReconnectReason>): void {
    const byReason = Map.groupBy(reconnected, (address) => reasons.get(address) ?? 'reachable');
    for (const [reason, addresses] of byReason) {
      const list = addresses.join(',');
      if (reason === 'reachable') this.events.normal(ref, 'EndpointsReconnected', `reachable again, restored: ${list}`);
      if (reason === 'quorum') this.events.normal(ref, 'EndpointsReconnected', `no longer unreachable for the quorum (${this.config.controller.quorum}) of nodes, restored: ${list}`);
      if (reason === 'removed') this.events.normal(ref, 'EndpointsReconnected', `no longer addresses of this ServiceImport, dropped from the disconnected list: ${list}`);
      if (reason === 'capped') this.events.warning(ref, 'EndpointsReleased', `still unreachable, restored because the ejection cap (${this.config.controller.maxEjectionShare}) allows fewer disconnected addresses: ${list}`);
      if (reason === 'guarded') this.events.warning(ref, 'EndpointsReleased', `still unreachable for nodes the isolation guard ignores, restored: ${list}`);
    }
  }

  private patchAnnotation(namespace: string, name: string, value: string): Promise<unknown> {
    return this.custom.patchNamespacedCustomObject(
      { group: MCS_GROUP, version: this.version!, namespace, plural: 'serviceimports', name, body: { metadata: { annotations: { [ANNOTATION_DISCONNECTED]: value } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  /** Prunes/restores one slice; on a conflict re-reads it and recomputes (optimistic concurrency). */
  private async reconcileSlice(observed: k8s.V1EndpointSlice, disconnected: ReadonlySet<string>): Promise<void> {
    const namespace = observed.metadata!.namespace!;
    const name = observed.metadata!.name!;
    const key = `${namespace}/${name}`;
    const stamp = `${observed.metadata!.resourceVersion}|${formatAddressList(disconnected)}`;
    if (this.settledSlices.get(key) === stamp) return;
    let slice = observed;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const result = desiredSlice(slice, disconnected);
      if (result.recordProblem) this.deps.logger.warn({ slice: key, problem: result.recordProblem }, 'pruning record ignored');
      if (!result.changed) {
        if (slice === observed) this.settledSlices.set(key, stamp);
        return;
      }
      const body = result.slice;
      const outcome = await this.write('endpointslices', () => this.discovery.replaceNamespacedEndpointSlice({ namespace, name, body }), true);
      if (outcome === true) {
        this.deps.logger.info({ slice: `${namespace}/${name}`, removed: result.removed, restored: result.restored }, 'endpoint slice updated');
        return;
      }
      if (outcome !== 'conflict') return;
      try {
        slice = await this.discovery.readNamespacedEndpointSlice({ namespace, name });
      } catch (err) {
        if (statusCodeOf(err) !== 404) this.deps.logger.warn({ err, slice: `${namespace}/${name}` }, 'could not re-read slice after a conflict');
        return;
      }
    }
  }

  /**
   * One write, only while leading, retried with backoff on transient errors. Returns true when
   * written, false when the object is gone or the write failed, 'conflict' on 409 when the caller
   * handles conflicts.
   */
  private async write(resource: string, request: () => Promise<unknown>, callerHandlesConflict = false): Promise<boolean | 'conflict'> {
    return this.limit(async () => {
      let delay = 100;
      for (let attempt = 1; ; attempt++) {
        try {
          if (!this.leader.isLeader()) throw new NotLeaderError();
          await request();
          this.metrics.writes.inc({ resource, result: 'success' });
          return true;
        } catch (err) {
          const code = statusCodeOf(err);
          if (err instanceof NotLeaderError) return false;
          if (code === 404) {
            this.metrics.writes.inc({ resource, result: 'gone' });
            return false;
          }
          if (code === 409 && callerHandlesConflict) {
            this.metrics.writes.inc({ resource, result: 'conflict' });
            return 'conflict';
          }
          this.metrics.writes.inc({ resource, result: 'error' });
          const transient = code === undefined || code === 409 || code === 429 || code >= 500;
          if (!transient || attempt >= MAX_WRITE_ATTEMPTS) {
            this.deps.logger.error({ err, resource, attempt }, 'write failed; retrying at the next pass');
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, 2000);
        }
      }
    });
  }
}
