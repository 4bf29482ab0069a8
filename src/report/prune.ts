// The desired state of one synced EndpointSlice: the original endpoints pruned exactly as Kosmos
// prunes them, plus our record of what was pruned so that it can be restored byte for byte.
// Level-triggered: the result depends only on the slice as observed and the disconnected set.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import { canonicalAddress } from '../contract/addresses.js';
import { ANNOTATION_PRUNED } from '../contract/kosmos.js';

/**
 * The value of ANNOTATION_PRUNED (JSON), e.g.
 * `{"v":1,"fingerprint":"…","pruned":[{"index":2,"partial":false,"endpoint":{"addresses":["10.0.0.3"],…}}]}`.
 */
interface PruneRecord {
  v: 1;
  /** Hash of the endpoints we wrote: a slice rewritten since by someone else no longer matches. */
  fingerprint: string;
  /** Endpoints we removed or trimmed, by increasing original index. */
  pruned: PrunedEntry[];
}

interface PrunedEntry {
  /** Position in the original endpoint list. */
  index: number;
  /** True when a copy trimmed of some addresses stays in the slice, false when the endpoint was dropped. */
  partial: boolean;
  /** The original endpoint, unchanged. */
  endpoint: V1Endpoint;
}

export interface PruneResult {
  /** The slice to write: `current` itself when nothing changes. */
  slice: V1EndpointSlice;
  /** Whether `slice` differs from `current` (endpoints or our annotation). */
  changed: boolean;
  /** Addresses in `current` that `slice` no longer has, sorted. */
  removed: string[];
  /** Addresses `slice` has that `current` did not, sorted. */
  restored: string[];
  /** Why our record on `current` was ignored (the current endpoints were then taken as the original). */
  recordProblem?: string;
}

/**
 * JSON with sorted keys and without null, undefined, empty arrays and empty objects: the apiserver
 * drops those (Go `omitempty`) and the client may reorder keys, so only this form is stable across
 * a write and a read back.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(normalize(value)) ?? '';
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(normalize).filter((item) => item !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (value === null || typeof value !== 'object') return value ?? undefined;
  const entries = Object.keys(value)
    .sort()
    .map((key): [string, unknown] => [key, normalize((value as Record<string, unknown>)[key])])
    .filter(([, item]) => item !== undefined);
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function fingerprint(endpoints: readonly V1Endpoint[]): string {
  return createHash('sha256').update(canonicalJson(endpoints)).digest('base64url');
}

function isEndpoint(value: unknown): value is V1Endpoint {
  const addresses = (value as { addresses?: unknown } | null)?.addresses;
  return Array.isArray(addresses) && addresses.every((address) => typeof address === 'string');
}

function isEntry(value: unknown): value is PrunedEntry {
  const entry = value as Partial<PrunedEntry> | null;
  return (
    Number.isSafeInteger(entry?.index) &&
    entry!.index! >= 0 &&
    typeof entry!.partial === 'boolean' &&
    isEndpoint(entry!.endpoint)
  );
}

type RecordReading = { entries: PrunedEntry[] } | { problem: string };

/** Our record on `slice`, checked against the slice's current endpoints; no entries when absent. */
function readRecord(slice: V1EndpointSlice): RecordReading {
  const text = slice.metadata?.annotations?.[ANNOTATION_PRUNED];
  if (text === undefined) return { entries: [] };
  let record: Partial<PruneRecord>;
  try {
    record = JSON.parse(text) as Partial<PruneRecord>;
  } catch {
    return { problem: `${ANNOTATION_PRUNED} is not valid JSON` };
  }
  const entries = record?.pruned;
  const wellFormed =
    record?.v === 1 && typeof record.fingerprint === 'string' && Array.isArray(entries) && entries.every(isEntry);
  if (!wellFormed) {
    return { problem: `${ANNOTATION_PRUNED} does not have the expected format (version 1)` };
  }
  const current = slice.endpoints ?? [];
  if (record.fingerprint !== fingerprint(current)) {
    return { problem: 'the endpoints changed since we pruned them (rewritten by another writer)' };
  }
  const originalLength = current.length + entries.filter((entry) => !entry.partial).length;
  const inOrder = entries.every(
    (entry, i) => entry.index < originalLength && (i === 0 || entry.index > entries[i - 1]!.index),
  );
  if (!inOrder) return { problem: `${ANNOTATION_PRUNED} has indices out of order or out of range` };
  return { entries };
}

/** Puts the recorded endpoints back at their original positions; a partial one replaces its trimmed copy. */
function reconstruct(current: readonly V1Endpoint[], entries: readonly PrunedEntry[]): V1Endpoint[] {
  const original: V1Endpoint[] = [];
  let next = 0;
  let recorded = 0;
  const length = current.length + entries.filter((entry) => !entry.partial).length;
  for (let index = 0; index < length; index++) {
    const entry = entries[recorded];
    if (entry?.index === index) {
      original.push(entry.endpoint);
      recorded++;
      if (entry.partial) next++;
    } else {
      original.push(current[next++]!);
    }
  }
  return original;
}

/**
 * Kosmos' rule: remove every disconnected address from each endpoint's `addresses` (exact string
 * match), drop an endpoint left with none, keep the rest as is and in order.
 */
function prune(
  original: readonly V1Endpoint[],
  disconnected: ReadonlySet<string>,
): { endpoints: V1Endpoint[]; entries: PrunedEntry[] } {
  const endpoints: V1Endpoint[] = [];
  const entries: PrunedEntry[] = [];
  original.forEach((endpoint, index) => {
    const addresses = endpoint.addresses ?? [];
    const kept = addresses.filter((address) => !disconnected.has(address));
    if (kept.length === addresses.length) {
      endpoints.push(endpoint);
      return;
    }
    entries.push({ index, partial: kept.length > 0, endpoint });
    if (kept.length > 0) endpoints.push({ ...endpoint, addresses: kept });
  });
  return { endpoints, entries };
}

function addressesOf(endpoints: readonly V1Endpoint[]): Set<string> {
  return new Set(endpoints.flatMap((endpoint) => endpoint.addresses ?? []));
}

function difference(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...a].filter((address) => !b.has(address)).sort();
}

/**
 * The slice as it should be with `disconnected` pruned: the original endpoints (the current ones plus
 * those our record says we pruned) pruned by Kosmos' rule, and a new record (none when nothing is
 * pruned). Labels, other annotations, ports and untouched endpoints are kept as they are.
 */
export function desiredSlice(current: V1EndpointSlice, disconnected: ReadonlySet<string>): PruneResult {
  const currentEndpoints = current.endpoints ?? [];
  const reading = readRecord(current);
  const original = 'entries' in reading ? reconstruct(currentEndpoints, reading.entries) : currentEndpoints;
  const { endpoints, entries } = prune(original, disconnected);

  const { [ANNOTATION_PRUNED]: oldRecord, ...otherAnnotations } = current.metadata?.annotations ?? {};
  const newRecord =
    entries.length > 0
      ? JSON.stringify({ v: 1, fingerprint: fingerprint(endpoints), pruned: entries } satisfies PruneRecord)
      : undefined;
  const problem = 'problem' in reading ? { recordProblem: reading.problem } : {};
  const changed = newRecord !== oldRecord || canonicalJson(endpoints) !== canonicalJson(currentEndpoints);
  if (!changed) return { slice: current, changed, removed: [], restored: [], ...problem };

  const annotations =
    newRecord === undefined ? otherAnnotations : { ...otherAnnotations, [ANNOTATION_PRUNED]: newRecord };
  const slice: V1EndpointSlice = { ...current, metadata: { ...current.metadata, annotations }, endpoints };
  const before = addressesOf(currentEndpoints);
  const after = addressesOf(endpoints);
  return { slice, changed, removed: difference(before, after), restored: difference(after, before), ...problem };
}

/**
 * Addresses our record on `slice` says we pruned, unique, so that the agent keeps probing them; none
 * when the record is unusable.
 */
export function prunedAddresses(slice: V1EndpointSlice): string[] {
  const reading = readRecord(slice);
  if (!('entries' in reading)) return [];
  return [...addressesOf(reading.entries.map((entry) => entry.endpoint))];
}


/**
 * The addresses of a ServiceImport that are not disconnected yet that none of its synced `slices`
 * holds: after a Kosmos re-sync overwrote our record of what we pruned, such an address is back only
 * when Kosmos re-syncs. Addresses of a family no slice carries are left out (Kosmos keeps only the
 * leaf's family), as is a ServiceImport without synced slices. `addresses` are canonical.
 */
export function missingFromSlices(slices: readonly V1EndpointSlice[], addresses: readonly string[], disconnected: ReadonlySet<string>): Set<string> {
  const held = new Set<string>();
  const families = new Set(slices.map((slice) => slice.addressType));
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      for (const address of endpoint.addresses) held.add(canonicalAddress(address) ?? address);
    }
  }
  const missing = new Set<string>();
  for (const address of addresses) {
    if (disconnected.has(address) || held.has(address)) continue;
    if (families.has(isIP(address) === 6 ? 'IPv6' : 'IPv4')) missing.add(address);
  }
  return missing;
}
