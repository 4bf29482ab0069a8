// The status model: who reaches whom and what the controller decided, as rows for the status page,
// its JSON endpoint and the `status` command. Pure: built once from observations (buildStatus), then
// asked for one filtered page at a time (queryStatus), so that no answer ever holds the whole cluster.
import type { Config } from '../config/config.js';
import type { Quorum, ServiceImportVerdict } from '../report/aggregate.js';
import { parseAllowList } from '../probe/address.js';
import { rendezvous, type Rendezvous } from '../report/rendezvous.js';
import type { ServiceImportKey } from '../contract/kosmos.js';
import { restoredAddresses, type StatusEvent } from './events.js';
import type { NodeObservation, NodeState, ServiceImportObservation } from './observe.js';

export interface StatusInput {
  now: Date;
  config: Config;
  configVersion: string;
  nodes: readonly NodeObservation[];
  serviceImports: readonly ServiceImportObservation[];
  /** The decision per ServiceImport (the controller's last one, or decide()'s). */
  verdicts: ReadonlyMap<ServiceImportKey, ServiceImportVerdict>;
  /** Newest first or in any order; only the newest are shown. */
  events: readonly StatusEvent[];
}

/** What one node knows of one address. `not-probed`: no verdict (not assigned to it, or not judged yet). */
export type CellState = 'reachable' | 'unreachable' | 'not-probed' | 'refused';

/** What the controller does with one address. */
export type Decision = 'connected' | 'restored' | 'kept-by-quorum' | 'held-back' | 'uncovered' | 'disconnected' | 'pruned';

export interface Cell {
  node: string;
  state: CellState;
  rttMs?: number;
}

export interface AddressRow {
  address: string;
  cells: Cell[];
  decision: Decision;
  /** Why, in words. */
  why: string;
}

export interface ServiceImportSummary {
  namespace: string;
  name: string;
  addresses: number;
  /** Addresses some voting node sees unreachable. */
  unreachable: number;
  disconnected: number;
  pruned: number;
  /** Addresses the ejection cap keeps in service; named as the page says it ("held back"), a /status.json field. */
  heldBack: number;
}

export interface ServiceImportDetail extends ServiceImportSummary {
  rows: AddressRow[];
}

/** A node as a row: its observation with the count of addresses it sees unreachable. */
export type NodeRow = Omit<NodeObservation, 'unreachable' | 'unjudged' | 'rttMs'> & { unreachable: number };

export interface StatusQuery {
  /** Substrings, case-insensitive; empty or unset matches everything. */
  namespace?: string;
  serviceImport?: string;
  address?: string;
  node?: string;
  /** Only ServiceImports with an unreachable, disconnected or held-back address. */
  problems?: boolean;
  /** 1-based. */
  page?: number;
  pageSize?: number;
}

export interface StatusPage {
  generatedAt: string;
  configVersion: string;
  query: Required<StatusQuery>;
  totals: { serviceImports: number; addresses: number; unreachable: number; disconnected: number; heldBack: number; nodes: Record<NodeState, number> };
  /** ServiceImports matching the query, over all pages. */
  matching: number;
  pages: number;
  nodes: NodeRow[];
  serviceImports: ServiceImportDetail[];
  events: StatusEvent[];
  /** The configuration in force, one dotted key per row. */
  config: Array<{ key: string; value: string }>;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
/** Events shown on a page. */
export const SHOWN_EVENTS = 20;
/** How long an address restored by the controller shows as "restored" rather than "connected". */
export const RESTORED_SHOWN_MS = 10 * 60_000;

/** A built model: summaries of every ServiceImport, details computed per page. */
export interface StatusIndex {
  readonly input: StatusInput;
  /** Problems first, then by namespace and name. */
  readonly summaries: readonly ServiceImportSummary[];
  /** The rows of one ServiceImport (all addresses, all nodes). */
  rows(si: ServiceImportObservation): AddressRow[];
  readonly byKey: ReadonlyMap<ServiceImportKey, ServiceImportObservation>;
}

const keyOf = (si: { namespace: string; name: string }): ServiceImportKey => `${si.namespace}/${si.name}`;

function quorumNeeds(quorum: Quorum, voters: number): number {
  if (quorum === 'any') return 1;
  if (quorum === 'majority') return Math.floor(voters / 2) + 1;
  return voters;
}

/** `1 node`, `2 nodes`. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

function hasProblem(summary: ServiceImportSummary): boolean {
  return summary.unreachable > 0 || summary.disconnected > 0 || summary.heldBack > 0;
}

/** The verdict used when the decision has none for a ServiceImport: the published one stays, as in the controller. */
function verdictOf(input: StatusInput, si: ServiceImportObservation): ServiceImportVerdict {
  return input.verdicts.get(keyOf(si)) ?? { disconnected: new Set(si.published), ejectionCapped: [], guarded: [], uncovered: [], reconnected: new Map() };
}

export function buildStatus(input: StatusInput): StatusIndex {
  const allowList = parseAllowList(input.config.allowCidrs);
  const voting = input.nodes.filter((node) => node.state === 'live');
  // An invalid report says nothing about any address: its node is listed, but has no column.
  const columns = input.nodes.filter((node) => node.state !== 'invalid');
  const votingNames = new Set(voting.map((node) => node.name));
  const members = [...votingNames].sort();
  // Sharding as agents and controller do it: over the live members, with each report's own replicas.
  const rings = new Map<number, Rendezvous>();
  const ringOf = (replicas: number): Rendezvous => {
    let ring = rings.get(replicas);
    if (!ring) rings.set(replicas, (ring = rendezvous(members, replicas)));
    return ring;
  };
  const seenDown = new Set(voting.flatMap((node) => [...node.unreachable]));
  const restored = restoredAddresses(input.events);

  const cellOf = (address: string, refused: boolean, node: NodeObservation): Cell => {
    const rttMs = node.rttMs?.get(address);
    const cell = (state: CellState): Cell => (rttMs === undefined ? { node: node.name, state } : { node: node.name, state, rttMs });
    if (refused) return cell('refused');
    if (node.unreachable.has(address)) return cell('unreachable');
    // A node outside the live members would have no targets by the ring; it still probes (it counts itself in).
    const assigned = node.probeReplicas === 0 || !votingNames.has(node.name) || ringOf(node.probeReplicas).isAssigned(address, node.name);
    if (!assigned || node.unjudged?.has(address)) return cell('not-probed');
    return cell('reachable');
  };

  const decisionOf = (si: ServiceImportObservation, verdict: ServiceImportVerdict, address: string, cells: readonly Cell[]): Pick<AddressRow, 'decision' | 'why'> => {
    const votes = cells.filter((c) => votingNames.has(c.node) && (c.state === 'reachable' || c.state === 'unreachable'));
    const down = votes.filter((c) => c.state === 'unreachable').length;
    const { quorum, maxEjectionShare } = input.config.controller;
    const tally = `${down} of ${plural(votes.length, 'voting node')} ${down === 1 ? 'sees' : 'see'} it unreachable`;
    const uncovered = verdict.uncovered.includes(address);
    if (verdict.disconnected.has(address)) {
      const cause = uncovered ? 'no live node probes it, so the last decision (disconnected) stays' : `${tally} (quorum: ${quorum})`;
      if (si.pruned.has(address)) return { decision: 'pruned', why: `${cause}; removed from the synced EndpointSlices` };
      const published = si.published.has(address) ? 'published as disconnected' : 'being published as disconnected';
      return { decision: 'disconnected', why: `${cause}; ${published}, not in a synced slice` };
    }
    if (verdict.ejectionCapped.includes(address)) {
      const cap = Math.floor(maxEjectionShare * si.addresses.length + 1e-9);
      return { decision: 'held-back', why: `${tally}, but the ejection cap (${maxEjectionShare} of ${si.addresses.length} addresses: at most ${cap}) keeps it in service` };
    }
    if (uncovered) return { decision: 'uncovered', why: 'no live node probes it, so the last decision (connected) stays' };
    if (down > 0) return { decision: 'kept-by-quorum', why: `${tally}; quorum ${quorum} needs ${quorumNeeds(quorum, votes.length)}` };
    const restoredAt = restored.get(keyOf(si))?.get(address);
    if (restoredAt && input.now.getTime() - Date.parse(restoredAt) <= RESTORED_SHOWN_MS) return { decision: 'restored', why: `reachable again; restored at ${restoredAt}` };
    return { decision: 'connected', why: votes.length > 0 ? `reachable from ${plural(votes.length, 'voting node')}` : 'no voting node has a verdict' };
  };

  const summaries = input.serviceImports.map((si): ServiceImportSummary => {
    const verdict = verdictOf(input, si);
    let pruned = 0;
    for (const address of verdict.disconnected) if (si.pruned.has(address)) pruned++;
    return {
      namespace: si.namespace,
      name: si.name,
      addresses: si.addresses.length,
      unreachable: si.addresses.filter((address) => seenDown.has(address)).length,
      disconnected: verdict.disconnected.size,
      pruned,
      heldBack: verdict.ejectionCapped.length,
    };
  });
  summaries.sort((a, b) => Number(hasProblem(b)) - Number(hasProblem(a)) || (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));

  return {
    input,
    summaries,
    byKey: new Map(input.serviceImports.map((si) => [keyOf(si), si])),
    rows(si) {
      const verdict = verdictOf(input, si);
      return si.addresses.map((address) => {
        const refused = !allowList.check(address).allowed;
        const cells = columns.map((node) => cellOf(address, refused, node));
        return { address, cells, ...decisionOf(si, verdict, address, cells) };
      });
    },
  };
}

function includes(value: string, part: string): boolean {
  return part === '' || value.toLowerCase().includes(part);
}

function normalizedQuery(query: StatusQuery): Required<StatusQuery> {
  const text = (value: string | undefined): string => (value ?? '').trim().toLowerCase();
  const pageSize = Number.isInteger(query.pageSize) && query.pageSize! > 0 ? Math.min(query.pageSize!, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  return {
    namespace: text(query.namespace),
    serviceImport: text(query.serviceImport),
    address: text(query.address),
    node: text(query.node),
    problems: query.problems ?? false,
    page: Number.isInteger(query.page) && query.page! > 0 ? query.page! : 1,
    pageSize,
  };
}

/** Flattens the configuration into dotted keys, for a table. */
function configRows(config: Config): Array<{ key: string; value: string }> {
  const rows: Array<{ key: string; value: string }> = [];
  const walk = (prefix: string, value: unknown): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
    } else {
      rows.push({ key: prefix, value: Array.isArray(value) ? value.join(', ') : String(value) });
    }
  };
  walk('', config);
  return rows;
}

/** One page of the model for `query`: matching ServiceImports (and only matching addresses and nodes). */
export function queryStatus(index: StatusIndex, query: StatusQuery): StatusPage {
  const q = normalizedQuery(query);
  const { input } = index;
  const matching = index.summaries.filter((summary) => {
    if (!includes(summary.namespace, q.namespace) || !includes(summary.name, q.serviceImport)) return false;
    if (q.problems && !hasProblem(summary)) return false;
    return q.address === '' || index.byKey.get(keyOf(summary))!.addresses.some((address) => includes(address, q.address));
  });
  const pages = Math.max(1, Math.ceil(matching.length / q.pageSize));
  const page = Math.min(q.page, pages);
  const shownNodes = new Set(input.nodes.filter((node) => includes(node.name, q.node)).map((node) => node.name));
  const serviceImports = matching.slice((page - 1) * q.pageSize, page * q.pageSize).map((summary): ServiceImportDetail => {
    const rows = index
      .rows(index.byKey.get(keyOf(summary))!)
      .filter((row) => includes(row.address, q.address))
      .map((row) => ({ ...row, cells: row.cells.filter((cell) => shownNodes.has(cell.node)) }));
    return { ...summary, rows };
  });
  const nodeStates: Record<NodeState, number> = { live: 0, suspect: 0, stale: 0, 'other-config': 0, invalid: 0 };
  for (const node of input.nodes) nodeStates[node.state]++;
  const sum = (pick: (summary: ServiceImportSummary) => number): number => index.summaries.reduce((total, summary) => total + pick(summary), 0);
  return {
    generatedAt: input.now.toISOString(),
    configVersion: input.configVersion,
    query: { ...q, page },
    totals: {
      serviceImports: index.summaries.length,
      addresses: sum((s) => s.addresses),
      unreachable: sum((s) => s.unreachable),
      disconnected: sum((s) => s.disconnected),
      heldBack: sum((s) => s.heldBack),
      nodes: nodeStates,
    },
    matching: matching.length,
    pages,
    nodes: input.nodes
      .filter((node) => shownNodes.has(node.name))
      .map(({ unreachable, unjudged: _unjudged, rttMs: _rttMs, ...node }) => ({ ...node, unreachable: unreachable.size })),
    serviceImports,
    events: [...input.events].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, SHOWN_EVENTS),
    config: configRows(input.config),
  };
}
