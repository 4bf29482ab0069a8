// The Event recorder against a real apiserver: repeats of one event raise its count, as
// `kubectl describe` shows for the kubelet's own events, instead of vanishing or piling up.
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createEventRecorder } from '../../src/kube/events.js';
import { createLogger } from '../../src/log.js';
import { adminConfig, freshNamespace } from '../harness/cluster.js';

const POLL = { timeout: 10_000, interval: 50 };

async function setUp(prefix: string) {
  const namespace = await freshNamespace(prefix);
  const kc = adminConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const recorder = createEventRecorder(kc, { component: 'eps-probe-test', instance: 'node-a' }, createLogger({ level: 'silent' }));
  const target = { apiVersion: 'v1', kind: 'ConfigMap', name: 'subject', namespace, uid: 'uid-1' };
  const events = async (reason: string) =>
    (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.reason === reason);
  return { core, recorder, target, events, namespace };
}

describe('Event recorder', () => {
  it('counts 22 repeats of one event on one Event object', async () => {
    const { recorder, target, events } = await setUp('ev-count');
    for (let n = 0; n < 22; n++) recorder.warning(target, 'EndpointsDisconnected', 'unreachable from the cluster, pruned: 10.0.0.1');

    await expect.poll(async () => (await events('EndpointsDisconnected')).map((e) => e.count), POLL).toEqual([22]);
    const [event] = await events('EndpointsDisconnected');
    expect(event!.type).toBe('Warning');
    expect(event!.involvedObject).toMatchObject({ kind: 'ConfigMap', name: 'subject', uid: 'uid-1' });
    expect(new Date(event!.lastTimestamp!).getTime()).toBeGreaterThanOrEqual(new Date(event!.firstTimestamp!).getTime());
  });

  it('keeps events with another message or reason apart, each with its own count', async () => {
    const { recorder, target, events } = await setUp('ev-apart');
    recorder.warning(target, 'EndpointsDisconnected', 'pruned: 10.0.0.1');
    recorder.normal(target, 'EndpointsReconnected', 'restored: 10.0.0.1');
    recorder.warning(target, 'EndpointsDisconnected', 'pruned: 10.0.0.1');
    recorder.warning(target, 'EndpointsDisconnected', 'pruned: 10.0.0.2');

    const counts = async () =>
      Object.fromEntries([...(await events('EndpointsDisconnected')), ...(await events('EndpointsReconnected'))].map((e) => [e.message, e.count]));
    await expect.poll(counts, POLL).toEqual({ 'pruned: 10.0.0.1': 2, 'pruned: 10.0.0.2': 1, 'restored: 10.0.0.1': 1 });
  });

  it('starts a new Event when the counted one has expired (been deleted)', async () => {
    const { core, recorder, target, events, namespace } = await setUp('ev-expired');
    recorder.warning(target, 'NodeSuspect', 'too many targets unreachable');
    await expect.poll(async () => (await events('NodeSuspect')).length, POLL).toBe(1);
    const [first] = await events('NodeSuspect');
    await core.deleteNamespacedEvent({ namespace, name: first!.metadata!.name! });

    recorder.warning(target, 'NodeSuspect', 'too many targets unreachable');
    await expect.poll(async () => (await events('NodeSuspect')).map((e) => [e.metadata!.name !== first!.metadata!.name, e.count]), POLL).toEqual([[true, 2]]);
  });
});
