// Informer metrics, one set per process shared by its SupervisedInformers, and the watches' liveness check.
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics.js';

/** What InformerMetrics reads of a running informer (a SupervisedInformer). */
export interface TrackedInformer {
  readonly resource: string;
  size(): number;
  lastActivityAgeMs(): number;
  unansweredForMs(): number;
  lastFailure(): string | undefined;
}

/** One set of informer metrics per process, labelled by resource, and the watches' liveness. */
export class InformerMetrics {
  readonly restarts: Counter<'resource' | 'reason'>;
  readonly lists: Counter<'resource'>;
  readonly objects: Gauge<'resource'>;
  readonly lastActivityAge: Gauge<'resource'>;
  private readonly informers = new Set<TrackedInformer>();

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

  track(informer: TrackedInformer): void {
    this.informers.add(informer);
  }

  untrack(informer: TrackedInformer): void {
    this.informers.delete(informer);
  }

  /**
   * Liveness: undefined unless a watch has been without an open stream and without any answer from
   * the apiserver (a list, a connected watch) for longer than `limitMs`. A quiet watch with an open
   * stream is healthy however long nothing happens.
   */
  deadWatch(limitMs: number): string | undefined {
    for (const informer of this.informers) {
      const ageMs = informer.unansweredForMs();
      if (ageMs <= limitMs) continue;
      const lastError = informer.lastFailure();
      return `watch of ${informer.resource} without an answer from the apiserver for ${Math.round(ageMs / 1000)}s (limit ${Math.round(limitMs / 1000)}s)${lastError ? `; last error: ${lastError}` : ''}`;
    }
    return undefined;
  }
}
