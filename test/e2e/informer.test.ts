// The informers' list against a real apiserver: a list longer than one page (500 objects) still
// fills the cache with every object, and the watch then continues from the list.
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { SupervisedInformer } from '../../src/kube/informer.js';
import { InformerMetrics } from '../../src/kube/informer-metrics.js';
import { serviceImportInformerSpec } from '../../src/kube/resources.js';
import { adminConfig, freshNamespace } from '../harness/cluster.js';
import { MCS_GROUP, MCS_VERSION, makeServiceImport } from '../harness/fixtures.js';

describe('SupervisedInformer', () => {
  it('caches every object of a list spanning several pages, then follows the watch', async () => {
    const namespace = await freshNamespace('pages');
    const kc = adminConfig();
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const create = (name: string) =>
      custom.createNamespacedCustomObject({ group: MCS_GROUP, version: MCS_VERSION, namespace, plural: 'serviceimports', body: makeServiceImport({ name, namespace }) });
    const limit = pLimit(32);
    const count = 1201; // three pages of 500
    await Promise.all(Array.from({ length: count }, (_, n) => limit(() => create(`si-${n}`))));

    const informer = new SupervisedInformer(kc, serviceImportInformerSpec(kc, MCS_VERSION), {
      logger: createLogger({ level: 'silent' }),
      metrics: new InformerMetrics(new Registry()),
    });
    await informer.start();
    try {
      const ours = () => informer.list().filter((si) => si.metadata?.namespace === namespace);
      expect(new Set(ours().map((si) => si.metadata!.name)).size).toBe(count);
      await create('after-the-list');
      await expect.poll(() => ours().length, { timeout: 10_000 }).toBe(count + 1);
    } finally {
      informer.stop();
    }
  });
});
