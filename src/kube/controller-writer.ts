// Every write of the controller, behind one small interface: the apiserver's implementation here,
// an in-memory one in the unit tests of the controller's reconcile.
import * as k8s from '@kubernetes/client-node';
import { ANNOTATION_DISCONNECTED, MCS_GROUP, type McsVersion } from '../contract/kosmos.js';
import { REPORT_GROUP, REPORT_PLURAL, REPORT_VERSION } from '../contract/probe-report.js';

/** Failures are thrown as the client does: an error whose `code` is the HTTP status (statusCodeOf). */
export interface ControllerWriter {
  /** Sets `kosmos.io/disconnected-address` of a ServiceImport (a merge patch: nothing else changes). */
  patchDisconnected(namespace: string, name: string, value: string): Promise<unknown>;
  /** Replaces a slice; 409 when its resourceVersion is not the current one. */
  replaceSlice(slice: k8s.V1EndpointSlice): Promise<unknown>;
  readSlice(namespace: string, name: string): Promise<k8s.V1EndpointSlice>;
  /** Deletes a ProbeReport, only if its uid is still `uid`. */
  deleteReport(name: string, uid: string | undefined): Promise<unknown>;
}

export function apiControllerWriter(kc: k8s.KubeConfig, mcsVersion: McsVersion): ControllerWriter {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  return {
    patchDisconnected: (namespace, name, value) =>
      custom.patchNamespacedCustomObject(
        { group: MCS_GROUP, version: mcsVersion, namespace, plural: 'serviceimports', name, body: { metadata: { annotations: { [ANNOTATION_DISCONNECTED]: value } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    replaceSlice: (slice) => discovery.replaceNamespacedEndpointSlice({ namespace: slice.metadata!.namespace!, name: slice.metadata!.name!, body: slice }),
    readSlice: (namespace, name) => discovery.readNamespacedEndpointSlice({ namespace, name }),
    // The uid precondition spares a report re-created meanwhile (for a new Node of the same name).
    deleteReport: (name, uid) => custom.deleteClusterCustomObject({ group: REPORT_GROUP, version: REPORT_VERSION, plural: REPORT_PLURAL, name, body: { preconditions: { uid } } }),
  };
}
