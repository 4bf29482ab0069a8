// Lease-based leader election (coordination.k8s.io/v1), after client-go's leaderelection: writes
// carry the Lease's resourceVersion, expiry is judged by the local clock from when we last saw the
// record change (no trust in other nodes' clocks), and a leader that cannot renew within
// renewDeadline stops acting as leader before its lease can expire for anyone else.
import * as k8s from '@kubernetes/client-node';
import { Gauge, Counter, type Registry } from 'prom-client';
import { leaseTimingsInOrder, type LeaseTimings } from '../config/env.js';
import { StartupRetry } from '../kube/failures.js';
import { statusCodeOf } from '../kube/resources.js';
import type { Logger } from '../log.js';
import { METRIC_PREFIX } from '../metrics.js';

export interface LeaderElectionOptions extends LeaseTimings {
  namespace: string;
  leaseName: string;
  identity: string;
}

export class LeaderElector {
  private readonly coordination: k8s.CoordinationV1Api;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** performance.now() of our last successful acquire/renew; undefined when not leading. */
  private renewedAt?: number;
  /** The record last seen and performance.now() when it last changed (client-go's observedTime). */
  private observed?: { holder: string; renewTime: string; at: number };
  private readonly listeners = new Set<(leading: boolean) => void>();
  private wasLeading = false;
  private readonly transitions: Counter;
  /** Until the Lease could be read or written once: start() waits for that, or fails. */
  private starting?: { retry: StartupRetry; resolve: () => void; reject: (err: Error) => void };

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: LeaderElectionOptions,
    private readonly deps: { logger: Logger; registry: Registry },
  ) {
    if (!leaseTimingsInOrder(options)) {
      throw new TypeError(`lease timings must satisfy retryPeriodMs < renewDeadlineMs < leaseDurationMs, got ${options.retryPeriodMs} < ${options.renewDeadlineMs} < ${options.leaseDurationMs}`);
    }
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const isLeader = (): boolean => this.isLeader();
    new Gauge({
      name: `${METRIC_PREFIX}controller_leader`,
      help: '1 while this controller replica holds the leader Lease and may write.',
      registers: [deps.registry],
      collect() {
        this.set(isLeader() ? 1 : 0);
      },
    });
    this.transitions = new Counter({
      name: `${METRIC_PREFIX}controller_leadership_changes_total`,
      help: 'Times this replica became or stopped being the leader.',
      registers: [deps.registry],
    });
  }

  /** True while we hold the lease and renewed it within renewDeadline: check before every write. */
  isLeader(): boolean {
    return this.renewedAt !== undefined && performance.now() - this.renewedAt < this.options.renewDeadlineMs;
  }

  onChange(listener: (leading: boolean) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Starts campaigning; resolves once the Lease could be read or written (leading or not).
   * @throws StartupError when that keeps failing (RBAC on leases, an unreachable apiserver).
   */
  start(): Promise<void> {
    this.stopped = false;
    const { namespace, leaseName } = this.options;
    return new Promise((resolve, reject) => {
      this.starting = { retry: new StartupRetry(`read/write Lease ${leaseName} in namespace ${namespace}`), resolve, reject };
      void this.tick();
    });
  }

  /** Stops campaigning and, when leading, releases the lease so a peer takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const leading = this.isLeader();
    this.renewedAt = undefined;
    this.notify();
    if (!leading) return;
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      await this.coordination.replaceNamespacedLease({ name: this.options.leaseName, namespace: this.options.namespace, body: lease });
      this.deps.logger.info('leader lease released');
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not release the leader lease; a peer takes over when it expires');
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let delayMs = this.options.retryPeriodMs;
    try {
      await this.tryAcquireOrRenew();
      this.starting?.resolve();
      this.starting = undefined;
    } catch (err) {
      const decision = this.starting?.retry.failed(err);
      if (decision && 'giveUp' in decision) {
        this.stopped = true;
        this.starting!.reject(decision.giveUp);
        return;
      }
      if (decision) {
        delayMs = decision.retryInMs;
        this.deps.logger.warn({ cause: decision.failure.message, fix: decision.failure.fix, attempt: decision.attempt, retryInMs: delayMs }, 'leader election: could not read or write the lease; retrying');
      } else {
        this.deps.logger.warn({ err }, 'leader election: could not read or write the lease');
      }
    }
    if (this.renewedAt !== undefined && !this.isLeader()) {
      this.deps.logger.warn('leader election: renew deadline passed; stopped leading');
      this.renewedAt = undefined;
    }
    this.notify();
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async read(): Promise<k8s.V1Lease | undefined> {
    try {
      return await this.coordination.readNamespacedLease({ name: this.options.leaseName, namespace: this.options.namespace });
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { identity, leaseName, namespace, leaseDurationMs } = this.options;
    const now = new k8s.V1MicroTime();
    const attemptAt = performance.now();
    const lease = await this.read();
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    if (!lease) {
      await this.coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name: leaseName, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        },
      });
      this.renewedAt = attemptAt;
      return;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = String(spec.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: attemptAt };
    }
    const heldByOther = holder !== '' && holder !== identity;
    const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (heldByOther && attemptAt - this.observed.at < durationMs) {
      this.renewedAt = undefined;
      return;
    }
    const body: k8s.V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: now,
        acquireTime: holder === identity ? spec.acquireTime : now,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
      },
    };
    // replace carries lease.metadata.resourceVersion: a concurrent writer makes this fail with 409.
    try {
      await this.coordination.replaceNamespacedLease({ name: leaseName, namespace, body });
    } catch (err) {
      if (statusCodeOf(err) === 409) {
        this.renewedAt = undefined;
        return;
      }
      throw err;
    }
    this.renewedAt = attemptAt;
  }

  private notify(): void {
    const leading = this.isLeader();
    if (leading === this.wasLeading) return;
    this.wasLeading = leading;
    this.transitions.inc();
    this.deps.logger.info({ leading, lease: `${this.options.namespace}/${this.options.leaseName}` }, leading ? 'became leader' : 'stopped leading');
    for (const listener of this.listeners) listener(leading);
  }
}
