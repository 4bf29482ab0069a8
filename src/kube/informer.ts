// A supervised informer. client-node's informer re-lists on 410 by itself but stops for good on any
// other error (apiserver restart, 429 while a watch cache initialises, 5xx) and never re-lists on
// its own (kubernetes-client/javascript#795, #1933). This wrapper restarts it with backoff,
// re-lists periodically, and exports how long ago it last heard from the apiserver.
import * as k8s from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { METRIC_PREFIX } from '../metrics.js';

export interface InformerSpec<T extends k8s.KubernetesObject> {
  /** Short resource name for logs and metric labels (e.g. `endpointslices`). */
  resource: string;
  /** Watch path, e.g. `/apis/discovery.k8s.io/v1/endpointslices`. */
  path: string;
  /** Lists what the watch covers: it must apply the same selectors as the watch. */
  list: () => Promise<k8s.KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface InformerTimings {
  /** Re-list from scratch this often, so that a missed event cannot live on forever. */
  relistPeriodMs: number;
  /** First delay before restarting after an error; doubles up to maxBackoffMs. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_INFORMER_TIMINGS: Readonly<InformerTimings> = Object.freeze({
  relistPeriodMs: 30 * 60_000,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
});

/** One set of informer metrics per process, labelled by resource. */
export class InformerMetrics {
  readonly restarts: Counter<'resource' | 'reason'>;
  readonly lists: Counter<'resource'>;
  readonly objects: Gauge<'resource'>;
  readonly lastActivityAge: Gauge<'resource'>;
  private readonly informers = new Set<SupervisedInformer<k8s.KubernetesObject>>();

  constructor(registry: Registry) {
    this.restarts = new Counter({
      name: `${METRIC_PREFIX}informer_restarts_total`,
      help: 'Informer restarts by reason: error (watch or list failed), relist (periodic full re-list).',
      labelNames: ['resource', 'reason'],
      registers: [registry],
    });
    this.lists = new Counter({
      name: `${METRIC_PREFIX}informer_lists_total`,
      help: 'Full lists of a resource: the first one, re-lists after 410 Gone (expired watch), and periodic re-lists.',
      labelNames: ['resource'],
      registers: [registry],
    });
    const informers = this.informers;
    this.objects = new Gauge({
      name: `${METRIC_PREFIX}informer_objects`,
      help: 'Objects in the informer cache.',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        for (const informer of informers) this.set({ resource: informer.resource }, informer.size());
      },
    });
    this.lastActivityAge = new Gauge({
      name: `${METRIC_PREFIX}informer_last_activity_age_seconds`,
      help: 'Seconds since the informer last received an event or (re)connected its watch; readiness fails when it grows too old.',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        for (const informer of informers) this.set({ resource: informer.resource }, informer.lastActivityAgeMs() / 1000);
      },
    });
  }

  track(informer: SupervisedInformer<k8s.KubernetesObject>): void {
    this.informers.add(informer);
  }

  untrack(informer: SupervisedInformer<k8s.KubernetesObject>): void {
    this.informers.delete(informer);
  }
}

export class SupervisedInformer<T extends k8s.KubernetesObject> {
  readonly resource: string;
  private inner?: k8s.ListWatch<T>;
  private readonly listeners = new Set<(object?: T) => void>();
  private lastActivity = Date.now();
  private backoffMs: number;
  private restartTimer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private stopped = true;
  private hasSynced = false;
  private syncWaiters: Array<() => void> = [];
  /** Inner informers whose list has succeeded (start() resolves even when the list failed). */
  private readonly listed = new WeakSet<object>();

  constructor(
    private readonly kubeConfig: k8s.KubeConfig,
    private readonly spec: InformerSpec<T>,
    private readonly deps: { logger: Logger; metrics: InformerMetrics; timings?: InformerTimings },
  ) {
    this.resource = spec.resource;
    this.backoffMs = this.timings.initialBackoffMs;
  }

  private get timings(): InformerTimings {
    return this.deps.timings ?? DEFAULT_INFORMER_TIMINGS;
  }

  /** Starts watching; resolves once the first list has filled the cache. */
  async start(): Promise<void> {
    this.stopped = false;
    this.deps.metrics.track(this as unknown as SupervisedInformer<k8s.KubernetesObject>);
    this.inner = this.createInner();
    void this.runInner(this.inner);
    this.scheduleRelist();
    await this.synced();
  }

  /** Stops watching; idempotent, never blocks. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    void this.inner?.stop();
    this.deps.metrics.untrack(this as unknown as SupervisedInformer<k8s.KubernetesObject>);
  }

  /** Resolves when the cache has been filled by a list at least once. */
  synced(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  isSynced(): boolean {
    return this.hasSynced;
  }

  list(): readonly T[] {
    return this.inner?.list() ?? [];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.inner?.get(name, namespace);
  }

  size(): number {
    return this.inner?.list().length ?? 0;
  }

  lastActivityAgeMs(): number {
    return Date.now() - this.lastActivity;
  }

  /** `listener` runs after any add, update, delete or re-list; it should read `list()` (level-triggered). */
  onChange(listener: (object?: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `object` is the one that changed; undefined after a (re-)list, when anything may have. */
  private notify(object?: T): void {
    for (const listener of this.listeners) listener(object);
  }

  private createInner(): k8s.ListWatch<T> {
    const { spec } = this;
    const list = async (): Promise<k8s.KubernetesListObject<T>> => {
      const result = await spec.list();
      this.deps.metrics.lists.inc({ resource: this.resource });
      this.lastActivity = Date.now();
      this.backoffMs = this.timings.initialBackoffMs;
      return result;
    };
    const listAndMark = async (): Promise<k8s.KubernetesListObject<T>> => {
      const result = await list();
      this.listed.add(informer);
      return result;
    };
    const informer: k8s.ListWatch<T> = new k8s.ListWatch<T>(
      spec.path, new k8s.Watch(this.kubeConfig), listAndMark, false, spec.labelSelector, spec.fieldSelector,
    );
    const changed = (object: T): void => {
      this.lastActivity = Date.now();
      if (informer === this.inner) this.notify(object);
    };
    informer.on(k8s.ADD, changed);
    informer.on(k8s.UPDATE, changed);
    informer.on(k8s.DELETE, changed);
    informer.on(k8s.CONNECT, () => {
      this.lastActivity = Date.now();
    });
    informer.on(k8s.ERROR, (err: unknown) => this.onError(informer, err));
    return informer;
  }

  /** Runs a fresh inner informer until its first list is done, then marks the cache synced. */
  private async runInner(informer: k8s.ListWatch<T>): Promise<void> {
    try {
      await informer.start();
    } catch (err) {
      this.onError(informer, err);
      return;
    }
    if (informer !== this.inner || this.stopped || !this.listed.has(informer)) return;
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
    this.notify();
  }

  private onError(informer: k8s.ListWatch<T>, err: unknown): void {
    if (this.stopped || informer !== this.inner) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.timings.maxBackoffMs);
    this.deps.metrics.restarts.inc({ resource: this.resource, reason: 'error' });
    this.deps.logger.warn({ err, resource: this.resource, retryInMs: delay }, 'watch failed; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped || informer !== this.inner) return;
      void this.runInner(informer);
    }, delay);
    this.restartTimer.unref();
  }

  private scheduleRelist(): void {
    this.relistTimer = setTimeout(() => {
      if (this.stopped) return;
      this.deps.metrics.restarts.inc({ resource: this.resource, reason: 'relist' });
      const previous = this.inner;
      const next = this.createInner();
      // The old cache keeps serving reads until the new one has listed.
      void (async () => {
        await next.start().catch(() => undefined);
        if (this.stopped || !this.listed.has(next)) {
          void next.stop();
          if (!this.stopped) this.scheduleRelist();
          return;
        }
        this.inner = next;
        void previous?.stop();
        this.notify();
        this.scheduleRelist();
      })();
    }, this.timings.relistPeriodMs);
    this.relistTimer.unref();
  }
}
