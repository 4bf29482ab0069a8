// Shared fixtures for tests: Kosmos-style ServiceImports and synced EndpointSlices.
import type * as k8s from '@kubernetes/client-node';
import { MCS_GROUP } from '../../src/contract/kosmos.js';

export { MCS_GROUP };
/** The version Kosmos writes. */
export const MCS_VERSION = 'v1alpha1';

export interface ServiceImportFixture {
  name: string;
  namespace: string;
  addresses?: string[];
  disconnected?: string;
  ports?: number[];
}

/** A ServiceImport as Kosmos writes it on a data-plane cluster. */
export function makeServiceImport(f: ServiceImportFixture): Record<string, unknown> {
  const annotations: Record<string, string> = {};
  if (f.addresses) annotations['kosmos.io/address'] = f.addresses.join(',');
  if (f.disconnected !== undefined) annotations['kosmos.io/disconnected-address'] = f.disconnected;
  return {
    apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
    kind: 'ServiceImport',
    metadata: { name: f.name, namespace: f.namespace, annotations },
    spec: { type: 'ClusterSetIP', ports: (f.ports ?? [80]).map((port) => ({ port, protocol: 'TCP' })) },
  };
}

export interface EndpointSliceFixture {
  name: string;
  namespace: string;
  service: string;
  addresses: string[];
  port?: number;
  /** `kosmos` (annotation + kubernetes.io/service-name), `kep1645` (multicluster labels) or `plain`. */
  style?: 'kosmos' | 'kep1645' | 'plain';
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
}

/** An EndpointSlice synced into the data-plane cluster, one endpoint per address. */
export function makeEndpointSlice(f: EndpointSliceFixture): k8s.V1EndpointSlice {
  const style = f.style ?? 'kosmos';
  const labels: Record<string, string> =
    style === 'kep1645'
      ? { 'multicluster.kubernetes.io/service-name': f.service, 'multicluster.kubernetes.io/source-cluster': 'member1' }
      : { 'kubernetes.io/service-name': f.service };
  const annotations: Record<string, string> = style === 'kosmos' ? { 'kosmos.io/service-import': 'ture' } : {};
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: f.name, namespace: f.namespace, labels, annotations },
    addressType: f.addressType ?? 'IPv4',
    endpoints: f.addresses.map((address, i) => ({
      addresses: [address],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `member-node-${i}`,
      zone: 'zone-a',
    })),
    ports: [{ name: 'http', port: f.port ?? 80, protocol: 'TCP' }],
  };
}

/** Kosmos' own pruning rule (docs/kosmos.md), restated independently of ours. */
export function kosmosPrune(endpoints: readonly k8s.V1Endpoint[], disconnected: ReadonlySet<string>): k8s.V1Endpoint[] {
  return endpoints
    .map((e) => ({ ...e, addresses: e.addresses.filter((a) => !disconnected.has(a)) }))
    .filter((e) => e.addresses.length > 0);
}
