import { describe, expect, it } from 'vitest';
import { canonicalAddress, parseAllowList } from '../../src/probe/address.js';

describe('canonicalAddress', () => {
  it.each([
    { name: 'IPv4 stays as written', input: '10.1.2.3', expected: '10.1.2.3' },
    { name: 'IPv6 is lower-cased', input: '2001:DB8::1', expected: '2001:db8::1' },
    { name: 'leading zeros in IPv6 groups are dropped', input: '2001:0db8:0000:0000:0000:0000:0000:0001', expected: '2001:db8::1' },
    { name: 'the longest zero run is compressed', input: '2001:db8:0:0:1:0:0:0', expected: '2001:db8:0:0:1::' },
    { name: 'of equal zero runs the first is compressed', input: '2001:db8:0:0:1:0:0:1', expected: '2001:db8::1:0:0:1' },
    { name: 'a single zero group is not compressed', input: '2001:db8:0:1:1:1:1:1', expected: '2001:db8:0:1:1:1:1:1' },
    { name: 'IPv4-mapped keeps its dotted tail', input: '::FFFF:0a01:0203', expected: '::ffff:10.1.2.3' },
    { name: 'unspecified IPv6', input: '0:0:0:0:0:0:0:0', expected: '::' },
    { name: 'a hostname is not an address', input: 'example.com', expected: undefined },
    { name: 'IPv4 with a leading zero is refused', input: '010.1.2.3', expected: undefined },
    { name: 'a zone id is refused', input: 'fe80::1%eth0', expected: undefined },
    { name: 'an empty string is refused', input: '', expected: undefined },
    { name: 'a CIDR is not an address', input: '10.0.0.0/8', expected: undefined },
  ])('$name', ({ input, expected }) => {
    expect(canonicalAddress(input)).toBe(expected);
  });
});

describe('parseAllowList', () => {
  it.each([
    { name: 'a hostname', entry: 'example.com' },
    { name: 'an IPv4 prefix over 32', entry: '10.0.0.0/33' },
    { name: 'an IPv6 prefix over 128', entry: 'fd00::/129' },
    { name: 'an empty prefix', entry: '10.0.0.0/' },
    { name: 'a fractional prefix', entry: '10.0.0.0/8.5' },
    { name: 'two slashes', entry: '10.0.0.0/8/8' },
  ])('throws a TypeError naming $name', ({ entry }) => {
    expect(() => parseAllowList(['10.0.0.0/8', entry])).toThrow(TypeError);
    expect(() => parseAllowList(['10.0.0.0/8', entry])).toThrow(`allowCidrs: "${entry}"`);
  });

  const broad = ['0.0.0.0/0', '::/0'];
  it.each([
    { name: 'a pod address inside the list', cidrs: ['10.233.0.0/16'], address: '10.233.1.2', allowed: true },
    { name: 'an address outside the list', cidrs: ['10.233.0.0/16'], address: '10.234.1.2', allowed: false },
    { name: 'a single-address entry', cidrs: ['10.233.1.2'], address: '10.233.1.2', allowed: true },
    { name: 'an IPv6 pod address', cidrs: ['fd00::/8'], address: 'fd00::5', allowed: true },
    { name: 'an empty list refuses everything', cidrs: [], address: '10.0.0.1', allowed: false },
    { name: 'loopback under 0.0.0.0/0', cidrs: broad, address: '127.0.0.1', allowed: false },
    { name: 'loopback with an explicit 127.0.0.0/8', cidrs: ['127.0.0.0/8'], address: '127.0.0.9', allowed: true },
    { name: 'loopback outside an explicit 127.0.0.0/24', cidrs: ['127.0.0.0/24'], address: '127.0.1.1', allowed: false },
    { name: 'IPv6 loopback under ::/0', cidrs: broad, address: '::1', allowed: false },
    { name: 'IPv6 loopback allowed explicitly', cidrs: ['::1/128'], address: '::1', allowed: true },
    { name: 'IPv4 link-local under 0.0.0.0/0', cidrs: broad, address: '169.254.169.254', allowed: false },
    { name: 'IPv6 link-local under ::/0', cidrs: broad, address: 'fe80::1', allowed: false },
    { name: 'multicast under 0.0.0.0/0', cidrs: broad, address: '224.0.0.1', allowed: false },
    { name: 'IPv6 multicast under ::/0', cidrs: broad, address: 'ff02::1', allowed: false },
    { name: 'unspecified IPv4', cidrs: broad, address: '0.0.0.0', allowed: false },
    { name: 'unspecified IPv6', cidrs: broad, address: '::', allowed: false },
    { name: 'broadcast', cidrs: broad, address: '255.255.255.255', allowed: false },
    { name: 'IPv4-mapped loopback under ::/0', cidrs: broad, address: '::ffff:127.0.0.1', allowed: false },
    { name: 'IPv4 under an IPv6-only ::/0', cidrs: ['::/0'], address: '10.1.2.3', allowed: false },
    { name: 'IPv6 under an IPv4-only 0.0.0.0/0', cidrs: ['0.0.0.0/0'], address: 'fd00::1', allowed: false },
    { name: 'an ordinary address under 0.0.0.0/0', cidrs: broad, address: '10.1.2.3', allowed: true },
    { name: 'not an address', cidrs: broad, address: 'example.com', allowed: false },
  ])('$name: allowed=$allowed', ({ cidrs, address, allowed }) => {
    expect(parseAllowList(cidrs).check(address).allowed).toBe(allowed);
  });

  it('names the special range and how to allow it in the refusal reason', () => {
    expect(parseAllowList(['0.0.0.0/0']).check('127.0.0.1')).toEqual({
      allowed: false,
      reason: 'loopback address; allow it with an allowCidrs entry inside 127.0.0.0/8 or ::1/128',
    });
  });
});
