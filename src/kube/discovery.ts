// Which ServiceImport API the cluster serves, asked once at start-up through discovery: the group
// alone is not enough (a cluster can serve multicluster.x-k8s.io with ServiceExport only).
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { StartupError } from '../startup.js';
import { crdFix, retryDuringStartup } from './failures.js';
import { MCS_GROUP, MCS_VERSIONS, type McsVersion } from '../contract/kosmos.js';

const SERVICE_IMPORTS = 'serviceimports';

/**
 * The ServiceImport version to use: v1alpha1 (what Kosmos uses) when served, else v1beta1. Both
 * versions of one CRD are the same objects, so watching one is enough.
 * @throws StartupError when the group or its serviceimports resource is not served (after a few
 * tries: the CRD may be in the same rollout) or the apiserver cannot be asked.
 */
export async function servedServiceImportVersion(kc: k8s.KubeConfig, logger: Logger): Promise<McsVersion> {
  const apis = kc.makeApiClient(k8s.ApisApi);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return retryDuringStartup(
    `discovery of ${MCS_GROUP}`,
    async () => {
      const group = (await apis.getAPIVersions()).groups.find((g) => g.name === MCS_GROUP);
      if (!group) {
        throw new StartupError(`the cluster does not serve the API group ${MCS_GROUP} (no ServiceImport CRD)`, crdFix(`/apis/${MCS_GROUP}/`));
      }
      const served = group.versions.map((v) => v.version);
      for (const version of MCS_VERSIONS.filter((v) => served.includes(v))) {
        const resources = await custom.getAPIResources({ group: MCS_GROUP, version });
        if (resources.resources.some((r) => r.name === SERVICE_IMPORTS)) return version;
      }
      throw new StartupError(
        `the cluster serves ${MCS_GROUP} (${served.join(', ')}) but no ${SERVICE_IMPORTS} resource in ${MCS_VERSIONS.join(' or ')}`,
        'install the ServiceImport CRD (Kosmos ships it; deploy/crds/mcs-serviceimports.yaml holds a copy)',
      );
    },
    {
      onRetry: (failure, retryInMs, attempt) =>
        logger.warn({ cause: failure.message, fix: failure.fix, attempt, retryInMs }, 'ServiceImport API not usable yet; retrying'),
    },
  );
}
