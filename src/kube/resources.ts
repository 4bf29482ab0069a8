// The Kubernetes objects this project reads and writes: paths, list functions and minimal types.
import * as k8s from '@kubernetes/client-node';
import { MCS_GROUP, type McsVersion, type ServiceImport } from '../contract/kosmos.js';
import { REPORT_GROUP, REPORT_PLURAL, REPORT_VERSION, type ProbeReport } from '../contract/probe-report.js';
import type { InformerSpec } from './informer.js';

/** Objects per list request: a large cluster's full list never sits in memory as one response. */
const LIST_PAGE_SIZE = 500;

/** A list's continue token: `_continue` in client-node's typed lists, `continue` in raw custom-object JSON. */
function continueToken(list: k8s.KubernetesListObject<k8s.KubernetesObject>): string | undefined {
  const metadata = list.metadata as (k8s.V1ListMeta & { continue?: string }) | undefined;
  return metadata?._continue || metadata?.continue || undefined;
}

/**
 * Lists every page (`limit` + `continue`). The pages form one consistent snapshot, at the first
 * page's resourceVersion, from which the watch then starts.
 */
async function listAllPages<T extends k8s.KubernetesObject>(
  page: (options: { limit: number; _continue?: string }) => Promise<k8s.KubernetesListObject<T>>,
): Promise<k8s.KubernetesListObject<T>> {
  const first = await page({ limit: LIST_PAGE_SIZE });
  const items = first.items;
  for (let token = continueToken(first); token; ) {
    const next = await page({ limit: LIST_PAGE_SIZE, _continue: token });
    for (const item of next.items) items.push(item);
    token = continueToken(next);
  }
  // The snapshot's resourceVersion, without the first page's continue token.
  return { ...first, items, metadata: { resourceVersion: first.metadata?.resourceVersion } };
}

export function serviceImportInformerSpec(kc: k8s.KubeConfig, version: McsVersion): InformerSpec<ServiceImport> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return {
    resource: 'serviceimports',
    path: `/apis/${MCS_GROUP}/${version}/serviceimports`,
    list: () =>
      listAllPages(async (page) => (await custom.listClusterCustomObject({ group: MCS_GROUP, version, plural: 'serviceimports', ...page })) as k8s.KubernetesListObject<ServiceImport>),
  };
}

/** Every EndpointSlice of the cluster (like kube-proxy); synced MCS slices are picked out in code. */
export function endpointSliceInformerSpec(kc: k8s.KubeConfig): InformerSpec<k8s.V1EndpointSlice> {
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  return {
    resource: 'endpointslices',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    list: () => listAllPages((page) => discovery.listEndpointSliceForAllNamespaces(page)),
  };
}

export function probeReportInformerSpec(kc: k8s.KubeConfig): InformerSpec<ProbeReport> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return {
    resource: 'probereports',
    path: `/apis/${REPORT_GROUP}/${REPORT_VERSION}/${REPORT_PLURAL}`,
    list: () =>
      listAllPages(
        async (page) => (await custom.listClusterCustomObject({ group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, ...page })) as k8s.KubernetesListObject<ProbeReport>,
      ),
  };
}

/** Every Node: the controller counts and keeps only the reports of Nodes that exist. */
export function nodeInformerSpec(kc: k8s.KubeConfig): InformerSpec<k8s.V1Node> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return {
    resource: 'nodes',
    path: '/api/v1/nodes',
    list: () => listAllPages((page) => core.listNode(page)),
  };
}

/** One ConfigMap, watched by name. */
export function configMapInformerSpec(kc: k8s.KubeConfig, namespace: string, name: string): InformerSpec<k8s.V1ConfigMap> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const fieldSelector = `metadata.name=${name}`;
  return {
    resource: 'configmaps',
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    fieldSelector,
    list: () => core.listNamespacedConfigMap({ namespace, fieldSelector }),
  };
}

/** The HTTP status of a client-node error, if it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown; statusCode?: unknown } | undefined)?.code ?? (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}
