// `eps-probe-plugin status`: the status page's matrix in a terminal, computed from the cluster with
// the same model: lists ProbeReports, ServiceImports, EndpointSlices, the plugin's ConfigMap and the
// controller's Events through the kubeconfig, and decides as the controller does.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { LAST_GOOD_SUFFIX, configInForce, type AppliedConfig } from '../config/watch.js';
import { servedServiceImportVersion } from '../kube/discovery.js';
import {
  endpointSliceInformerSpec,
  nodeInformerSpec,
  probeReportInformerSpec,
  serviceImportInformerSpec,
  statusCodeOf,
} from '../kube/resources.js';
import { statusEventOf } from '../status/events.js';
import { buildStatus, MAX_PAGE_SIZE, queryStatus, type ServiceImportDetail, type StatusPage } from '../status/model.js';
import { decide, observeReports, observeServiceImports } from '../status/observe.js';
import { formatMatrix, formatNodes } from '../status/table.js';
import { createLogger } from '../log.js';
import { loadKubeConfig } from './bootstrap.js';

const USAGE = `Usage: eps-probe-plugin status [options]

Prints, per ServiceImport address, what each node's ProbeReport says (reachable, UNREACHABLE,
not-probed, refused by allowCidrs) and what the controller decides (pruned, held-back, ...) and why.

Options:
  --namespace NS            only ServiceImports of this namespace
  --service NAME            only the ServiceImport of this name
  --kubeconfig PATH         KUBECONFIG, else in-cluster config, else ~/.kube/config
  --config-namespace NS     namespace of the plugin's ConfigMap (default eps-probe-plugin)
  --config-name NAME        the plugin's ConfigMap (default eps-probe-plugin)
`;

/** The configuration the processes run: the ConfigMap's, else the controller's last good copy, else the defaults. */
async function readConfig(core: k8s.CoreV1Api, namespace: string, name: string): Promise<{ applied: AppliedConfig; warning?: string }> {
  const read = (configMap: string): Promise<k8s.V1ConfigMap | undefined> =>
    core.readNamespacedConfigMap({ namespace, name: configMap }).catch((err: unknown) => {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    });
  const [live, lastGood] = await Promise.all([read(name), read(`${name}${LAST_GOOD_SUFFIX}`)]);
  const { applied, problem } = configInForce(live, lastGood);
  return problem === undefined ? { applied } : { applied, warning: `ConfigMap ${namespace}/${name}: ${problem}; shown with the configuration from ${applied.source}` };
}

/** Whether a Node exists, as the controller checks it; undefined when Nodes cannot be listed (RBAC). */
async function nodeCheck(kc: k8s.KubeConfig): Promise<((name: string) => boolean) | undefined> {
  try {
    const names = new Set((await nodeInformerSpec(kc).list()).items.map((node) => node.metadata?.name));
    return (name) => names.has(name);
  } catch (err) {
    if (statusCodeOf(err) === 403) return undefined;
    throw err;
  }
}

/** Every page of the model, for a terminal that shows them all. */
function allPages(first: (page: number) => StatusPage): { first: StatusPage; serviceImports: ServiceImportDetail[] } {
  const initial = first(1);
  const serviceImports = [...initial.serviceImports];
  for (let page = 2; page <= initial.pages; page++) serviceImports.push(...first(page).serviceImports);
  return { first: initial, serviceImports };
}

export async function runStatusCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        namespace: { type: 'string' },
        service: { type: 'string' },
        kubeconfig: { type: 'string' },
        'config-namespace': { type: 'string' },
        'config-name': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const kc = loadKubeConfig(values.kubeconfig ?? process.env.KUBECONFIG);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const version = await servedServiceImportVersion(kc, createLogger({ level: 'silent' }));
    const [reports, serviceImportList, slices, { applied, warning }, events, nodeExists] = await Promise.all([
      probeReportInformerSpec(kc).list(),
      serviceImportInformerSpec(kc, version).list(),
      endpointSliceInformerSpec(kc).list(),
      readConfig(core, values['config-namespace'] ?? 'eps-probe-plugin', values['config-name'] ?? 'eps-probe-plugin'),
      core.listEventForAllNamespaces({ fieldSelector: 'reportingComponent=eps-probe-controller' }),
      nodeCheck(kc),
    ]);
    for (const problem of [warning, nodeExists ? undefined : 'cannot list Nodes: reports of deleted Nodes are shown as if they could vote']) {
      if (problem) process.stderr.write(`warning: ${problem}\n`);
    }
    const now = new Date();
    const { config } = applied;
    const wanted = serviceImportList.items.filter(
      (si) => (values.namespace === undefined || si.metadata.namespace === values.namespace) && (values.service === undefined || si.metadata.name === values.service),
    );
    const serviceImports = observeServiceImports({ serviceImports: wanted, slices: slices.items, namespaces: config.namespaces });
    const context = { now, configVersion: applied.version, staleAfterMs: config.controller.reportStaleAfterMs, nodeExists };
    const decided = decide({ reports: reports.items, serviceImports, config, context });
    const index = buildStatus({
      now,
      config,
      configVersion: applied.version,
      nodes: observeReports(reports.items, context, decided.isolated),
      serviceImports,
      verdicts: decided.verdicts,
      events: events.items.map(statusEventOf),
    });
    const { first, serviceImports: details } = allPages((page) => queryStatus(index, { page, pageSize: MAX_PAGE_SIZE }));
    const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
    const out: string[] = [
      `Configuration ${first.configVersion}; decisions by the controller's rule, computed from the cluster at ${first.generatedAt}.`,
      '',
      first.nodes.length > 0 ? formatNodes(first.nodes, colour) : 'No ProbeReports.',
      '',
      details.length > 0 ? formatMatrix(details, first.nodes.map((node) => node.name), colour) : 'No ServiceImports.',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`status failed: ${(err as Error).message}\n`);
    return 1;
  }
}
