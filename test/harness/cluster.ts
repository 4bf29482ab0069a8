// Helpers for e2e tests against the shared control plane: clients, fresh namespaces, tokens.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { inject } from 'vitest';
import { ControlPlane, type ControlPlaneState } from './controlplane.js';

export function controlPlaneState(): ControlPlaneState {
  return inject('controlPlane');
}

export function adminConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(controlPlaneState().kubeconfig);
  return kc;
}

/** Creates a namespace with a random suffix; each test gets its own. */
export async function freshNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await adminConfig().makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** A client of the shared control plane that authenticates with `token`. */
export function tokenConfig(token: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const state = controlPlaneState();
  const admin = adminConfig().getCurrentCluster()!;
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: state.server, caData: admin.caData, skipTLSVerify: false }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'local', cluster: 'local', user: 'sa' }],
    currentContext: 'local',
  });
  return kc;
}

/** A token of a ServiceAccount, minted through the TokenRequest API of the shared control plane. */
export async function serviceAccountConfig(namespace: string, serviceAccount: string): Promise<k8s.KubeConfig> {
  return tokenConfig(await ControlPlane.attach(controlPlaneState()).tokenFor(namespace, serviceAccount));
}
