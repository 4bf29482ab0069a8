// One node's view, as published in its ProbeReport: which addresses of which ServiceImport it cannot
// reach, plus the self-isolation guard. Pure: the agent feeds it the engine's states.
import { isDeepStrictEqual } from 'node:util';
import type { Reachability } from '../probe/hysteresis.js';
import type { ProbeReportSpec, ServiceImportView } from './types.js';

/** The default of `minTargetsForSuspect`. */
export const DEFAULT_MIN_TARGETS_FOR_SUSPECT = 2;

export interface TargetState {
  address: string;
  /** ServiceImport keys `namespace/name`. */
  owners: readonly string[];
  state: Reachability;
}

export interface NodeViewInput {
  states: readonly TargetState[];
  /** 0..1: above this share of unreachable known targets, the node suspects itself. 1 disables the guard. */
  suspectShare: number;
  /** Fewer known (probed to a verdict) targets than this never make the node suspect. Default 2. */
  minTargetsForSuspect?: number;
}

/** The part of a ProbeReportSpec computed from probe results. */
export type NodeView = Pick<
  ProbeReportSpec,
  'serviceImports' | 'targetsProbed' | 'unreachableCount' | 'suspect' | 'suspectReason'
>;

function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * Self-isolation rule: with `known` targets having a verdict (not `unknown`) of which `unreachable`
 * are unreachable, the node is suspect when `known >= minTargetsForSuspect` and
 * `unreachable / known > suspectShare`. A node cut off from the network sees everything down at once,
 * which is far likelier than every endpoint failing together; the controller then ignores its report
 * rather than pruning every endpoint. The node still lists what it sees, for operators.
 * @throws TypeError naming a bad option.
 */
export function buildNodeView(input: NodeViewInput): NodeView {
  const { states, suspectShare } = input;
  const minTargets = input.minTargetsForSuspect ?? DEFAULT_MIN_TARGETS_FOR_SUSPECT;
  if (!(suspectShare >= 0 && suspectShare <= 1)) {
    throw new TypeError(`suspectShare: expected a number from 0 to 1, got ${suspectShare}`);
  }
  if (!Number.isInteger(minTargets) || minTargets < 1) {
    throw new TypeError(`minTargetsForSuspect: expected a positive integer, got ${minTargets}`);
  }

  let known = 0;
  const unreachableByOwner = new Map<string, string[]>();
  const unreachable = new Set<string>();
  for (const { address, owners, state } of states) {
    if (state === 'unknown') continue;
    known++;
    if (state !== 'unreachable') continue;
    unreachable.add(address);
    for (const owner of owners) {
      const list = unreachableByOwner.get(owner);
      if (list) list.push(address);
      else unreachableByOwner.set(owner, [address]);
    }
  }

  const serviceImports: ServiceImportView[] = [...unreachableByOwner]
    .map(([key, addresses]) => ({ ...splitKey(key), unreachable: [...new Set(addresses)].sort() }))
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  const view: NodeView = {
    serviceImports,
    targetsProbed: states.length,
    unreachableCount: unreachable.size,
    suspect: false,
  };
  if (known >= minTargets && unreachable.size / known > suspectShare) {
    view.suspect = true;
    view.suspectReason =
      `${unreachable.size} of ${known} probed targets unreachable, more than ` +
      `${Math.round(suspectShare * 100)}%: a local network problem is likelier than a global one`;
  }
  return view;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether two views (or whole report specs) are equal in everything but `heartbeatTime`, so that
 * the agent writes its report only when the view changed, plus its periodic heartbeat. A field set to
 * `undefined` counts as absent, as it does once serialized.
 */
export function sameView<T extends object>(a: T, b: T): boolean {
  return isDeepStrictEqual(comparable(a), comparable(b));
}

function comparable(view: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(view).filter(([key, value]) => key !== 'heartbeatTime' && value !== undefined),
  );
}
