import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/config.js';
import type { AppliedConfig } from '../../src/config/watch.js';
import type { EventRecorder } from '../../src/kube/events.js';
import { keepRecentEvents, restoredAddresses, type StatusEvent } from '../../src/status/events.js';
import { REBUILD_STANDBY_MS, parseStatusQuery, statusIndexer, statusRoutes, type LastDecision, type StatusSources } from '../../src/status/routes.js';
import { NOW } from './fixtures.js';

const target = { apiVersion: 'v1', kind: 'ServiceImport', namespace: 'ns', name: 'svc' };

describe('keepRecentEvents', () => {
  function recorder() {
    const passed: string[] = [];
    const inner: EventRecorder = { normal: (_t, reason) => passed.push(reason), warning: (_t, reason) => passed.push(reason) };
    let tick = 0;
    const recent = keepRecentEvents(inner, () => new Date(NOW.getTime() + 1000 * tick++), 2);
    return { passed, recent };
  }

  it('passes every Event on and keeps the newest ones, newest first', () => {
    const { passed, recent } = recorder();
    recent.warning(target, 'A', 'a');
    recent.normal(target, 'B', 'b');
    recent.normal(target, 'C', 'c');
    expect(passed).toEqual(['A', 'B', 'C']);
    expect(recent.recent().map((e) => [e.reason, e.type])).toEqual([['C', 'Normal'], ['B', 'Normal']]);
  });

  it('counts a repeat and moves it to the front', () => {
    const { recent } = recorder();
    recent.warning(target, 'A', 'a');
    recent.normal(target, 'B', 'b');
    recent.warning(target, 'A', 'a');
    expect(recent.recent().map((e) => [e.reason, e.count])).toEqual([['A', 2], ['B', 1]]);
  });
});

describe('restoredAddresses', () => {
  it('reads the addresses after the last ": " of the controller\'s messages, per ServiceImport', () => {
    const event = (reason: string, name: string): StatusEvent => ({
      time: NOW.toISOString(), type: 'Normal', reason, message: 'reachable again, restored: 10.0.0.1,fd00::1', kind: 'ServiceImport', namespace: 'ns', name, count: 1,
    });
    const restored = restoredAddresses([event('EndpointsReconnected', 'a'), event('SomethingElse', 'b')]);
    expect([...restored]).toEqual([['ns/a', new Map([['10.0.0.1', NOW.toISOString()], ['fd00::1', NOW.toISOString()]])]]);
  });
});

describe('the status page over the controller caches', () => {
  function sources(over: Partial<StatusSources> = {}): StatusSources & { builds: () => number } {
    let lists = 0;
    const applied: AppliedConfig = { config: { ...DEFAULT_CONFIG, allowCidrs: ['10.0.0.0/8'] }, version: '7', source: 'configmap' };
    return {
      identity: 'c-0',
      reports: () => {
        lists++;
        return [];
      },
      serviceImports: () => [],
      slices: () => [],
      nodeExists: () => true,
      applied: () => applied,
      leading: () => true,
      lastDecision: () => undefined,
      events: () => [],
      builds: () => lists,
      ...over,
    };
  }

  it('rebuilds the model only when the leader decided again', () => {
    let decision: LastDecision = { addresses: new Map(), verdicts: new Map(), isolated: new Map() };
    const s = sources({ lastDecision: () => decision });
    const current = statusIndexer(s, () => NOW);
    expect(current()?.source.decisions).toBe('leader');
    current();
    expect(s.builds()).toBe(1);
    decision = { addresses: new Map(), verdicts: new Map(), isolated: new Map() };
    current();
    expect(s.builds()).toBe(2);
  });

  it('rebuilds a standby replica\'s model once it is older than REBUILD_STANDBY_MS', () => {
    let now = NOW.getTime();
    const s = sources({ leading: () => false });
    const current = statusIndexer(s, () => new Date(now));
    expect(current()?.source).toEqual({ identity: 'c-0', leading: false, decisions: 'computed' });
    now += REBUILD_STANDBY_MS - 1;
    current();
    expect(s.builds()).toBe(1);
    now += 1;
    current();
    expect(s.builds()).toBe(2);
  });

  it('answers 503 until the configuration is read, then HTML with a strict content security policy', () => {
    let applied: AppliedConfig | undefined = undefined;
    const routes = statusRoutes(sources({ applied: () => applied }));
    const url = new URL('http://localhost/status?namespace=x');
    expect(routes['/status']!(url).status).toBe(503);
    applied = { config: DEFAULT_CONFIG, version: '1', source: 'defaults' };
    const reply = routes['/status']!(url);
    expect(reply).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(reply.headers?.['content-security-policy']).toContain("script-src 'self'");
    expect(JSON.parse(routes['/status.json']!(url).body)).toMatchObject({ source: { identity: 'c-0' }, query: { namespace: 'x' }, matching: 0 });
  });

  it('parses the query of the filter form', () => {
    expect(parseStatusQuery(new URLSearchParams('namespace=a&serviceImport=b&address=c&node=d&problems=1&page=2&pageSize=5'))).toEqual({
      namespace: 'a', serviceImport: 'b', address: 'c', node: 'd', problems: true, page: 2, pageSize: 5,
    });
  });
});
