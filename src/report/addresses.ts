// Address lists in the format of the Kosmos annotations (`kosmos.io/address`,
// `kosmos.io/disconnected-address`): items joined by `,` with no spaces.
import { canonicalAddress } from '../probe/address.js';

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
