// deploy/eps-probe-plugin.yaml in e2e tests: its objects, and its identities, RBAC and admission
// policies applied to the shared control plane with kubectl, as an operator would.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { controlPlaneState } from './cluster.js';
import { controlPlaneBinaries } from './controlplane.js';

const run = promisify(execFile);
/** The kubectl built with the control plane (hack/build-controlplane.sh), same version as the apiserver. */
const KUBECTL = path.join(controlPlaneBinaries(), 'kubectl');
export const MANIFEST = path.resolve(import.meta.dirname, '../../deploy/eps-probe-plugin.yaml');
/** The manifest's namespace, where its ServiceAccounts live. */
export const MANIFEST_NAMESPACE = 'eps-probe-plugin';
/** Who may do what: applied for real so that the manifest's ServiceAccounts meet exactly these rules. */
const ACCESS_KINDS = new Set([
  'Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
]);

export interface ManifestObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
}

export const manifest = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((doc) => doc.toJS() as ManifestObject);

/** kubectl with the admin kubeconfig; a failure carries kubectl's output. */
export async function kubectl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(KUBECTL, ['--kubeconfig', controlPlaneState().kubeconfig, ...args]);
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`kubectl ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}

/**
 * Applies the manifest's namespace, ServiceAccounts, RBAC and admission policies. The policies then
 * hold for the rest of the run: only the manifest's ServiceAccounts are subject to them.
 */
export async function applyAccessControl(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'eps-manifest-'));
  try {
    const file = path.join(scratch, 'access.yaml');
    writeFileSync(file, manifest.filter((o) => ACCESS_KINDS.has(o.kind)).map((o) => stringify(o)).join('---\n'));
    await kubectl(['apply', '-f', file]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
