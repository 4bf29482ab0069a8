// The agent's decisions without I/O: which targets it probes (planTargets), which view it publishes
// from the engine's states (planView), and what the publisher writes through an in-memory ReportWriter.
import { ApiException } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { planTargets, planView } from '../../src/agent/plan.js';
import { ReportPublisher, type ReportContext } from '../../src/agent/publisher.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';
import type { ReportWriter } from '../../src/kube/report-writer.js';
import { createLogger } from '../../src/log.js';
import { targetSetDigest } from '../../src/report/coverage.js';
import type { TargetState } from '../../src/report/view.js';
import { makeEndpointSlice, serviceImport } from './fixtures.js';

const SETTINGS = { namespaces: { include: [], exclude: [] }, allowCidrs: ['10.0.0.0/24'], probeReplicas: 0, selfIsolationShare: 0.5 };
const SERVICE_IMPORTS = [serviceImport({ name: 'svc', namespace: 'ns' }), serviceImport({ name: 'other', namespace: 'ns', addresses: ['10.0.0.9'] })];
const SLICES = [makeEndpointSlice({ name: 'svc-abc', namespace: 'ns', service: 'svc', addresses: ['10.0.0.1', '10.0.0.2', '10.0.1.1', 'not-an-ip'] })];

function states(byAddress: Record<string, TargetState['state']>, owner = 'ns/svc'): TargetState[] {
  return Object.entries(byAddress).map(([address, state]) => ({ address, owners: [owner], state }));
}

describe('planTargets', () => {
  it('probes every valid address, lists invalid ones, and covers with its votes only what the allow-list lets in', () => {
    const plan = planTargets({ serviceImports: SERVICE_IMPORTS, slices: SLICES, nodeName: 'a', members: ['a'], settings: SETTINGS });
    expect(plan.targets.map((t) => t.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.9', '10.0.1.1']);
    expect(plan.invalid.map((problem) => problem.value)).toEqual(['not-an-ip']);
    expect(plan.targetDigest).toBe(targetSetDigest(['10.0.0.1', '10.0.0.2', '10.0.0.9']));
  });

  it('with probeReplicas, the members share the targets: each probed by exactly that many nodes', () => {
    const members = ['a', 'b', 'c'];
    const settings = { ...SETTINGS, probeReplicas: 2 };
    const shares = members.map((nodeName) => planTargets({ serviceImports: SERVICE_IMPORTS, slices: SLICES, nodeName, members, settings }));
    for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.9', '10.0.1.1']) {
      expect(shares.filter((share) => share.targets.some((t) => t.address === address))).toHaveLength(2);
    }
    // Every member votes over the same set, whatever its share.
    expect(new Set(shares.map((share) => share.targetDigest)).size).toBe(1);
  });
});

describe('planView', () => {
  const base = { inheritedUnreachable: new Set<string>(), abstaining: false, members: ['a'], targetDigest: 'd', settings: SETTINGS };

  it('lists unreachable and not yet judged targets per ServiceImport', () => {
    const view = planView({ ...base, states: states({ '10.0.0.1': 'unreachable', '10.0.0.2': 'reachable', '10.0.1.1': 'unknown' }) });
    expect(view.serviceImports).toEqual([{ namespace: 'ns', name: 'svc', unreachable: ['10.0.0.1'], unknown: ['10.0.1.1'] }]);
    expect(view.targetSetDigest).toBe('d');
    expect(view.membersDigest).toBe('');
  });

  it('after a restart keeps the previous report\'s "unreachable" for targets not judged yet', () => {
    const view = planView({ ...base, inheritedUnreachable: new Set(['10.0.0.1']), states: states({ '10.0.0.1': 'unknown', '10.0.0.2': 'reachable' }) });
    expect(view.serviceImports[0]!.unreachable).toEqual(['10.0.0.1']);
  });

  it('a starved agent turns its "unreachable" into no vote, and keeps its "reachable"', () => {
    const view = planView({ ...base, abstaining: true, states: states({ '10.0.0.1': 'unreachable', '10.0.0.2': 'reachable' }) });
    expect(view.serviceImports).toEqual([{ namespace: 'ns', name: 'svc', unreachable: [], unknown: ['10.0.0.1'] }]);
  });
});

/** The node's report as the apiserver would hold it, and every write it received. */
class InMemoryReports implements ReportWriter {
  readonly written: ProbeReportSpec[] = [];
  /** HTTP status of the next writes' failures, in turn. */
  failures: number[] = [];

  async put(spec: ProbeReportSpec): Promise<void> {
    const code = this.failures.shift();
    if (code !== undefined) throw new ApiException(code, `HTTP ${code}`, '{}', {});
    this.written.push(structuredClone(spec));
  }
}

describe('publishing the view (ReportPublisher through an in-memory writer)', () => {
  const context: ReportContext = { agentVersion: 'test', configVersion: '1', probeReplicas: 0, heartbeatPeriodMs: 30_000 };
  let reports: InMemoryReports;
  let publisher: ReportPublisher;
  const publish = (byAddress: Record<string, TargetState['state']>) =>
    publisher.update(planView({ states: states(byAddress), inheritedUnreachable: new Set(), abstaining: false, members: ['a'], targetDigest: 'd', settings: SETTINGS }), context);

  beforeEach(() => {
    vi.useFakeTimers();
    reports = new InMemoryReports();
    publisher = new ReportPublisher(reports, 'a', { logger: createLogger({ level: 'silent' }), registry: new Registry() });
  });
  afterEach(() => {
    publisher.stop();
    vi.useRealTimers();
  });

  it('writes when the view changes, not when it stays, and once per heartbeat period in a steady state', async () => {
    await publish({ '10.0.0.1': 'reachable', '10.0.0.2': 'reachable' });
    await publish({ '10.0.0.1': 'reachable', '10.0.0.2': 'reachable' });
    await publish({ '10.0.0.1': 'unreachable', '10.0.0.2': 'reachable' });
    expect(reports.written.map((spec) => spec.serviceImports[0]?.unreachable ?? [])).toEqual([[], ['10.0.0.1']]);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(reports.written).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reports.written).toHaveLength(3);
    expect(reports.written[2]!.serviceImports[0]!.unreachable).toEqual(['10.0.0.1']);
    expect(Date.parse(reports.written[2]!.heartbeatTime)).toBeGreaterThan(Date.parse(reports.written[1]!.heartbeatTime));
  });

  it('retries a failed write within 5 s rather than at the next heartbeat', async () => {
    reports.failures = [503];
    await publish({ '10.0.0.1': 'unreachable' });
    expect(reports.written).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(reports.written).toHaveLength(1);
    expect(publisher.firstWriteRefusal).toBeUndefined();
  });

  it('after a refused first write (403) sends nothing more and keeps the refusal for the agent to stop on', async () => {
    reports.failures = [403];
    await publish({ '10.0.0.1': 'unreachable' });
    await publish({ '10.0.0.1': 'reachable' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(reports.written).toHaveLength(0);
    expect(publisher.firstWriteRefusal).toBeInstanceOf(ApiException);
  });
});
