// Makes one pass's plan (src/report/pass-plan.ts) true through a ControllerWriter: the annotation of
// each ServiceImport, then its slices, writing only differences; and tells what changed in logs,
// metrics and Events. Every write goes through the write policy, so only the leader writes.
import type * as k8s from '@kubernetes/client-node';
import pLimit, { type LimitFunction } from 'p-limit';
import { formatAddressList } from '../contract/addresses.js';
import { MCS_GROUP, type McsVersion } from '../contract/kosmos.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_VERSION } from '../contract/probe-report.js';
import type { ControllerWriter } from '../kube/controller-writer.js';
import type { EventRecorder, EventTarget } from '../kube/events.js';
import { statusCodeOf } from '../kube/resources.js';
import { writeWithRetry, type WriteOutcome, type WritePolicy } from '../kube/write-policy.js';
import { ReportedProblems, type Logger } from '../log.js';
import type { Quorum, ReconnectReason } from '../report/aggregate.js';
import type { PassPlan, ServiceImportPlan } from '../report/pass-plan.js';
import { desiredSlice, missingFromSlices } from '../report/prune.js';
import { resetServiceImportMetrics, type ControllerMetrics } from './metrics.js';

/** Re-reads of a slice after conflicts before the pass gives up on it. */
const MAX_CONFLICT_ROUNDS = 5;

export interface ReconcilerDeps {
  writer: ControllerWriter;
  events: EventRecorder;
  logger: Logger;
  metrics: ControllerMetrics;
  isLeader: () => boolean;
  /** The ServiceImport version served, for the objects Events name. */
  mcsVersion: McsVersion;
  /** The uid of a cached report, for the Events about it. */
  reportUid: (name: string) => string | undefined;
  /** Writes in flight at once. */
  writeConcurrency?: number;
  /** Backoff between attempts; the default sleeps. */
  writePolicy?: WritePolicy;
  sleep?: (ms: number) => Promise<void>;
}

/** The settings the reconciler's messages and the orphan grace read. */
export interface ReconcilerSettings {
  controller: { quorum: Quorum; maxEjectionShare: number; reportStaleAfterMs: number };
}

export class Reconciler {
  private readonly limit: LimitFunction;
  /** Per slice, `resourceVersion|disconnected` last found already in its desired state: skipped next time. */
  private readonly settledSlices = new Map<string, string>();
  /** Conditions told by an Event when they start or change, not on each pass that still finds them. */
  private readonly ejectionCapped = new ReportedProblems<string>();
  private readonly guarded = new ReportedProblems<string>();
  private readonly isolated = new ReportedProblems<string>();
  /** Reports that cannot vote: each logged, counted and told in an Event once while it stays invalid. */
  private readonly invalidReports = new ReportedProblems<string>();
  /** Per report of a Node that does not exist, when a pass first found it so (ms). */
  private readonly orphanedSince = new Map<string, number>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.limit = pLimit(deps.writeConcurrency ?? 16);
  }

  async apply(plan: PassPlan, settings: ReconcilerSettings, now: Date): Promise<void> {
    const { metrics } = this.deps;
    // Series of ServiceImports that are gone (or filtered out) disappear with this pass.
    resetServiceImportMetrics(metrics);
    this.tellInvalidReports(plan);
    for (const [state, count] of Object.entries(plan.reportStates)) metrics.liveReports.set({ state }, count);
    this.tellIsolated(plan.decision.isolated);
    try {
      await Promise.all(plan.serviceImports.map((si) => this.reconcileServiceImport(si, settings)));
    } finally {
      this.ejectionCapped.endPass();
      this.guarded.endPass();
    }
    this.forgetDeletedSlices(plan.serviceImports.flatMap((si) => si.slices));
    const orphans = plan.decision.invalid.filter((report) => report.reason === 'no-node').map((report) => report.name);
    await this.deleteOrphans(orphans, now.getTime(), settings.controller.reportStaleAfterMs);
  }

  private reportRef(name: string): EventTarget {
    return { apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name, uid: this.deps.reportUid(name) };
  }

  private tellInvalidReports(plan: PassPlan): void {
    for (const problem of plan.decision.invalid) {
      if (!this.invalidReports.isNew(`${problem.name}\0${problem.reason}`)) continue;
      this.deps.metrics.invalidReports.inc({ reason: problem.reason });
      this.deps.logger.warn({ report: problem.name, reason: problem.reason, detail: problem.detail }, 'report ignored: it cannot vote');
      this.deps.events.warning(this.reportRef(problem.name), 'ReportIgnored', `not counted (${problem.reason}): ${problem.detail}`);
    }
    this.invalidReports.endPass();
  }

  /** A log line and an Event when a node becomes isolated (or why changes). */
  private tellIsolated(isolated: ReadonlyMap<string, string>): void {
    for (const [node, reason] of isolated) {
      if (!this.isolated.changed(node, reason)) continue;
      this.deps.logger.info({ node, reason }, 'node isolated: its votes are ignored');
      this.deps.events.warning({ apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, name: node }, 'NodeIsolated', `votes ignored by the isolation guard: the node ${reason}`);
    }
    this.isolated.endPass();
  }

  /**
   * Deletes the reports of Nodes that are gone (not every cluster runs the garbage collector that
   * their owner reference asks for). A report is deleted only once its Node has been missing for
   * `graceMs`, so a report written just before its Node reached our cache survives.
   */
  private async deleteOrphans(orphans: readonly string[], nowMs: number, graceMs: number): Promise<void> {
    const current = new Set(orphans);
    for (const name of this.orphanedSince.keys()) if (!current.has(name)) this.orphanedSince.delete(name);
    await Promise.all(
      orphans.map(async (name) => {
        const since = this.orphanedSince.get(name) ?? nowMs;
        this.orphanedSince.set(name, since);
        if (nowMs - since < graceMs) return;
        const ref = this.reportRef(name);
        const deleted = await this.write('probereports', () => this.deps.writer.deleteReport(name, ref.uid));
        if (deleted !== 'written') return;
        this.orphanedSince.delete(name);
        const message = `Node ${name} has been gone for ${Math.round((nowMs - since) / 1000)} s: its report is deleted`;
        this.deps.logger.info({ report: name }, message);
        this.deps.events.normal(ref, 'ReportDeleted', message);
      }),
    );
  }

  /** `synced`: the synced MCS slices, the only ones ever recorded as settled. */
  private forgetDeletedSlices(synced: readonly k8s.V1EndpointSlice[]): void {
    if (this.settledSlices.size <= synced.length) return;
    const present = new Set(synced.map((slice) => `${slice.metadata?.namespace}/${slice.metadata?.name}`));
    for (const key of this.settledSlices.keys()) if (!present.has(key)) this.settledSlices.delete(key);
  }

  private async reconcileServiceImport(plan: ServiceImportPlan, settings: ReconcilerSettings): Promise<void> {
    const { serviceImport: si, verdict, key, annotation } = plan;
    const { namespace, name } = si.metadata;
    const { metrics, events } = this.deps;
    const labels = { namespace, serviceimport: name };
    metrics.disconnected.set(labels, verdict.disconnected.size);
    metrics.ejectionCapped.set(labels, verdict.ejectionCapped.length);
    const ref: EventTarget = { apiVersion: `${MCS_GROUP}/${this.deps.mcsVersion}`, kind: 'ServiceImport', name, namespace, uid: si.metadata.uid };
    const ejectionCapped = verdict.ejectionCapped.join(',');
    if (this.ejectionCapped.changed(key, ejectionCapped)) {
      events.warning(ref, 'EjectionCapped', `ejection cap (${settings.controller.maxEjectionShare}) keeps unreachable addresses in service: ${ejectionCapped}`);
    }
    const guarded = verdict.guarded.join(',');
    if (this.guarded.changed(key, guarded)) {
      events.warning(ref, 'IsolationGuarded', `only nodes the isolation guard ignores see these addresses unreachable; kept in service: ${guarded}`);
    }
    let reconnected: string[] = [];
    if (annotation.desired !== (annotation.current ?? '')) {
      const before = annotation.published;
      const written = await this.write('serviceimports', () => this.deps.writer.patchDisconnected(namespace, name, annotation.desired));
      if (written === 'written') {
        const disconnected = [...verdict.disconnected].filter((a) => !before.has(a)).sort();
        reconnected = [...before].filter((a) => !verdict.disconnected.has(a)).sort();
        this.deps.logger.info({ serviceImport: key, disconnected, reconnected }, 'disconnected addresses updated');
        if (disconnected.length) events.warning(ref, 'EndpointsDisconnected', `unreachable from the cluster, pruned: ${disconnected.join(',')}`);
      }
    }
    const after = await Promise.all(plan.slices.map((slice) => this.reconcileSlice(slice, verdict.disconnected)));
    const missing = missingFromSlices(after, plan.addresses, verdict.disconnected);
    metrics.missing.set(labels, missing.size);
    if (reconnected.length) this.tellReconnected(ref, reconnected, verdict.reconnected, missing, settings);
  }

  /**
   * One Event per reason why addresses came back: only `reachable` means the cluster reaches them
   * again. "Restored" is said only of addresses the synced slices hold again: where a Kosmos re-sync
   * overwrote our record of what we removed, the address is back when Kosmos re-syncs (docs/kosmos.md).
   */
  private tellReconnected(ref: EventTarget, reconnected: readonly string[], reasons: ReadonlyMap<string, ReconnectReason>, missing: ReadonlySet<string>, settings: ReconcilerSettings): void {
    const { events } = this.deps;
    const { quorum, maxEjectionShare } = settings.controller;
    const byReason = Map.groupBy(reconnected, (address) => reasons.get(address) ?? 'reachable');
    for (const [reason, addresses] of byReason) {
      const restored = addresses.filter((a) => !missing.has(a));
      const pending = addresses.filter((a) => missing.has(a));
      const outcome = [
        restored.length ? `restored: ${restored.join(',')}` : '',
        pending.length ? `not in the synced slices yet, Kosmos restores them at its re-sync: ${pending.join(',')}` : '',
      ].filter(Boolean).join('; ');
      if (reason === 'reachable') events.normal(ref, 'EndpointsReconnected', `reachable again, ${outcome}`);
      if (reason === 'quorum') events.normal(ref, 'EndpointsReconnected', `no longer unreachable for the quorum (${quorum}) of nodes, ${outcome}`);
      if (reason === 'removed') events.normal(ref, 'EndpointsReconnected', `no longer addresses of this ServiceImport, dropped from the disconnected list: ${addresses.join(',')}`);
      if (reason === 'capped') events.warning(ref, 'EndpointsReleased', `still unreachable, back in service because the ejection cap (${maxEjectionShare}) allows fewer disconnected addresses; ${outcome}`);
      if (reason === 'guarded') events.warning(ref, 'EndpointsReleased', `still unreachable for nodes the isolation guard ignores, back in service; ${outcome}`);
    }
  }

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
      const outcome = await this.write('endpointslices', () => this.deps.writer.replaceSlice(body), true);
      if (outcome === 'written') {
        this.deps.logger.info({ slice: key, removed: result.removed, restored: result.restored }, 'endpoint slice updated');
        return body;
      }
      if (outcome !== 'conflict') return slice;
      try {
        slice = await this.deps.writer.readSlice(namespace, name);
      } catch (err) {
        if (statusCodeOf(err) !== 404) this.deps.logger.warn({ err, slice: key }, 'could not re-read slice after a conflict');
        return slice;
      }
    }
    return slice;
  }

  /** One write through the write policy (src/kube/write-policy.ts), at most writeConcurrency at once. */
  private write(resource: string, request: () => Promise<unknown>, callerHandlesConflict = false): Promise<WriteOutcome> {
    return this.limit(() =>
      writeWithRetry(
        request,
        {
          isLeader: this.deps.isLeader,
          callerHandlesConflict,
          onAttempt: (result) => this.deps.metrics.writes.inc({ resource, result }),
          onFailed: (err, attempt) => this.deps.logger.error({ err, resource, attempt }, 'write failed; retrying at the next pass'),
          sleep: this.deps.sleep,
        },
        this.deps.writePolicy,
      ),
    );
  }
}
