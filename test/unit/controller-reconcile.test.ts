// The controller's pass without I/O: plan from objects (planPass), then the reconciler writes through
// an in-memory ControllerWriter that behaves as the apiserver does for these calls (resourceVersions,
// 409 on a stale replace, 404 on a missing object, uid preconditions).
import { ApiException, type V1EndpointSlice } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/config.js';
import type { ServiceImport } from '../../src/contract/kosmos.js';
import { REPORT_GROUP, REPORT_KIND, REPORT_VERSION, type ProbeReport, type ProbeReportSpec } from '../../src/contract/probe-report.js';
import { controllerMetrics } from '../../src/controller/metrics.js';
import { Reconciler } from '../../src/controller/reconciler.js';
import type { ControllerWriter } from '../../src/kube/controller-writer.js';
import type { EventRecorder, EventTarget } from '../../src/kube/events.js';
import { createLogger } from '../../src/log.js';
import { targetSetDigest } from '../../src/report/coverage.js';
import { planPass } from '../../src/report/pass-plan.js';
import { NOW, makeEndpointSlice, makeReport, roundTrip, serviceImport } from './fixtures.js';

const CONFIG: Config = { ...DEFAULT_CONFIG, allowCidrs: ['10.0.0.0/8'] };
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];

function apiError(code: number): ApiException<string> {
  return new ApiException(code, `HTTP ${code}`, '{}', {});
}

/** The objects the controller writes, kept as the apiserver keeps them, and the writes it received. */
class InMemoryCluster implements ControllerWriter {
  readonly serviceImports = new Map<string, ServiceImport>();
  readonly slices = new Map<string, V1EndpointSlice>();
  readonly reports = new Map<string, ProbeReport>();
  readonly writes: string[] = [];
  private version = 1;
  /** Runs before the next replace of a slice: another writer getting there first. */
  beforeNextReplace?: () => void;

  addServiceImport(si: ServiceImport): void {
    this.serviceImports.set(`${si.metadata.namespace}/${si.metadata.name}`, si);
  }

  storeSlice(slice: V1EndpointSlice): void {
    const stored = roundTrip(slice);
    stored.metadata!.resourceVersion = String(++this.version);
    this.slices.set(`${stored.metadata!.namespace}/${stored.metadata!.name}`, stored);
  }

  addReport(spec: ProbeReportSpec, uid = `uid-${spec.nodeName}`): void {
    this.reports.set(spec.nodeName, { apiVersion: `${REPORT_GROUP}/${REPORT_VERSION}`, kind: REPORT_KIND, metadata: { name: spec.nodeName, uid }, spec });
  }

  async patchDisconnected(namespace: string, name: string, value: string): Promise<void> {
    const si = this.serviceImports.get(`${namespace}/${name}`);
    if (!si) throw apiError(404);
    this.writes.push(`patch ${namespace}/${name} ${JSON.stringify(value)}`);
    si.metadata.annotations = { ...si.metadata.annotations, 'kosmos.io/disconnected-address': value };
  }

  async replaceSlice(slice: V1EndpointSlice): Promise<void> {
    this.beforeNextReplace?.();
    this.beforeNextReplace = undefined;
    const key = `${slice.metadata!.namespace}/${slice.metadata!.name}`;
    const stored = this.slices.get(key);
    if (!stored) throw apiError(404);
    if (stored.metadata!.resourceVersion !== slice.metadata!.resourceVersion) {
      this.writes.push(`conflict ${key}`);
      throw apiError(409);
    }
    this.writes.push(`replace ${key}`);
    this.storeSlice(slice);
  }

  async readSlice(namespace: string, name: string): Promise<V1EndpointSlice> {
    const stored = this.slices.get(`${namespace}/${name}`);
    if (!stored) throw apiError(404);
    return roundTrip(stored);
  }

  async deleteReport(name: string, uid: string | undefined): Promise<void> {
    const report = this.reports.get(name);
    if (!report) throw apiError(404);
    if (uid !== report.metadata.uid) throw apiError(409);
    this.writes.push(`delete report ${name}`);
    this.reports.delete(name);
  }

  /** The addresses a slice serves. */
  served(key: string): string[] {
    return (this.slices.get(key)?.endpoints ?? []).flatMap((endpoint) => endpoint.addresses).sort();
  }

  annotation(key: string): string | undefined {
    return this.serviceImports.get(key)?.metadata.annotations?.['kosmos.io/disconnected-address'];
  }
}

interface RecordedEvent {
  type: 'Normal' | 'Warning';
  object: string;
  reason: string;
  message: string;
}

function eventRecorder(events: RecordedEvent[]): EventRecorder {
  const record = (type: RecordedEvent['type']) => (target: EventTarget, reason: string, message: string) =>
    events.push({ type, object: `${target.kind} ${target.namespace ? `${target.namespace}/` : ''}${target.name}`, reason, message });
  return { normal: record('Normal'), warning: record('Warning') };
}

describe('controller reconcile (plan + reconciler, in-memory writer)', () => {
  let cluster: InMemoryCluster;
  let events: RecordedEvent[];
  let leading: boolean;
  let nodes: Set<string>;
  let reconciler: Reconciler;
  let registry: Registry;

  beforeEach(() => {
    cluster = new InMemoryCluster();
    cluster.addServiceImport(serviceImport({ name: 'svc', namespace: 'ns' }));
    cluster.storeSlice(makeEndpointSlice({ name: 'svc-abc', namespace: 'ns', service: 'svc', addresses: ADDRESSES }));
    events = [];
    leading = true;
    nodes = new Set(['a', 'b', 'c']);
    registry = new Registry();
    reconciler = new Reconciler({
      writer: cluster,
      events: eventRecorder(events),
      logger: createLogger({ level: 'silent' }),
      metrics: controllerMetrics(registry),
      isLeader: () => leading,
      mcsVersion: 'v1alpha1',
      reportUid: (name) => cluster.reports.get(name)?.metadata.uid,
      sleep: async () => {},
    });
  });

  /** One pass over the cluster's objects as they are now; returns the writes it made. */
  async function pass(now = NOW): Promise<string[]> {
    const before = cluster.writes.length;
    const plan = planPass({
      serviceImports: [...cluster.serviceImports.values()].map(roundTrip),
      slices: [...cluster.slices.values()].map(roundTrip),
      reports: [...cluster.reports.values()],
      nodeExists: (name) => nodes.has(name),
      now,
      configVersion: '1',
      settings: CONFIG,
    });
    await reconciler.apply(plan, CONFIG, now);
    return cluster.writes.slice(before);
  }

  /** Reports of agents that probe every address (their votes cover them all). */
  function reportsSeeing(unreachable: Record<string, string[]>): void {
    for (const [node, addresses] of Object.entries(unreachable)) cluster.addReport(makeReport(node, addresses, { targetsProbed: ADDRESSES.length, targetSetDigest: targetSetDigest(ADDRESSES) }));
  }

  it('prunes what a majority of nodes finds unreachable, with one patch and one slice write, then writes nothing', async () => {
    reportsSeeing({ a: ['10.0.0.1'], b: ['10.0.0.1'], c: [] });
    expect(await pass()).toEqual(['patch ns/svc "10.0.0.1"', 'replace ns/svc-abc']);
    expect(cluster.served('ns/svc-abc')).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(events).toEqual([{ type: 'Warning', object: 'ServiceImport ns/svc', reason: 'EndpointsDisconnected', message: 'unreachable from the cluster, pruned: 10.0.0.1' }]);
    expect(await pass()).toEqual([]);
    expect(events).toHaveLength(1);
  });

  it('restores the address when the nodes reach it again, and says it is restored', async () => {
    reportsSeeing({ a: ['10.0.0.1'], b: ['10.0.0.1'], c: [] });
    await pass();
    reportsSeeing({ a: [], b: [], c: [] });
    expect(await pass()).toEqual(['patch ns/svc ""', 'replace ns/svc-abc']);
    expect(cluster.served('ns/svc-abc')).toEqual(ADDRESSES);
    expect(events.at(-1)).toEqual({ type: 'Normal', object: 'ServiceImport ns/svc', reason: 'EndpointsReconnected', message: 'reachable again, restored: 10.0.0.1' });
  });

  it('keeps what one node alone sees unreachable in service', async () => {
    reportsSeeing({ a: ['10.0.0.1'], b: [], c: [] });
    expect(await pass()).toEqual([]);
    expect(cluster.served('ns/svc-abc')).toEqual(ADDRESSES);
  });

  it('on a conflict re-reads the slice and prunes the fresh copy, keeping what the other writer added', async () => {
    reportsSeeing({ a: ['10.0.0.1'], b: ['10.0.0.1'], c: [] });
    cluster.beforeNextReplace = () => {
      cluster.storeSlice(makeEndpointSlice({ name: 'svc-abc', namespace: 'ns', service: 'svc', addresses: [...ADDRESSES, '10.0.0.5'] }));
    };
    expect(await pass()).toEqual(['patch ns/svc "10.0.0.1"', 'conflict ns/svc-abc', 'replace ns/svc-abc']);
    expect(cluster.served('ns/svc-abc')).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  });

  it('writes nothing while another replica leads', async () => {
    reportsSeeing({ a: ['10.0.0.1'], b: ['10.0.0.1'], c: [] });
    leading = false;
    expect(await pass()).toEqual([]);
    expect(cluster.annotation('ns/svc')).toBeUndefined();
    expect(cluster.served('ns/svc-abc')).toEqual(ADDRESSES);
  });

  it('holds back what the ejection cap forbids and tells it once while it lasts', async () => {
    reportsSeeing({ a: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], b: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], c: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] });
    await pass();
    expect(cluster.served('ns/svc-abc')).toHaveLength(2);
    await pass();
    const capped = events.filter((event) => event.reason === 'EjectionCapped');
    expect(capped).toHaveLength(1);
    expect(capped[0]!.message).toMatch(/^ejection cap \(0\.5\) keeps unreachable addresses in service: 10\.0\.0\.\d$/);
  });

  it('counts no report of a name that is no Node, tells it once, and deletes it after reportStaleAfter', async () => {
    reportsSeeing({ a: ['10.0.0.1'], ghost: ['10.0.0.1'], c: [] });
    expect(await pass()).toEqual([]);
    expect(await pass(new Date(NOW.getTime() + 1000))).toEqual([]);
    expect(events).toEqual([{ type: 'Warning', object: 'ProbeReport ghost', reason: 'ReportIgnored', message: 'not counted (no-node): no Node named "ghost"' }]);
    const later = new Date(NOW.getTime() + CONFIG.controller.reportStaleAfterMs);
    // The reports have aged too by then: nothing is decided from them, the orphan is deleted.
    expect(await pass(later)).toEqual(['delete report ghost']);
    expect(events.at(-1)).toMatchObject({ reason: 'ReportDeleted', message: 'Node ghost has been gone for 90 s: its report is deleted' });
    const metrics = await registry.getSingleMetricAsString('eps_probe_controller_invalid_reports_total');
    expect(metrics).toContain('eps_probe_controller_invalid_reports_total{reason="no-node"} 1');
  });
});
