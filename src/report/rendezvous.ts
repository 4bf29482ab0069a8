// Rendezvous (highest-random-weight) hashing: which agents probe a target when `probeReplicas` is set.
// Every member scores every key; the R best scores win. Removing a member moves only the keys it
// held, and adding one takes only the keys it now wins, so membership changes move few targets.
//
// Hash: 32-bit FNV-1a of each string, computed once per member and once per key, combined per pair
// with murmur3's fmix32 finalizer (full avalanche). A pair then costs a few integer multiplications,
// which keeps 100k targets × 1,000 members well under a second, where a sha256 per pair would take
// minutes. 32 bits suffice: only the order of scores among the members of one key matters, and a
// tie (rare) is broken by member name, so the result stays deterministic on every node.

export interface Rendezvous {
  /** The members that own `key`, sorted by name. */
  assignees(key: string): string[];
  /** Whether `member` is one of the owners of `key` (false for a non-member). */
  isAssigned(key: string, member: string): boolean;
}

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash;
}

/** murmur3's finalizer; the result is a signed 32-bit integer, which V8 keeps unboxed in hot loops. */
function fmix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A well-mixed 32-bit hash of a string (FNV-1a, then fmix32), also used for target-set digests. */
export function hashString(text: string): number {
  return fmix32(fnv1a32(text));
}

/**
 * Prepares the members once, for many lookups. `replicas` 0, or at least the number of members,
 * assigns every key to every member.
 * @throws TypeError when `replicas` is not a non-negative integer.
 */
export function rendezvous(members: readonly string[], replicas: number): Rendezvous {
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new TypeError(`replicas: expected a non-negative integer, got ${replicas}`);
  }
  // Sorted, so that a lower index wins a tie: the same answer whatever order callers list members in.
  const names = [...new Set(members)].sort();
  const indexOf = new Map(names.map((name, i) => [name, i]));
  // Mixed once more so that members with similar names get unrelated hashes before the XOR.
  const memberHashes = Int32Array.from(names, hashString);
  const everyone = replicas === 0 || replicas >= names.length;
  const score = (keyHash: number, i: number): number => fmix32(keyHash ^ memberHashes[i]!);

  return {
    assignees(key) {
      if (everyone) return [...names];
      const keyHash = fnv1a32(key);
      // The best `replicas` members so far, best first; a tie keeps the earlier (smaller) name first.
      const bestScores: number[] = [];
      const bestIndices: number[] = [];
      let threshold = -Infinity; // the worst kept score once `replicas` are kept
      for (let i = 0; i < names.length; i++) {
        const s = score(keyHash, i);
        if (s <= threshold) continue;
        let at = bestScores.length;
        while (at > 0 && bestScores[at - 1]! < s) at--;
        bestScores.splice(at, 0, s);
        bestIndices.splice(at, 0, i);
        if (bestScores.length > replicas) {
          bestScores.pop();
          bestIndices.pop();
        }
        if (bestScores.length === replicas) threshold = bestScores[replicas - 1]!;
      }
      return bestIndices.map((index) => names[index]!).sort();
    },
    isAssigned(key, member) {
      const self = indexOf.get(member);
      if (self === undefined) return false;
      if (everyone) return true;
      const keyHash = fnv1a32(key);
      const own = score(keyHash, self);
      let better = 0;
      for (let i = 0; i < names.length; i++) {
        const s = score(keyHash, i);
        if (s > own || (s === own && i < self)) {
          better++;
          if (better >= replicas) return false;
        }
      }
      return true;
    },
  };
}

/** The members that own `key`, sorted by name. For many keys, prepare once with `rendezvous()`. */
export function assignees(key: string, members: readonly string[], replicas: number): string[] {
  return rendezvous(members, replicas).assignees(key);
}

/** Whether `self` owns `key`. For many keys, prepare once with `rendezvous()`. */
export function isAssigned(key: string, self: string, members: readonly string[], replicas: number): boolean {
  return rendezvous(members, replicas).isAssigned(key, self);
}
