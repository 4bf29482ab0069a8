// What the agent and the controller both stand on: caches of the objects they decide from, the
// configuration in force, readiness, liveness and a clean stop. Each process adds only its own
// decisions on top (src/agent, src/controller).
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { McsVersion, ServiceImport } from '../contract/kosmos.js';
import type { ProbeReport } from '../contract/probe-report.js';
import type { Logger } from '../log.js';
import { syncedSliceChangeFilter } from '../report/targets.js';
import { servedServiceImportVersion } from './discovery.js';
import { InformerMetrics } from './informer-metrics.js';
import { SupervisedInformer } from './informer.js';
import { endpointSliceInformerSpec, nodeInformerSpec, probeReportInformerSpec, serviceImportInformerSpec } from './resources.js';

/** The configuration side of the view: src/config's ConfigWatch, known here only by its shape. */
export interface WatchedConfig<C> {
  readonly applied: C;
  /** Resolves with the configuration in force once read. */
  start(): Promise<C>;
  /** Configurations applied after start() resolved. */
  onApplied(listener: (applied: C) => void): void;
  isSynced(): boolean;
  stop(): void;
}

export interface ClusterViewOptions {
  /** Watch Nodes too (the controller counts only reports of existing Nodes). */
  watchNodes?: boolean;
  /** Readiness fails when a watch has had no news from the apiserver for this long; unset: not checked. */
  informerStaleMs?: number;
}

/** What the process hears about; each is called after the caches hold the change. */
export interface ClusterViewListeners<C> {
  /** A configuration applied after the first one. */
  onConfig(applied: C): void;
  /** A ServiceImport or a synced slice changed: the targets may differ. */
  onTargetsChanged(): void;
  /** A report changed or was deleted (undefined: the whole cache was re-listed). */
  onReportChanged(report?: ProbeReport): void;
  /** A Node appeared or disappeared (status updates of Nodes are not news). */
  onNodesChanged?(): void;
}

export class ClusterView<C, W extends WatchedConfig<C> = WatchedConfig<C>> {
  readonly informerMetrics: InformerMetrics;
  readonly configWatch: W;
  readonly reports: SupervisedInformer<ProbeReport>;
  readonly slices: SupervisedInformer<k8s.V1EndpointSlice>;
  readonly nodes?: SupervisedInformer<k8s.V1Node>;
  private serviceImportInformer?: SupervisedInformer<ServiceImport>;
  private servedVersion?: McsVersion;
  private stopping = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly options: ClusterViewOptions,
    private readonly deps: { logger: Logger; registry: Registry },
    /** Makes the configuration watch, which shares the informers' metrics. */
    watchConfig: (informerMetrics: InformerMetrics) => W,
  ) {
    this.informerMetrics = new InformerMetrics(deps.registry);
    const informerDeps = { logger: deps.logger, metrics: this.informerMetrics };
    this.reports = new SupervisedInformer(kc, probeReportInformerSpec(kc), informerDeps);
    if (options.watchNodes) this.nodes = new SupervisedInformer(kc, nodeInformerSpec(kc), informerDeps);
    this.slices = new SupervisedInformer(kc, endpointSliceInformerSpec(kc), informerDeps);
    this.configWatch = watchConfig(this.informerMetrics);
  }

  /** The configuration in force; defined once startConfig() resolved. */
  get applied(): C {
    return this.configWatch.applied;
  }

  /** ServiceImports in the cache (none before startWatches()). */
  serviceImports(): readonly ServiceImport[] {
    return this.serviceImportInformer?.list() ?? [];
  }

  /** The ServiceImport version the cluster serves, known once startWatches() asked. */
  get mcsVersion(): McsVersion | undefined {
    return this.servedVersion;
  }

  nodeExists(name: string): boolean {
    return this.nodes?.get(name) !== undefined;
  }

  /**
   * Reads the configuration in force (the ConfigMap, else the last good copy, else the defaults).
   * @throws StartupError when the API cannot be used.
   */
  startConfig(): Promise<C> {
    return this.configWatch.start();
  }

  /**
   * Asks which ServiceImport version is served, then fills every cache; false when stopped meanwhile.
   * @throws StartupError when the API cannot be used.
   */
  async startWatches(listeners: ClusterViewListeners<C>): Promise<boolean> {
    this.configWatch.onApplied((applied) => listeners.onConfig(applied));
    this.servedVersion = await servedServiceImportVersion(this.kc, this.deps.logger);
    if (this.stopping) return false;
    const serviceImports = new SupervisedInformer(this.kc, serviceImportInformerSpec(this.kc, this.servedVersion), {
      logger: this.deps.logger,
      metrics: this.informerMetrics,
    });
    this.serviceImportInformer = serviceImports;
    serviceImports.onChange(() => listeners.onTargetsChanged());
    const relevant = syncedSliceChangeFilter();
    this.slices.onChange((slice) => {
      if (relevant(slice)) listeners.onTargetsChanged();
    });
    this.reports.onChange((report) => listeners.onReportChanged(report));
    if (this.nodes) this.watchNodeSet(this.nodes, () => listeners.onNodesChanged?.());
    await Promise.all(this.informers().map((informer) => informer.start()));
    return !this.stopping;
  }

  stop(): void {
    this.stopping = true;
    for (const informer of this.informers()) informer.stop();
    this.configWatch.stop();
  }

  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined {
    return this.informerMetrics.deadWatch(limitMs);
  }

  /**
   * Undefined when every cache is synced, the process's own condition `afterSync` holds (asked only
   * once the caches are synced) and, if asked, every watch heard from the apiserver lately; else why not.
   */
  readiness(afterSync?: () => string | undefined): string | undefined {
    if (this.stopping) return 'shutting down';
    const informers = this.informers();
    if (!this.configWatch.isSynced() || !this.serviceImportInformer || informers.some((i) => !i.isSynced())) return 'caches not synced';
    const notYet = afterSync?.();
    if (notYet !== undefined) return notYet;
    const staleMs = this.options.informerStaleMs;
    const stale = staleMs === undefined ? undefined : informers.find((i) => i.lastActivityAgeMs() > staleMs);
    if (stale) return `no news from the apiserver about ${stale.resource} for ${Math.round(stale.lastActivityAgeMs() / 1000)}s`;
    return undefined;
  }

  private informers(): Array<SupervisedInformer<k8s.KubernetesObject>> {
    return [this.serviceImportInformer, this.slices, this.reports, this.nodes].filter((i) => i !== undefined) as Array<SupervisedInformer<k8s.KubernetesObject>>;
  }

  /** Calls `changed` when the set of Node names changes: status updates of 1,000 Nodes must not cost passes. */
  private watchNodeSet(nodes: SupervisedInformer<k8s.V1Node>, changed: () => void): void {
    const names = new Set<string>();
    nodes.onChange((node) => {
      const name = node?.metadata?.name;
      if (name === undefined) {
        names.clear();
        for (const n of nodes.list()) names.add(n.metadata!.name!);
      } else {
        const exists = nodes.get(name) !== undefined;
        if (exists === names.has(name)) return;
        if (exists) names.add(name);
        else names.delete(name);
      }
      changed();
    });
  }
}

/**
 * A pass that many events ask for: at most one start per `delayMs` window, never two at once, and
 * once more after a run during which it was asked again. The first ask after a quiet window runs at
 * once (events of the same turn still share it): a lone change is not delayed, a burst costs one
 * pass now and one at the window's end.
 */
export class DebouncedPass {
  private timer?: NodeJS.Timeout;
  private running = false;
  private rerun = false;
  private stopped = false;
  private lastStartMs = -Infinity;

  constructor(
    private readonly run: () => Promise<void> | void,
    private readonly delayMs: number,
  ) {}

  schedule(): void {
    if (this.stopped || this.timer) return;
    const waitMs = Math.max(0, this.lastStartMs + this.delayMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, waitMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async runOnce(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    this.lastStartMs = performance.now();
    try {
      await this.run();
    } finally {
      this.running = false;
    }
    if (this.rerun) {
      this.rerun = false;
      this.schedule();
    }
  }
}
