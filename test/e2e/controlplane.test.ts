import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { adminConfig, freshNamespace, serviceAccountConfig } from '../harness/cluster.js';
import { MCS_GROUP, MCS_VERSION, makeEndpointSlice, makeServiceImport } from '../harness/fixtures.js';

describe('local control plane', () => {
  it('serves ServiceImports and EndpointSlices that a client creates and watches', async () => {
    const namespace = await freshNamespace('cp');
    const kc = adminConfig();
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const controller = await watch.watch(
      `/apis/${MCS_GROUP}/${MCS_VERSION}/namespaces/${namespace}/serviceimports`,
      {},
      (phase, obj: k8s.KubernetesObject) => seen.push(`${phase} ${obj.metadata?.name}`),
      () => undefined,
    );
    try {
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      await custom.createNamespacedCustomObject({
        group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports',
        body: makeServiceImport({ name: 'web', namespace, addresses: ['10.233.1.2'] }),
      });
      const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
      await discovery.createNamespacedEndpointSlice({
        namespace,
        body: makeEndpointSlice({ name: 'web-abc', namespace, service: 'web', addresses: ['10.233.1.2'] }),
      });
      const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: 'kubernetes.io/service-name=web' });
      expect(slices.items.map((s) => s.endpoints?.[0]?.addresses)).toEqual([['10.233.1.2']]);
      await expect.poll(() => seen, { timeout: 10_000 }).toContain('ADDED web');
    } finally {
      controller.abort();
    }
  });

  it('refuses a ServiceAccount token without RBAC (403)', async () => {
    const namespace = await freshNamespace('cp');
    const kc = await serviceAccountConfig(namespace, 'nobody');
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    await expect(discovery.listNamespacedEndpointSlice({ namespace })).rejects.toMatchObject({ code: 403 });
  });
});
