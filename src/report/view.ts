// One node's view, as published in its ProbeReport: per ServiceImport, the addresses it judged
// unreachable and those it has no verdict for yet, plus its own self-isolation hint. Pure: the agent
// feeds it the engine's states.
import { isDeepStrictEqual } from 'node:util';
import type { Reachability } from '../probe/hysteresis.js';
import type { ProbeReportSpec, ReportedServiceImport } from '../contract/probe-report.js';

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
  /** 0..1: above this share of unreachable judged targets, the node raises its suspect hint. 1 disables it. */
  suspectShare: number;
  /** Fewer judged targets than this never raise the hint. Default 2. */
  minTargetsForSuspect?: number;
}

/** The part of a ProbeReportSpec computed from probe results, and the scope of its votes (set by the agent). */
export type NodeView = Pick<
  ProbeReportSpec,
  'serviceImports' | 'targetsProbed' | 'targetsJudged' | 'unreachableCount' | 'suspect' | 'suspectReason' | 'membersDigest' | 'targetSetDigest'
>;

function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * The alarm behind the self-isolation rules: with `judged` targets having a verdict, of which
 * `unreachable` are unreachable, at least `minJudged` judged and more than `share` of them unreachable
 * (never with share 1, which disables the guard, whatever a report's counts say).
 * The agent publishes it as its hint; the controller decides with it whether a node is isolated
 * (src/report/isolation.ts).
 */
export function isAlarmed(unreachable: number, judged: number, share: number, minJudged = DEFAULT_MIN_TARGETS_FOR_SUSPECT): boolean {
  return share < 1 && judged >= minJudged && unreachable / judged > share;
}

/**
 * Builds the view. Every target in `states` is probed; one in state `unknown` (first probes not
 * settled, or probes that could not run here) is listed as unknown, so that it carries no vote: a
 * report that left it out would count as "reachable". The suspect hint follows isAlarmed(); the
 * node still lists what it sees.
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

  let judged = 0;
  const byOwner = new Map<string, { unreachable: Set<string>; unknown: Set<string> }>();
  const unreachable = new Set<string>();
  for (const { address, owners, state } of states) {
    if (state === 'reachable') {
      judged++;
      continue;
    }
    if (state === 'unreachable') {
      judged++;
      unreachable.add(address);
    }
    for (const owner of owners) {
      let lists = byOwner.get(owner);
      if (!lists) byOwner.set(owner, (lists = { unreachable: new Set(), unknown: new Set() }));
      lists[state].add(address);
    }
  }

  const serviceImports: ReportedServiceImport[] = [...byOwner]
    .map(([key, lists]) => {
      const view: ReportedServiceImport = { ...splitKey(key), unreachable: [...lists.unreachable].sort() };
      if (lists.unknown.size > 0) view.unknown = [...lists.unknown].sort();
      return view;
    })
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  const view: NodeView = {
    serviceImports,
    targetsProbed: states.length,
    targetsJudged: judged,
    unreachableCount: unreachable.size,
    suspect: false,
  };
  if (isAlarmed(unreachable.size, judged, suspectShare, minTargets)) {
    view.suspect = true;
    view.suspectReason =
      `${unreachable.size} of ${judged} probed targets unreachable, more than ` +
      `${Math.round(suspectShare * 100)}%: a problem of this node, unless the other nodes see the same`;
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
