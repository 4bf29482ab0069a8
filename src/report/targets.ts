// ServiceImports + their synced EndpointSlices -> the agent's probe targets (one per address).
import { isIP } from 'node:net';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { prunedAddresses } from './prune.js';
import type { Target } from '../contract/target.js';
import { addressProblem, parseAddressList } from '../contract/addresses.js';
import { ANNOTATION_ADDRESS, ANNOTATION_SERVICE_IMPORT, LABEL_MCS_SERVICE_NAME, LABEL_SERVICE_NAME, type ServiceImport, type ServiceImportKey } from '../contract/kosmos.js';

export interface NamespaceFilter {
  /** Namespaces to consider; empty means all. */
  include: readonly string[];
  /** Namespaces to skip; wins over `include`. */
  exclude: readonly string[];
}

/** An input item we cannot probe, to be logged once and counted. */
export interface InvalidInput {
  /** `Kind namespace/name`. */
  object: string;
  /** The offending item as written. */
  value: string;
  reason: string;
}

export interface TargetSet {
  /** Sorted by address; ports and owners sorted and unique. */
  targets: Target[];
  invalid: InvalidInput[];
}

/**
 * The ServiceImport name a synced slice belongs to, or undefined for any other slice. KEP-1645 slices
 * carry `multicluster.kubernetes.io/service-name`; Kosmos slices carry the `kosmos.io/service-import`
 * annotation (any value: Kosmos writes `ture`) and `kubernetes.io/service-name`. The KEP-1645 label is
 * read first: on a slice that has both, it is the one naming a ServiceImport rather than a Service.
 */
export function serviceImportNameOf(slice: V1EndpointSlice): string | undefined {
  const labels = slice.metadata?.labels ?? {};
  const mcsName = labels[LABEL_MCS_SERVICE_NAME];
  if (mcsName) return mcsName;
  const kosmosSynced = slice.metadata?.annotations?.[ANNOTATION_SERVICE_IMPORT] !== undefined;
  return kosmosSynced && labels[LABEL_SERVICE_NAME] ? labels[LABEL_SERVICE_NAME] : undefined;
}

/** Whether `slice` is an MCS slice synced for a ServiceImport (the only slices we read or prune). */
export function isSyncedSlice(slice: V1EndpointSlice): boolean {
  return serviceImportNameOf(slice) !== undefined;
}

/** Whether a namespace passes the filter. */
export function namespaceAllowed(namespace: string, filter: NamespaceFilter): boolean {
  return !filter.exclude.includes(namespace) && (filter.include.length === 0 || filter.include.includes(namespace));
}

/** Synced slices grouped by their ServiceImport key `namespace/name`, built in one pass. */
export function indexSyncedSlices(slices: readonly V1EndpointSlice[]): Map<ServiceImportKey, V1EndpointSlice[]> {
  const index = new Map<ServiceImportKey, V1EndpointSlice[]>();
  for (const slice of slices) {
    const name = serviceImportNameOf(slice);
    if (name === undefined) continue;
    const key = `${slice.metadata?.namespace ?? ''}/${name}`;
    const list = index.get(key);
    if (list) list.push(slice);
    else index.set(key, [slice]);
  }
  return index;
}

function tcpPorts(ports: ReadonlyArray<{ port?: number | null; protocol?: string }> | undefined): number[] {
  return (ports ?? [])
    .filter((p) => (p.protocol ?? 'TCP') === 'TCP' && Number.isInteger(p.port) && p.port! >= 1 && p.port! <= 65535)
    .map((p) => p.port!);
}

const FAMILY_OF_ADDRESS_TYPE: Record<string, number> = { IPv4: 4, IPv6: 6 };

/**
 * The probe targets: per ServiceImport (namespace filter applied), the union of the addresses of its
 * synced slices (with the slice's TCP ports, or the ServiceImport's when the slice has none), of its
 * `kosmos.io/address` annotation (with the ServiceImport's TCP ports) and of the endpoints our
 * controller pruned from its slices, which must stay probed to ever come back. One target per address
 * across all ServiceImports. Invalid items (see `addressProblem`; a slice address of the wrong family;
 * FQDN slices, which we cannot probe) are returned once per object instead, and never block the rest.
 * Linear in the input size, plus sorting.
 */
export function buildTargets(input: {
  serviceImports: readonly ServiceImport[];
  slices: readonly V1EndpointSlice[];
  namespaceFilter: NamespaceFilter;
}): TargetSet {
  const slicesByKey = indexSyncedSlices(input.slices);
  const byAddress = new Map<string, { ports: Set<number>; owners: Set<ServiceImportKey> }>();
  const invalid = new Map<string, InvalidInput>();
  const refuse = (object: string, value: string, reason: string): void => {
    invalid.set(`${object}\0${value}`, { object, value, reason });
  };
  const add = (address: string, ports: readonly number[], owner: ServiceImportKey): void => {
    let target = byAddress.get(address);
    if (!target) byAddress.set(address, (target = { ports: new Set(), owners: new Set() }));
    for (const port of ports) target.ports.add(port);
    target.owners.add(owner);
  };

  for (const serviceImport of input.serviceImports) {
    const { namespace, name, annotations } = serviceImport.metadata;
    if (!namespaceAllowed(namespace, input.namespaceFilter)) continue;
    const key = `${namespace}/${name}`;
    const importPorts = tcpPorts(serviceImport.spec?.ports);
    const listed = parseAddressList(annotations?.[ANNOTATION_ADDRESS]);
    for (const address of listed.addresses) add(address, importPorts, key);
    for (const item of listed.invalid) refuse(`ServiceImport ${key}`, item, addressProblem(item)!);

    for (const slice of slicesByKey.get(key) ?? []) {
      const object = `EndpointSlice ${namespace}/${slice.metadata?.name ?? ''}`;
      const family = FAMILY_OF_ADDRESS_TYPE[slice.addressType];
      if (family === undefined) {
        refuse(object, slice.addressType, 'only IPv4 and IPv6 slices can be probed');
        continue;
      }
      const slicePorts = tcpPorts(slice.ports);
      const ports = slicePorts.length > 0 ? slicePorts : importPorts;
      const addresses = [...(slice.endpoints ?? []).flatMap((e) => e.addresses ?? []), ...prunedAddresses(slice)];
      for (const address of addresses) {
        const problem =
          addressProblem(address) ?? (isIP(address) === family ? undefined : `not an ${slice.addressType} address`);
        if (problem === undefined) add(address, ports, key);
        else refuse(object, address, problem);
      }
    }
  }

  const targets = [...byAddress.keys()].sort().map((address) => {
    const { ports, owners } = byAddress.get(address)!;
    return { address, ports: [...ports].sort((a, b) => a - b), owners: [...owners].sort() };
  });
  return { targets, invalid: [...invalid.values()] };
}

/** The target addresses of each ServiceImport (what aggregation and the ejection cap count). */
export function addressesByServiceImport(targets: readonly Target[]): Map<ServiceImportKey, string[]> {
  const result = new Map<ServiceImportKey, string[]>();
  for (const { address, owners } of targets) {
    for (const owner of owners) {
      const list = result.get(owner);
      if (list) list.push(address);
      else result.set(owner, [address]);
    }
  }
  return result;
}

/**
 * A filter for EndpointSlice change events: true when the change can matter to target sets, i.e. the
 * slice is a synced MCS slice now or was one when last seen (it may just have lost its labels), or
 * when the event carries no object (a re-list). Unrelated slices, which a cluster may hold by the
 * tens of thousands, then cost no recomputation.
 */
export function syncedSliceChangeFilter(): (slice?: V1EndpointSlice) => boolean {
  const synced = new Set<string>();
  return (slice) => {
    if (!slice) return true;
    const key = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`;
    if (isSyncedSlice(slice)) {
      synced.add(key);
      return true;
    }
    return synced.delete(key);
  };
}
