// IP addresses as Kosmos compares them (exact strings, so one canonical spelling) and the address
// lists of the Kosmos annotations (`kosmos.io/address`, `kosmos.io/disconnected-address`): items
// joined by `,` with no spaces.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** A dotted IPv4 tail of an IPv6 address (`::ffff:1.2.3.4`). */
const DOTTED_TAIL = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/;

/**
 * Parses what we accept as an IP address: node's isIP is the gate, because ipaddr.js also takes
 * `010.1.1.1`, `0x7f.1` and `2130706433`, which name addresses nobody could read them as. Zone ids
 * (`fe80::1%eth0`) name a local interface, not an endpoint, so they are refused too.
 */
export function parseAddress(text: string): Address | undefined {
  const family = isIP(text);
  if (family === 4) return ipaddr.IPv4.parse(text);
  if (family !== 6 || text.includes('%')) return undefined;
  // ipaddr.js reads `::1.2.3.4` as `::ffff:1.2.3.4`, another address: the dotted tail becomes two groups first.
  const hex = text.replace(DOTTED_TAIL, (_, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  return ipaddr.IPv6.parse(hex);
}

/**
 * The canonical text of an IP address: dotted IPv4 as is, IPv6 in RFC 5952 form (lower case, the
 * first longest zero run compressed, IPv4-mapped as `::ffff:a.b.c.d`). Kosmos matches addresses as
 * exact strings, so every address we report goes through here. Undefined when `text` is not an IP
 * (zone ids such as `fe80::1%eth0` included: they name a local interface, not an endpoint).
 */
export function canonicalAddress(text: string): string | undefined {
  const address = parseAddress(text);
  if (!(address instanceof ipaddr.IPv6)) return address?.toString();
  return address.isIPv4MappedAddress() ? `::ffff:${address.toIPv4Address().toString()}` : address.toRFC5952String();
}

export interface ParsedAddressList {
  /** Valid addresses, unique, in first-seen order. */
  addresses: string[];
  /** Each bad item once, as written. */
  invalid: string[];
}

/**
 * Why `item` is not an address we can probe and report, or undefined when it is one.
 *
 * Kosmos compares addresses as exact strings without trimming, so only an IP address already in
 * canonical form (dotted IPv4, RFC 5952 IPv6) counts: ` 10.0.0.1` or `FD00::1` is refused, not probed
 * in a cleaned-up form, because the cleaned-up spelling we would report as disconnected would not
 * match the spelling Kosmos prunes by, and the endpoint would stay in the slice.
 */
export function addressProblem(item: string): string | undefined {
  if (item === '') return 'empty item';
  const canonical = canonicalAddress(item);
  if (canonical === item) return undefined;
  if (canonical !== undefined) return `not in canonical form (${canonical}); Kosmos matches exact strings`;
  if (item.trim() !== item && canonicalAddress(item.trim()) !== undefined) {
    return 'surrounding whitespace; Kosmos does not trim';
  }
  return 'not an IP address';
}

/**
 * Splits a Kosmos address list. An absent or empty value is an empty list (Kosmos writes `""` when a
 * service has no endpoints); an empty item inside a list (`a,,b`, `a,`) is invalid.
 */
export function parseAddressList(value: string | undefined): ParsedAddressList {
  const addresses = new Set<string>();
  const invalid = new Set<string>();
  if (value === undefined || value === '') return { addresses: [], invalid: [] };
  for (const item of value.split(',')) {
    if (addressProblem(item) === undefined) addresses.add(item);
    else invalid.add(item);
  }
  return { addresses: [...addresses], invalid: [...invalid] };
}

/**
 * The `kosmos.io/disconnected-address` value: unique, sorted by plain string order (deterministic, so
 * an unchanged set never causes a write), joined by `,` with no spaces; `''` when empty.
 */
export function formatAddressList(addresses: Iterable<string>): string {
  return [...new Set(addresses)].sort().join(',');
}
