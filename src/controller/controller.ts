// The slim controller: node reports -> aggregation -> `kosmos.io/disconnected-address` -> pruned
// EndpointSlices. Level-triggered like controller-runtime: every pass recomputes the desired state
// from the caches (the annotation on each ServiceImport is the previous decision, so a restart loses
// nothing) and writes only differences. Only the leader writes, and it checks before every write.
// This file is the loop: cluster view -> plan (src/report/pass-plan.ts) -> reconciler -> writer.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { ConfigWatch, type AppliedConfig } from '../config/watch.js';
import { ClusterView, DebouncedPass } from '../kube/cluster-view.js';
import { apiControllerWriter } from '../kube/controller-writer.js';
import { createEventRecorder } from '../kube/events.js';
import type { Logger } from '../log.js';
import { planPass, type PassTargets } from '../report/pass-plan.js';
import { keepRecentEvents } from '../status/events.js';
import type { LastDecision, StatusSources } from '../status/routes.js';
import type { LeaderElector } from './leader.js';
import { controllerMetrics, resetServiceImportMetrics, type ControllerMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';

export interface ControllerOptions {
  configNamespace: string;
  configName: string;
  /** At most one pass starts per this window (DebouncedPass: a lone event is not delayed, a burst costs two passes at most). */
  debounceMs?: number;
  /** Passes also run this often (reports go stale without any event); default: an eighth of reportStaleAfter, 0.5–10 s. */
  resyncMs?: number;
  /** Writes in flight at once. */
  writeConcurrency?: number;
}

const DEFAULT_DEBOUNCE_MS = 20;

export class Controller {
  private readonly view: ClusterView<AppliedConfig, ConfigWatch>;
  private readonly events: ReturnType<typeof keepRecentEvents>;
  private readonly metrics: ControllerMetrics;
  private readonly pass: DebouncedPass;
  private reconciler?: Reconciler;
  private resyncTimer?: NodeJS.Timeout;
  /** The targets of the last pass; dropped when ServiceImports, slices or configuration change. */
  private targets?: PassTargets;
  /** The decision of the last pass while leading, for the status page. */
  private lastDecision?: LastDecision;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly options: ControllerOptions,
    private readonly leader: LeaderElector,
    private readonly deps: { logger: Logger; registry: Registry; identity: string },
  ) {
    const { registry, logger } = deps;
    this.events = keepRecentEvents(createEventRecorder(kc, { component: 'eps-probe-controller', instance: deps.identity }, logger));
    const config = { namespace: options.configNamespace, name: options.configName, persist: () => leader.isLeader() };
    this.view = new ClusterView(kc, { watchNodes: true }, { logger, registry }, (informerMetrics) =>
      new ConfigWatch(kc, config, { logger, registry, informerMetrics, events: this.events }),
    );
    this.metrics = controllerMetrics(registry);
    this.pass = new DebouncedPass(() => this.runPass(), options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  private get applied(): AppliedConfig {
    return this.view.applied;
  }

  private get config(): Config {
    return this.applied.config;
  }

  async start(): Promise<void> {
    await this.view.startConfig();
    this.deps.logger.level = this.config.logLevel;
    // A heartbeat alone changes nothing to decide (staleness is caught by the resync): at 1,000
    // nodes a pass per heartbeat kept the controller busy for nothing.
    const views = new Map<string, string>();
    const started = await this.view.startWatches({
      onConfig: (applied) => {
        this.targets = undefined;
        if (this.resyncTimer) this.startResync();
        this.deps.logger.level = applied.config.logLevel;
        this.pass.schedule();
      },
      onTargetsChanged: () => {
        this.targets = undefined;
        this.pass.schedule();
      },
      onReportChanged: (report) => {
        if (!report) {
          views.clear();
        } else {
          const name = report.metadata.name;
          if (!this.view.reports.get(name)) {
            views.delete(name); // deleted
          } else {
            const view = JSON.stringify({ ...report.spec, heartbeatTime: undefined });
            if (views.get(name) === view) return;
            views.set(name, view);
          }
        }
        this.pass.schedule();
      },
      onNodesChanged: () => this.pass.schedule(),
    });
    if (!started) return;
    this.reconciler = new Reconciler({
      writer: apiControllerWriter(this.kc, this.view.mcsVersion!),
      events: this.events,
      logger: this.deps.logger,
      metrics: this.metrics,
      isLeader: () => this.leader.isLeader(),
      mcsVersion: this.view.mcsVersion!,
      reportUid: (name) => this.view.reports.get(name)?.metadata.uid,
      writeConcurrency: this.options.writeConcurrency,
    });
    this.leader.onChange((leading) => {
      if (leading) {
        this.view.configWatch.persistLastGood();
        this.pass.schedule();
      } else {
        this.lastDecision = undefined;
        resetServiceImportMetrics(this.metrics);
      }
    });
    this.startResync();
    this.pass.schedule();
  }

  private startResync(): void {
    clearInterval(this.resyncTimer);
    const resyncMs = this.options.resyncMs ?? Math.min(10_000, Math.max(500, this.config.controller.reportStaleAfterMs / 8));
    this.resyncTimer = setInterval(() => this.pass.schedule(), resyncMs);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.pass.stop();
    clearInterval(this.resyncTimer);
    this.view.stop();
  }

  /** Liveness: undefined unless a watch got no answer from the apiserver for longer than `limitMs`. */
  deadWatch(limitMs: number): string | undefined {
    return this.view.deadWatch(limitMs);
  }

  readiness(): string | undefined {
    return this.view.readiness();
  }

  /** Read-only access to the caches and the last decision, for the status page (src/status). */
  statusSources(): StatusSources {
    return {
      identity: this.deps.identity,
      reports: () => this.view.reports.list(),
      serviceImports: () => this.view.serviceImports(),
      slices: () => this.view.slices.list(),
      nodeExists: (name) => this.view.nodeExists(name),
      applied: () => this.applied,
      leading: () => this.leader.isLeader(),
      lastDecision: () => this.lastDecision,
      events: () => this.events.recent(),
    };
  }

  private async runPass(): Promise<void> {
    const end = this.metrics.passDuration.startTimer();
    try {
      if (this.leader.isLeader() && this.reconciler) {
        await this.reconcileAll(this.reconciler);
        this.metrics.passes.inc({ result: 'done' });
      } else {
        this.metrics.passes.inc({ result: 'skipped' });
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'reconcile pass failed; retrying at the next event or resync');
    } finally {
      end();
    }
  }

  private async reconcileAll(reconciler: Reconciler): Promise<void> {
    const now = new Date();
    const plan = planPass({
      serviceImports: this.view.serviceImports(),
      slices: this.view.slices.list(),
      reports: this.view.reports.list(),
      nodeExists: (name) => this.view.nodeExists(name),
      now,
      configVersion: this.applied.version,
      settings: this.config,
      targets: this.targets,
    });
    this.targets = plan.targets;
    await reconciler.apply(plan, this.config, now);
    const { verdicts, isolated } = plan.decision;
    this.lastDecision = { addresses: plan.targets.addresses, verdicts, isolated };
  }
}
