// The agent's decisions, pure: which targets this node probes, and which view it publishes from the
// engine's states. src/agent/agent.ts feeds them its caches and the engine; the unit tests feed them
// objects and drive the publisher through an in-memory writer.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { ServiceImport } from '../contract/kosmos.js';
import type { Target } from '../contract/target.js';
import { membersDigest, refusedAddresses, targetSetDigest } from '../report/coverage.js';
import { rendezvous } from '../report/rendezvous.js';
import { buildTargets, type InvalidInput, type NamespaceFilter } from '../report/targets.js';
import { buildNodeView, type NodeView, type TargetState } from '../report/view.js';

export interface TargetPlanInput {
  serviceImports: readonly ServiceImport[];
  slices: readonly V1EndpointSlice[];
  nodeName: string;
  /** Sharding members (this node included); used only when probeReplicas > 0. */
  members: readonly string[];
  settings: { namespaces: NamespaceFilter; allowCidrs: readonly string[]; probeReplicas: number };
}

export interface TargetPlan {
  /** What this node probes: every target, or its share of them when sharded. */
  targets: Target[];
  /** Invalid items of the ServiceImports and slices. */
  invalid: InvalidInput[];
  /** targetSetDigest() of the addresses this node would probe before sharding: what its votes cover. */
  targetDigest: string;
}

export function planTargets(input: TargetPlanInput): TargetPlan {
  const { settings, nodeName } = input;
  const { targets, invalid } = buildTargets({ serviceImports: input.serviceImports, slices: input.slices, namespaceFilter: settings.namespaces });
  const refused = refusedAddresses(targets.map((t) => t.address), settings.allowCidrs);
  const targetDigest = targetSetDigest(targets.map((t) => t.address).filter((address) => !refused.has(address)));
  const shard = settings.probeReplicas > 0 ? rendezvous(input.members, settings.probeReplicas) : undefined;
  const mine = shard ? targets.filter((t) => shard.isAssigned(t.address, nodeName)) : targets;
  return { targets: mine, invalid, targetDigest };
}

export interface ViewPlanInput {
  /** The engine's states of this node's targets. */
  states: readonly TargetState[];
  /**
   * What this node's report said before a restart: a target still `unknown` (first probes not
   * settled) keeps that verdict, so that a restart never flips the report.
   */
  inheritedUnreachable: ReadonlySet<string>;
  /** The agent is starved and abstains: its "unreachable" becomes no vote; "reachable" still counts (an answer is an answer). */
  abstaining: boolean;
  members: readonly string[];
  targetDigest: string;
  settings: { selfIsolationShare: number; probeReplicas: number };
}

export function planView(input: ViewPlanInput): NodeView {
  const { inheritedUnreachable, abstaining, settings } = input;
  const states = input.states.map((target) => {
    const state = target.state === 'unknown' && inheritedUnreachable.has(target.address) ? 'unreachable' : target.state;
    if (abstaining && state === 'unreachable') return { ...target, state: 'unknown' as const };
    return state === target.state ? target : { ...target, state };
  });
  return {
    ...buildNodeView({ states, suspectShare: settings.selfIsolationShare }),
    membersDigest: settings.probeReplicas > 0 ? membersDigest(input.members) : '',
    targetSetDigest: input.targetDigest,
  };
}
