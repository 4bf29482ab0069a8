// What one pass of the controller should make true, computed from its caches alone: per ServiceImport
// the decision and the slices to bring in line with it, and the state of every report. Writing it is
// src/controller/reconciler.ts's job.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { formatAddressList, parseAddressList } from '../contract/addresses.js';
import { ANNOTATION_DISCONNECTED, type ServiceImport, type ServiceImportKey } from '../contract/kosmos.js';
import type { ServiceImportVerdict } from './aggregate.js';
import { refusedAddresses } from './coverage.js';
import { decide, reportState, type Decision, type DecisionSettings, type NodeState } from './decide.js';
import { addressesByServiceImport, buildTargets, indexSyncedSlices, namespaceAllowed, type NamespaceFilter } from './targets.js';
import type { NamedReport } from './validity.js';

/** The targets of a pass: they change only with ServiceImports, slices or the configuration. */
export interface PassTargets {
  /** All target addresses per ServiceImport. */
  addresses: Map<ServiceImportKey, string[]>;
  /** Of those, the ones the allow-list refuses. */
  refused: Set<string>;
}

export interface PassInput {
  serviceImports: readonly ServiceImport[];
  slices: readonly V1EndpointSlice[];
  reports: readonly NamedReport[];
  nodeExists: (name: string) => boolean;
  now: Date;
  configVersion: string;
  settings: DecisionSettings & { namespaces: NamespaceFilter; allowCidrs: string[] };
  /** The targets of an earlier pass, when ServiceImports, slices and configuration have not changed since. */
  targets?: PassTargets;
}

export interface ServiceImportPlan {
  serviceImport: ServiceImport;
  key: ServiceImportKey;
  verdict: ServiceImportVerdict;
  /** `kosmos.io/disconnected-address` as found (text and addresses: the previous decision), and as it should be. */
  annotation: { current?: string; published: ReadonlySet<string>; desired: string };
  /** Its synced slices as cached: each is brought in line with verdict.disconnected. */
  slices: readonly V1EndpointSlice[];
  /** All its target addresses. */
  addresses: readonly string[];
}

export interface PassPlan {
  targets: PassTargets;
  decision: Decision;
  /** The ServiceImports the namespace filter lets in; the others are not ours to touch, whatever their annotation says. */
  serviceImports: ServiceImportPlan[];
  /** How many reports are in each state. */
  reportStates: Record<NodeState, number>;
}

function keyOf(si: ServiceImport): ServiceImportKey {
  return `${si.metadata.namespace}/${si.metadata.name}`;
}

export function planPass(input: PassInput): PassPlan {
  const { settings, now, configVersion } = input;
  const serviceImports = input.serviceImports.filter((si) => namespaceAllowed(si.metadata.namespace, settings.namespaces));
  const targets = input.targets ?? passTargets(serviceImports, input.slices, settings);
  const previous = new Map(serviceImports.map((si) => [keyOf(si), new Set(parseAddressList(si.metadata.annotations?.[ANNOTATION_DISCONNECTED]).addresses)]));
  const decision = decide({
    reports: input.reports,
    nodeExists: input.nodeExists,
    now,
    configVersion,
    settings,
    serviceImports: [...targets.addresses].map(([key, addresses]) => ({ key, addresses })),
    refused: targets.refused,
    previous,
  });
  const slicesByKey = indexSyncedSlices(input.slices);
  const plans = serviceImports.map((si): ServiceImportPlan => {
    const key = keyOf(si);
    const verdict = decision.verdicts.get(key) ?? { disconnected: previous.get(key) ?? new Set<string>(), ejectionCapped: [], guarded: [], uncovered: [], reconnected: new Map() };
    return {
      serviceImport: si,
      key,
      verdict,
      annotation: { current: si.metadata.annotations?.[ANNOTATION_DISCONNECTED], published: previous.get(key)!, desired: formatAddressList(verdict.disconnected) },
      slices: slicesByKey.get(key) ?? [],
      addresses: targets.addresses.get(key) ?? [],
    };
  });
  const reportStates: Record<NodeState, number> = { live: 0, suspect: 0, stale: 0, 'other-config': 0, invalid: decision.invalid.length };
  const context = { now, staleAfterMs: settings.controller.reportStaleAfterMs, configVersion, isolated: decision.isolated };
  for (const spec of decision.valid) reportStates[reportState(spec, context).state]++;
  return { targets, decision, serviceImports: plans, reportStates };
}

function passTargets(serviceImports: readonly ServiceImport[], slices: readonly V1EndpointSlice[], settings: PassInput['settings']): PassTargets {
  const { targets } = buildTargets({ serviceImports, slices, namespaceFilter: settings.namespaces });
  return { addresses: addressesByServiceImport(targets), refused: refusedAddresses(targets.map((t) => t.address), settings.allowCidrs) };
}
