// A supervised informer. client-node's informer re-lists on 410 by itself but stops for good on any
// other error (apiserver restart, 429 while a watch cache initialises, 5xx) and never re-lists on
// its own (kubernetes-client/javascript#795, #1933). This wrapper restarts it with backoff,
// re-lists periodically, and exports how long ago it last heard from the apiserver. Until its first
// list it is part of start-up: it gives up (start() rejects) as StartupRetry decides.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { StartupError } from '../startup.js';
import { AnsweredWatch } from './answered-watch.js';
import { DEFAULT_STARTUP_RETRY, StartupRetry, describeApiFailure, type StartupRetryPolicy } from './failures.js';
import type { InformerMetrics } from './informer-metrics.js';

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
  /** Retries before the first list has succeeded (start-up). */
  startup: StartupRetryPolicy;
}

export const DEFAULT_INFORMER_TIMINGS: Readonly<InformerTimings> = Object.freeze({
  relistPeriodMs: 30 * 60_000,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  startup: DEFAULT_STARTUP_RETRY,
});

export class SupervisedInformer<T extends k8s.KubernetesObject> {
  readonly resource: string;
  private inner?: k8s.ListWatch<T>;
  private readonly listeners = new Set<(object?: T) => void>();
  private lastActivity = Date.now();
  /** Date.now() when the apiserver last answered a list or a watch, or a watch stream closed (or start() was called). */
  private lastAnswer = Date.now();
  /** The Watch of each inner informer: a quiet watch is a healthy one while its stream stays open. */
  private readonly watches = new WeakMap<k8s.ListWatch<T>, AnsweredWatch>();
  private lastError?: unknown;
  /** Failures seen so far: a run of the inner informer with a failure in it does not mark the cache synced. */
  private failures = 0;
  private backoffMs: number;
  private restartTimer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private startupTimer?: NodeJS.Timeout;
  /** Until the first list has succeeded. */
  private startupRetry?: StartupRetry;
  private stopped = true;
  private hasSynced = false;
  private syncWaiters: Array<{ resolve: () => void; reject: (err: StartupError) => void }> = [];
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

  /**
   * Starts watching; resolves once the first list has filled the cache.
   * @throws StartupError when the first list keeps failing (see StartupRetry); the informer is then stopped.
   */
  async start(): Promise<void> {
    this.stopped = false;
    this.lastAnswer = Date.now();
    this.deps.metrics.track(this);
    if (!this.hasSynced) {
      const retry = new StartupRetry(`list/watch ${this.resource}`, this.timings.startup, Date.now, this.spec.path);
      this.startupRetry = retry;
      // A request that never returns (client-node sets no timeout) must not hang start-up either.
      this.startupTimer = setTimeout(() => this.failStart(retry.expired(this.lastError)), this.timings.startup.deadlineMs);
    }
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
    clearTimeout(this.startupTimer);
    void this.inner?.stop();
    this.deps.metrics.untrack(this);
  }

  /** Resolves when the cache has been filled by a list at least once; rejects when start-up gave up. */
  synced(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
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

  /** 0 while a watch stream is open, else the time since the apiserver last answered a list or a watch. */
  unansweredForMs(): number {
    return this.inner && this.watches.get(this.inner)?.isOpen ? 0 : Date.now() - this.lastAnswer;
  }

  /** The last failure, described for a log line or a health check. */
  lastFailure(): string | undefined {
    return this.lastError === undefined ? undefined : describeApiFailure(this.lastError, `list/watch ${this.resource}`, this.spec.path).message;
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
      this.lastAnswer = this.lastActivity;
      this.lastError = undefined;
      this.backoffMs = this.timings.initialBackoffMs;
      return result;
    };
    const listAndMark = async (): Promise<k8s.KubernetesListObject<T>> => {
      const result = await list();
      this.listed.add(informer);
      return result;
    };
    const watch = new AnsweredWatch(this.kubeConfig, (open) => {
      this.lastAnswer = Date.now();
      if (open) this.lastError = undefined;
    });
    const informer: k8s.ListWatch<T> = new k8s.ListWatch<T>(spec.path, watch, listAndMark, false, spec.labelSelector, spec.fieldSelector);
    this.watches.set(informer, watch);
    const changed = (object: T): void => {
      this.lastActivity = Date.now();
      this.lastAnswer = this.lastActivity;
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
    const failuresBefore = this.failures;
    try {
      await informer.start();
    } catch (err) {
      this.onError(informer, err);
      return;
    }
    // A watch refused right after the list (RBAC with list but not watch) fails within start().
    if (informer !== this.inner || this.stopped || !this.listed.has(informer) || this.failures !== failuresBefore) return;
    if (!this.hasSynced) {
      this.hasSynced = true;
      clearTimeout(this.startupTimer);
      this.startupRetry = undefined;
      for (const { resolve } of this.syncWaiters.splice(0)) resolve();
    }
    this.notify();
  }

  /** Start-up gave up: stop, and fail whoever waits for the first list. */
  private failStart(error: StartupError): void {
    this.stop();
    for (const { reject } of this.syncWaiters.splice(0)) reject(error);
  }

  private onError(informer: k8s.ListWatch<T>, err: unknown): void {
    if (this.stopped || informer !== this.inner) return;
    this.failures += 1;
    this.lastError = err;
    let delay: number;
    if (this.startupRetry) {
      const decision = this.startupRetry.failed(err);
      if ('giveUp' in decision) {
        this.failStart(decision.giveUp);
        return;
      }
      delay = decision.retryInMs;
      this.deps.logger.warn(
        { cause: decision.failure.message, fix: decision.failure.fix, resource: this.resource, attempt: decision.attempt, retryInMs: delay },
        'first list/watch failed; retrying',
      );
    } else {
      delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.timings.maxBackoffMs);
      this.deps.logger.warn({ cause: this.lastFailure(), resource: this.resource, retryInMs: delay }, 'watch failed; restarting');
    }
    this.deps.metrics.restarts.inc({ resource: this.resource, reason: 'error' });
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
