import { canonicalAddress } from '../contract/addresses.js';
import type { Target } from '../contract/target.js';
import { ReportedProblems } from '../log.js';
import type { AllowList } from './address.js';
import { TargetProbeState } from './target-state.js';

export interface TargetSetDiff {
  added: number;
  removed: number;
  /** Targets whose ports or owners changed; they keep their state and timer. */
  changed: number;
  /** Addresses refused by the allow-list (as given). */
  refused: string[];
}

/** What the allow-list makes of a list of targets. */
export interface Admission {
  /** By canonical address, duplicates merged: sorted unique ports and owners, one shared array per distinct list. */
  accepted: Map<string, Target>;
  /** As given, with why. */
  refused: { target: Target; reason: string }[];
}

/** What the set tells its owner while it changes. */
export interface TargetSetHooks {
  /** An address refused for the first time since it entered the input (once while it stays). */
  refused(address: string, reason: string): void;
  added(state: TargetProbeState): void;
  /** Called after the state left the set; `state.stopped` is set. */
  removed(state: TargetProbeState): void;
}

/** Canonicalises, checks against the allow-list, and merges the targets of one address. */
export function admitTargets(targets: readonly Target[], allowList: AllowList): Admission {
  const accepted = new Map<string, Target>();
  const refused: Admission['refused'] = [];
  const ports = new ListInterner<number>((a, b) => a - b);
  const owners = new ListInterner<string>();
  for (const target of targets) {
    const address = canonicalAddress(target.address);
    const decision = address === undefined ? { allowed: false as const, reason: 'not an IP address' } : allowList.check(address);
    if (!decision.allowed || address === undefined) {
      refused.push({ target, reason: decision.allowed ? '' : decision.reason });
      continue;
    }
    const existing = accepted.get(address);
    accepted.set(address, {
      address,
      ports: ports.get(existing ? [...existing.ports, ...target.ports] : target.ports),
      owners: owners.get(existing ? [...existing.owners, ...target.owners] : target.owners),
    });
  }
  return { accepted, refused };
}

/**
 * The targets being probed, by canonical address (the kubelet prober manager's map of workers): each
 * new input is admitted and diffed against the set, so that unchanged targets keep their state and
 * planned probe, and removed ones are forgotten.
 */
export class TargetSet {
  private readonly states = new Map<string, TargetProbeState>();
  /**
   * The last input, re-applied when the allow-list changes: the normalised accepted targets and the
   * refused ones as given (holding the caller's objects would double the memory per target).
   */
  private desired: Target[] = [];
  /** Refused addresses: reported once per address while it stays in the input. */
  private readonly refusedReported = new ReportedProblems<string>();

  constructor(
    public allowList: AllowList,
    private readonly hooks: TargetSetHooks,
  ) {}

  get size(): number {
    return this.states.size;
  }

  addresses(): IterableIterator<string> {
    return this.states.keys();
  }

  [Symbol.iterator](): IterableIterator<TargetProbeState> {
    return this.states.values();
  }

  /** Replaces the set with `targets`: removals first, then additions, each through the hooks. */
  set(targets: readonly Target[]): TargetSetDiff {
    const { accepted, refused } = admitTargets(targets, this.allowList);
    for (const { target, reason } of refused) if (this.refusedReported.isNew(target.address)) this.hooks.refused(target.address, reason);
    this.refusedReported.endPass();
    this.desired = [...accepted.values(), ...refused.map(({ target }) => target)];
    let removed = 0;
    let changed = 0;
    for (const [address, state] of this.states) {
      const next = accepted.get(address);
      if (!next) {
        state.stopped = true;
        this.states.delete(address);
        this.hooks.removed(state);
        removed += 1;
      } else if (!sameTarget(state.target, next)) {
        state.target = next;
        changed += 1;
      }
    }
    let added = 0;
    for (const [address, target] of accepted) {
      if (this.states.has(address)) continue;
      const state = new TargetProbeState(target);
      this.states.set(address, state);
      this.hooks.added(state);
      added += 1;
    }
    return { added, removed, changed, refused: refused.map(({ target }) => target.address) };
  }

  /** Applies the last input again (after the allow-list changed). */
  reapply(): TargetSetDiff {
    return this.set(this.desired);
  }
}

/**
 * Sorted unique lists, one frozen array per distinct list: the endpoints of a service share their
 * ports and owners, so 100k targets hold a handful of arrays instead of 200k.
 */
class ListInterner<T> {
  private readonly lists = new Map<string, T[]>();

  constructor(private readonly compare?: (a: T, b: T) => number) {}

  get(values: readonly T[]): T[] {
    // Ports are numbers and owners "namespace/name": neither contains a newline.
    const key = values.join('\n');
    let list = this.lists.get(key);
    if (!list) {
      list = Object.freeze([...new Set(values)].sort(this.compare)) as T[];
      this.lists.set(key, list);
    }
    return list;
  }
}

function sameTarget(a: Target, b: Target): boolean {
  return a.ports.join() === b.ports.join() && a.owners.join('\n') === b.owners.join('\n');
}
