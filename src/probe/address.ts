import { BlockList, isIP } from 'node:net';

/**
 * The canonical text of an IP address: dotted IPv4 as is, IPv6 in RFC 5952 form (lower case, the
 * first longest zero run compressed, IPv4-mapped as `::ffff:a.b.c.d`). Kosmos matches addresses as
 * exact strings, so every address we report goes through here. Undefined when `text` is not an IP
 * (zone ids such as `fe80::1%eth0` included: they name a local interface, not an endpoint).
 */
export function canonicalAddress(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text; // node's isIP already rejects leading zeros and short forms
  if (family !== 6 || text.includes('%')) return undefined;
  // The WHATWG URL serializer applies the RFC 5952 rules except for IPv4-mapped addresses.
  const compressed = new URL(`http://[${text}]`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped) return compressed;
  const high = Number.parseInt(mapped[1]!, 16);
  const low = Number.parseInt(mapped[2]!, 16);
  return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

export type AllowDecision = { allowed: true } | { allowed: false; reason: string };

/** Which target addresses the engine may probe. */
export interface AllowList {
  /** Whether `address` (canonical form) may be probed, and why not. */
  check(address: string): AllowDecision;
}

interface Cidr {
  /** Canonical network address with host bits as given. */
  network: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

interface SpecialRange {
  /** Name used in the refusal reason. */
  name: string;
  cidrs: Cidr[];
}

/** Ranges refused even inside a broad allow entry such as `0.0.0.0/0`: probing them says nothing about a remote endpoint. */
const SPECIAL_RANGES: readonly SpecialRange[] = [
  { name: 'loopback', cidrs: [cidr('127.0.0.0', 8), cidr('::1', 128)] },
  { name: 'link-local', cidrs: [cidr('169.254.0.0', 16), cidr('fe80::', 10)] },
  { name: 'multicast', cidrs: [cidr('224.0.0.0', 4), cidr('ff00::', 8)] },
  { name: 'unspecified', cidrs: [cidr('0.0.0.0', 8), cidr('::', 128)] },
  { name: 'broadcast', cidrs: [cidr('255.255.255.255', 32)] },
  // An IPv4-mapped IPv6 address would otherwise reach e.g. 127.0.0.1 through an IPv6 allow entry.
  { name: 'IPv4-mapped', cidrs: [cidr('::ffff:0.0.0.0', 96)] },
];

function cidr(network: string, prefix: number): Cidr {
  return { network, prefix, family: isIP(network) === 4 ? 'ipv4' : 'ipv6' };
}

type Family = Cidr['family'];

/**
 * Membership test over CIDRs, one BlockList per family: a single node BlockList also matches IPv4
 * addresses against IPv4-mapped IPv6 rules (so `::/0` would cover all of IPv4) and the reverse.
 */
class CidrSet {
  private readonly lists: Record<Family, BlockList> = { ipv4: new BlockList(), ipv6: new BlockList() };

  constructor(cidrs: readonly Cidr[]) {
    for (const entry of cidrs) this.lists[entry.family].addSubnet(entry.network, entry.prefix, entry.family);
  }

  has(address: string, family: Family): boolean {
    return this.lists[family].check(address, family);
  }
}

function parseCidr(entry: string): Cidr {
  const [address = '', prefixText, extra] = entry.split('/');
  const network = canonicalAddress(address);
  if (network === undefined || extra !== undefined) {
    throw new TypeError(`allowCidrs: "${entry}" is not an IP address or CIDR`);
  }
  const family = isIP(network) === 4 ? 'ipv4' : 'ipv6';
  const maxPrefix = family === 'ipv4' ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (prefixText === '' || !Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix) {
    throw new TypeError(`allowCidrs: "${entry}" has a prefix length outside 0-${maxPrefix}`);
  }
  return { network, prefix, family };
}

/** True when every address of `inner` lies inside `outer`. */
function isWithin(inner: Cidr, outer: Cidr): boolean {
  return (
    inner.family === outer.family &&
    inner.prefix >= outer.prefix &&
    new CidrSet([outer]).has(inner.network, inner.family)
  );
}

/**
 * Parses allow-list entries (`10.0.0.0/8`, `fd00::/8`, or a single address). An address in a special
 * range (loopback, link-local, multicast, unspecified, broadcast, IPv4-mapped) is allowed only by an
 * entry lying inside that range: `127.0.0.0/8` allows loopback, `0.0.0.0/0` does not.
 * @throws TypeError naming the first bad entry.
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  const allowed = entries.map(parseCidr);
  const allowedSet = new CidrSet(allowed);
  const specials = SPECIAL_RANGES.map((range) => ({
    name: range.name,
    range: new CidrSet(range.cidrs),
    explicitlyAllowed: new CidrSet(allowed.filter((entry) => range.cidrs.some((r) => isWithin(entry, r)))),
    hint: range.cidrs.map((r) => `${r.network}/${r.prefix}`).join(' or '),
  }));
  return {
    check(address: string): AllowDecision {
      const family = isIP(address);
      if (family === 0) return { allowed: false, reason: 'not an IP address' };
      const type = family === 4 ? 'ipv4' : 'ipv6';
      for (const special of specials) {
        if (special.range.has(address, type) && !special.explicitlyAllowed.has(address, type)) {
          return {
            allowed: false,
            reason: `${special.name} address; allow it with an allowCidrs entry inside ${special.hint}`,
          };
        }
      }
      if (!allowedSet.has(address, type)) return { allowed: false, reason: 'outside allowCidrs' };
      return { allowed: true };
    },
  };
}
