// The keys and coordinates Kosmos and this project share on Kosmos' objects (docs/kosmos.md).
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

export const ANNOTATION_ADDRESS = 'kosmos.io/address';
export const ANNOTATION_DISCONNECTED = 'kosmos.io/disconnected-address';
export const ANNOTATION_SERVICE_IMPORT = 'kosmos.io/service-import';
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_MCS_SERVICE_NAME = 'multicluster.kubernetes.io/service-name';
/** Ours, on a synced EndpointSlice: what the controller pruned, so it can restore it exactly. */
export const ANNOTATION_PRUNED = 'epsprobe.kosmos.io/pruned-endpoints';

export const MCS_GROUP = 'multicluster.x-k8s.io';
/** Kosmos writes v1alpha1; newer clusters may serve v1beta1 only. */
export const MCS_VERSIONS = ['v1alpha1', 'v1beta1'] as const;
export type McsVersion = (typeof MCS_VERSIONS)[number];

/** `namespace/name` of a ServiceImport. */
export type ServiceImportKey = string;

/** The fields of a ServiceImport this project uses. */
export interface ServiceImport extends KubernetesObject {
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec?: { type?: string; ports?: Array<{ name?: string; port: number; protocol?: string }> };
}
