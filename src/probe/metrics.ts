import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics.js';
import type { Protocol, ProbeResult } from './outcome.js';

const PROTOCOLS: readonly Protocol[] = ['tcp', 'icmp'];
const RESULTS: readonly ProbeResult[] = ['success', 'refused', 'failure', 'timeout', 'error'];
/** Label objects made once, not per probe (thousands per second). Never mutated. */
const PROTOCOL_LABELS = Object.fromEntries(PROTOCOLS.map((protocol) => [protocol, { protocol }])) as Record<Protocol, { protocol: Protocol }>;
/** One label set per slot of ProbeMetrics' probe counts: slot = protocol × RESULTS.length + result. */
const PROBE_LABELS = PROTOCOLS.flatMap((protocol) => RESULTS.map((result) => ({ protocol, result })));
const PROTOCOL_OFFSET = Object.fromEntries(PROTOCOLS.map((protocol, index) => [protocol, index * RESULTS.length])) as Record<Protocol, number>;
const RESULT_INDEX = Object.fromEntries(RESULTS.map((result, index) => [result, index])) as Record<ProbeResult, number>;

type Observer = { observe(value: number): void };

/** The probe engine's metrics; label values are bounded (protocol × result) except the opt-in per-target gauge. */
export class ProbeMetrics {
  /**
   * Probes counted here per protocol × result, and added to the counter when it is read (its collect):
   * prom-client's inc() builds a key string from the labels on every call.
   */
  private readonly probeCounts = new Float64Array(PROBE_LABELS.length);
  /** The duration histogram's series per protocol, looked up once, not per probe. */
  private readonly durations: Record<Protocol, Observer>;
  /** The lateness histogram's one series, looked up once. */
  private readonly lateness: Observer;
  private readonly round: Histogram;
  readonly refusedTargets: Counter;
  private readonly targetReachable: Gauge<'address'>;

  constructor(registry: Registry, counts: { targets(): number; unreachable(): number }) {
    const registers = [registry];
    const probeCounts = this.probeCounts;
    new Counter({
      name: `${METRIC_PREFIX}probes_total`,
      help: 'Probes run, by protocol and result (error: the probe could not run here, not a target failure).',
      labelNames: ['protocol', 'result'],
      registers,
      collect() {
        for (let slot = 0; slot < probeCounts.length; slot++) {
          if (probeCounts[slot] === 0) continue;
          this.inc(PROBE_LABELS[slot]!, probeCounts[slot]);
          probeCounts[slot] = 0;
        }
      },
    });
    const duration = new Histogram({
      name: `${METRIC_PREFIX}probe_duration_seconds`,
      help: 'Duration of a probe, by protocol.',
      labelNames: ['protocol'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.durations = { tcp: duration.labels(PROTOCOL_LABELS.tcp), icmp: duration.labels(PROTOCOL_LABELS.icmp) };
    this.lateness = new Histogram({
      name: `${METRIC_PREFIX}probe_lateness_seconds`,
      help: 'How long after its planned time a probe started; grows when the probe pool is saturated.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }).labels();
    this.round = new Histogram({
      name: `${METRIC_PREFIX}probe_round_duration_seconds`,
      help: 'Time until every target was probed once more; rounds longer than the interval mean this node cannot keep up.',
      buckets: [0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300],
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}targets`,
      help: 'Targets being probed.',
      registers,
      collect() {
        this.set(counts.targets());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}targets_unreachable`,
      help: 'Targets currently unreachable.',
      registers,
      collect() {
        this.set(counts.unreachable());
      },
    });
    this.refusedTargets = new Counter({
      name: `${METRIC_PREFIX}target_refused_total`,
      help: 'Target addresses refused by the allow-list (counted once each time an address appears).',
      registers,
    });
    this.targetReachable = new Gauge({
      name: `${METRIC_PREFIX}target_reachable`,
      help: 'Per target (only when perTargetMetrics is on): 1 reachable, 0 unreachable; no series while unknown.',
      labelNames: ['address'],
      registers,
    });
  }

  probe(protocol: Protocol, result: ProbeResult, durationMs: number): void {
    this.probeCounts[PROTOCOL_OFFSET[protocol] + RESULT_INDEX[result]]! += 1;
    this.durations[protocol].observe(durationMs / 1000);
  }

  /** Probes started and their summed lateness since start, for the report's probe rate (cheaper than reading the histogram). */
  readonly totals = { started: 0, latenessMs: 0 };

  probeStarted(latenessMs: number): void {
    const late = Math.max(0, latenessMs);
    this.lateness.observe(late / 1000);
    this.totals.started++;
    this.totals.latenessMs += late;
  }

  roundCompleted(durationMs: number): void {
    this.round.observe(durationMs / 1000);
  }

  setTargetReachable(address: string, reachable: boolean): void {
    this.targetReachable.set({ address }, reachable ? 1 : 0);
  }

  deleteTarget(address: string): void {
    this.targetReachable.remove({ address });
  }

  clearTargets(): void {
    this.targetReachable.reset();
  }
}
