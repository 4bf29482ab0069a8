// The allow-list (allowCidrs): which target addresses the engine may probe.
import ipaddr from 'ipaddr.js';
import { parseAddress, type Address } from '../contract/addresses.js';

export type AllowDecision = { allowed: true } | { allowed: false; reason: string };

/** Which target addresses the engine may probe. */
export interface AllowList {
  /** Whether `address` (canonical form) may be probed, and why not. */
  check(address: string): AllowDecision;
}

/**
 * ipaddr.js range names refused even inside a broad allow entry such as `0.0.0.0/0`, with the name
 * the refusal uses: probing them says nothing about a remote endpoint (the node itself, its links,
 * a group, nobody). Unique local IPv6 (fc00::/7) is an ordinary pod range and not listed.
 */
const SPECIAL_RANGES: Record<'ipv4' | 'ipv6', ReadonlyMap<string, string>> = {
  ipv4: new Map([
    ['unspecified', 'unspecified'], // 0.0.0.0/8
    ['broadcast', 'broadcast'], // 255.255.255.255
    ['multicast', 'multicast'], // 224.0.0.0/4
    ['linkLocal', 'link-local'], // 169.254.0.0/16, the cloud metadata service's 169.254.169.254 included
    ['loopback', 'loopback'], // 127.0.0.0/8
  ]),
  ipv6: new Map([
    ['unspecified', 'unspecified'], // ::
    ['loopback', 'loopback'], // ::1
    ['linkLocal', 'link-local'], // fe80::/10
    ['deprecatedSiteLocal', 'site-local'], // fec0::/10, scoped like link-local
    ['multicast', 'multicast'], // ff00::/8
    ['discard', 'discard-only'], // 100::/64, dropped by design
  ]),
};

/** The name of the special range `address` lies in, if any. */
function specialRangeOf(address: Address): string | undefined {
  return SPECIAL_RANGES[address.kind()].get(address.range());
}

/** An IPv4 address inside an IPv6 one, with how the refusal names its role. */
interface EmbeddedIPv4 {
  /** E.g. "IPv4-mapped address of": the refusal reads "IPv4-mapped address of 127.0.0.1 (loopback)". */
  role: string;
  address: ipaddr.IPv4;
}

/** The IPv4 address made of the given bytes of a 16-byte IPv6 address, each XORed with `mask`. */
function ipv4At(bytes: readonly number[], at: readonly number[], mask = 0): ipaddr.IPv4 {
  return new ipaddr.IPv4(at.map((i) => bytes[i]! ^ mask));
}

/**
 * IPv6 forms that carry an IPv4 address, which traffic to them may reach (a dual-stack socket, a
 * NAT64 gateway, a 6to4 or Teredo relay). The ranges are disjoint, so an address has one form.
 */
const EMBEDDING_FORMS: ReadonlyArray<{ range: [ipaddr.IPv6, number]; embedded(bytes: readonly number[]): EmbeddedIPv4[] }> = [
  { range: [ipaddr.IPv6.parse('::ffff:0:0'), 96], embedded: (b) => [{ role: 'IPv4-mapped address of', address: ipv4At(b, [12, 13, 14, 15]) }] },
  { range: [ipaddr.IPv6.parse('::'), 96], embedded: (b) => [{ role: 'IPv4-compatible address of', address: ipv4At(b, [12, 13, 14, 15]) }] },
  { range: [ipaddr.IPv6.parse('::ffff:0:0:0'), 96], embedded: (b) => [{ role: 'IPv4-translated address of', address: ipv4At(b, [12, 13, 14, 15]) }] },
  { range: [ipaddr.IPv6.parse('64:ff9b::'), 96], embedded: (b) => [{ role: 'NAT64 address of', address: ipv4At(b, [12, 13, 14, 15]) }] },
  // RFC 6052 layout of a /48 prefix: the IPv4 address in bits 48-63 and 72-87, around the u-octet (bits 64-71).
  { range: [ipaddr.IPv6.parse('64:ff9b:1::'), 48], embedded: (b) => [{ role: 'local-use NAT64 address of', address: ipv4At(b, [6, 7, 9, 10]) }] },
  { range: [ipaddr.IPv6.parse('2002::'), 16], embedded: (b) => [{ role: '6to4 address of', address: ipv4At(b, [2, 3, 4, 5]) }] },
  // Teredo: the server in bits 32-63, the client's address inverted in the last 32 bits.
  {
    range: [ipaddr.IPv6.parse('2001::'), 32],
    embedded: (b) => [
      { role: 'Teredo address with server', address: ipv4At(b, [4, 5, 6, 7]) },
      { role: 'Teredo address with client', address: ipv4At(b, [12, 13, 14, 15], 0xff) },
    ],
  },
];

function embeddedIPv4(address: Address): EmbeddedIPv4[] {
  if (!(address instanceof ipaddr.IPv6)) return [];
  const form = EMBEDDING_FORMS.find(({ range }) => address.match(range));
  return form ? form.embedded(address.toByteArray()) : [];
}

interface AllowEntry {
  network: Address;
  prefix: number;
  /** The special range this entry lies inside (so it allows that part of it explicitly). */
  special: string | undefined;
}

function contains(entry: AllowEntry, address: Address): boolean {
  return entry.network.kind() === address.kind() && address.match(entry.network, entry.prefix);
}

/** The first and last address of a CIDR: host bits cleared and set. */
function bounds(network: Address, prefix: number): [Address, Address] {
  const bytes = network.toByteArray();
  const hostMask = (i: number): number => (1 << Math.min(8, Math.max(0, (i + 1) * 8 - prefix))) - 1;
  return [
    ipaddr.fromByteArray(bytes.map((byte, i) => byte & ~hostMask(i))),
    ipaddr.fromByteArray(bytes.map((byte, i) => byte | hostMask(i))),
  ];
}

/** Decimal, no sign, no leading zeros, no spaces: `/08`, `/0x8`, `/1e1` and `/ 8` are typos, not prefixes. */
const PREFIX_LENGTH = /^(?:0|[1-9][0-9]*)$/;

function parseEntry(entry: string): AllowEntry {
  const slash = entry.indexOf('/');
  const network = parseAddress(slash < 0 ? entry : entry.slice(0, slash));
  if (network === undefined) throw new TypeError(`allowCidrs: "${entry}" is not an IP address or CIDR`);
  const maxPrefix = network.kind() === 'ipv4' ? 32 : 128;
  const prefixText = slash < 0 ? String(maxPrefix) : entry.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!PREFIX_LENGTH.test(prefixText) || prefix > maxPrefix) {
    throw new TypeError(`allowCidrs: "${entry}" needs a prefix length of 0-${maxPrefix} in plain decimal digits`);
  }
  // Special ranges are single CIDRs, so an entry whose first and last address lie in one lies inside it.
  const [first, last] = bounds(network, prefix);
  const special = specialRangeOf(first);
  return { network, prefix, special: special === specialRangeOf(last) ? special : undefined };
}

/**
 * Parses allow-list entries (`10.0.0.0/8`, `fd00::/8`, or a single address). An address is allowed
 * when an entry of its family contains it and, if it lies in a special range (loopback, link-local,
 * multicast, unspecified, ...), that entry lies inside the range: `127.0.0.0/8` allows loopback,
 * `0.0.0.0/0` does not. An IPv6 address that embeds IPv4 addresses (IPv4-mapped, NAT64, 6to4,
 * Teredo, ...) must also be allowed as each of them: `::ffff:0.0.0.0/96` does not reopen loopback.
 * @throws TypeError naming the first bad entry.
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  const allowed = entries.map(parseEntry);
  const allows = (address: Address): boolean => allowed.some((entry) => contains(entry, address));
  const allowsSpecial = (address: Address, special: string): boolean =>
    allowed.some((entry) => entry.special === special && contains(entry, address));
  const refuse = (reason: string): AllowDecision => ({ allowed: false, reason });
  return {
    check(text: string): AllowDecision {
      const address = parseAddress(text);
      if (address === undefined) return refuse('not an IP address');
      const special = specialRangeOf(address);
      if (special !== undefined && !allowsSpecial(address, special)) return refuse(`${special} address`);
      // `::1` is the IPv6 loopback, not an IPv4-compatible address of 0.0.0.1.
      const embedded = special === undefined ? embeddedIPv4(address) : [];
      for (const inner of embedded) {
        const innerSpecial = specialRangeOf(inner.address);
        if (innerSpecial !== undefined && !allowsSpecial(inner.address, innerSpecial)) {
          return refuse(`${inner.role} ${inner.address.toString()} (${innerSpecial})`);
        }
      }
      if (!allows(address)) return refuse('outside allowCidrs');
      for (const inner of embedded) {
        if (!allows(inner.address)) return refuse(`${inner.role} ${inner.address.toString()}, which is outside allowCidrs`);
      }
      return { allowed: true };
    },
  };
}
