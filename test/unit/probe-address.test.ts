import { describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/probe/address.js';
import { canonicalAddress } from '../../src/contract/addresses.js';

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
    { name: 'a dotted tail without ffff stays IPv4-compatible', input: '::1.2.3.4', expected: '::102:304' },
    { name: 'an upper-case IPv4-mapped address', input: '::FFFF:127.0.0.1', expected: '::ffff:127.0.0.1' },
    { name: 'IPv4-translated keeps hex groups', input: '::ffff:0:1.2.3.4', expected: '::ffff:0:102:304' },
    { name: 'IPv4 as one decimal number is refused', input: '2130706433', expected: undefined },
    { name: 'octal IPv4 is refused', input: '0177.0.0.1', expected: undefined },
    { name: 'hexadecimal IPv4 is refused', input: '0x7f.0.0.1', expected: undefined },
    { name: 'short IPv4 is refused', input: '127.1', expected: undefined },
    { name: 'a leading space is refused', input: ' 10.0.0.1', expected: undefined },
    { name: 'a trailing newline is refused', input: '10.0.0.1\n', expected: undefined },
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
    { name: 'a hexadecimal prefix', entry: '10.0.0.0/0x8' },
    { name: 'a prefix with a leading zero', entry: '10.0.0.0/08' },
    { name: 'a prefix in exponent notation', entry: '10.0.0.0/1e1' },
    { name: 'a space before the prefix', entry: '10.0.0.0/ 8' },
    { name: 'a space after the prefix', entry: '10.0.0.0/8 ' },
    { name: 'a signed prefix', entry: '10.0.0.0/+8' },
    { name: 'a negative prefix', entry: '10.0.0.0/-1' },
    { name: 'an IPv6 prefix with a leading zero', entry: 'fd00::/08' },
    { name: 'a decimal-number network', entry: '167772160/8' },
    { name: 'an octal network', entry: '012.0.0.0/8' },
    { name: 'a short network', entry: '10.0/16' },
    { name: 'a network with a zone id', entry: 'fe80::%eth0/64' },
    { name: 'a leading space', entry: ' 10.0.0.0/8' },
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
    { name: 'loopback under 127.0.0.0/7, which is wider than loopback', cidrs: ['127.0.0.0/7'], address: '127.0.0.1', allowed: false },
    { name: 'loopback under an entry with host bits inside 127.0.0.0/8', cidrs: ['127.1.2.3/8'], address: '127.0.0.1', allowed: true },
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

  const mapped = ['::ffff:0.0.0.0/96', '10.0.0.0/8'];
  // Every IPv4-in-IPv6 form with a loopback, a link-local (the metadata service) and an ordinary inner address.
  it.each([
    { name: 'IPv4-mapped loopback', cidrs: mapped, address: '::ffff:127.0.0.1', reason: 'IPv4-mapped address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-mapped metadata service', cidrs: mapped, address: '::ffff:169.254.169.254', reason: 'IPv4-mapped address of 169.254.169.254 (link-local)' },
    { name: 'IPv4-mapped pod address', cidrs: mapped, address: '::ffff:10.1.2.3', reason: undefined },
    { name: 'IPv4-mapped, upper case', cidrs: mapped, address: '::FFFF:127.0.0.1', reason: 'IPv4-mapped address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-mapped in hex groups', cidrs: mapped, address: '::ffff:7f00:1', reason: 'IPv4-mapped address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-mapped outside the IPv4 entries', cidrs: mapped, address: '::ffff:192.168.1.1', reason: 'IPv4-mapped address of 192.168.1.1, which is outside allowCidrs' },
    { name: 'IPv4-mapped loopback allowed as IPv4 too', cidrs: [...mapped, '127.0.0.0/8'], address: '::ffff:127.0.0.1', reason: undefined },
    { name: 'IPv4-mapped pod address without an IPv6 entry', cidrs: ['10.0.0.0/8'], address: '::ffff:10.1.2.3', reason: 'outside allowCidrs' },
    { name: 'IPv4-compatible loopback', cidrs: broad, address: '::7f00:1', reason: 'IPv4-compatible address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-compatible loopback, dotted', cidrs: broad, address: '::127.0.0.1', reason: 'IPv4-compatible address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-compatible metadata service', cidrs: broad, address: '::a9fe:a9fe', reason: 'IPv4-compatible address of 169.254.169.254 (link-local)' },
    { name: 'IPv4-compatible pod address', cidrs: broad, address: '::a01:203', reason: undefined },
    { name: 'IPv4-compatible unspecified', cidrs: broad, address: '::5', reason: 'IPv4-compatible address of 0.0.0.5 (unspecified)' },
    { name: 'IPv4-translated loopback', cidrs: broad, address: '::ffff:0:7f00:1', reason: 'IPv4-translated address of 127.0.0.1 (loopback)' },
    { name: 'IPv4-translated metadata service', cidrs: broad, address: '::ffff:0:a9fe:a9fe', reason: 'IPv4-translated address of 169.254.169.254 (link-local)' },
    { name: 'IPv4-translated pod address', cidrs: broad, address: '::ffff:0:a01:203', reason: undefined },
    { name: 'NAT64 loopback', cidrs: broad, address: '64:ff9b::7f00:1', reason: 'NAT64 address of 127.0.0.1 (loopback)' },
    { name: 'NAT64 loopback, dotted', cidrs: broad, address: '64:ff9b::127.0.0.1', reason: 'NAT64 address of 127.0.0.1 (loopback)' },
    { name: 'NAT64 metadata service', cidrs: broad, address: '64:ff9b::a9fe:a9fe', reason: 'NAT64 address of 169.254.169.254 (link-local)' },
    { name: 'NAT64 broadcast', cidrs: broad, address: '64:ff9b::ffff:ffff', reason: 'NAT64 address of 255.255.255.255 (broadcast)' },
    { name: 'NAT64 pod address', cidrs: broad, address: '64:ff9b::a01:203', reason: undefined },
    // 64:ff9b:1::/48 holds the IPv4 address in bits 48-63 and 72-87; bits 64-71 (the u-octet) are zero.
    { name: 'local-use NAT64 loopback', cidrs: broad, address: '64:ff9b:1:7f00:0:100::', reason: 'local-use NAT64 address of 127.0.0.1 (loopback)' },
    { name: 'local-use NAT64 metadata service', cidrs: broad, address: '64:ff9b:1:a9fe:a9:fe00::', reason: 'local-use NAT64 address of 169.254.169.254 (link-local)' },
    { name: 'local-use NAT64 pod address', cidrs: broad, address: '64:ff9b:1:a01:2:300::', reason: undefined },
    { name: '6to4 loopback', cidrs: broad, address: '2002:7f00:1::1', reason: '6to4 address of 127.0.0.1 (loopback)' },
    { name: '6to4 metadata service', cidrs: broad, address: '2002:a9fe:a9fe::1', reason: '6to4 address of 169.254.169.254 (link-local)' },
    { name: '6to4 multicast', cidrs: broad, address: '2002:e000:1::1', reason: '6to4 address of 224.0.0.1 (multicast)' },
    { name: '6to4 pod address', cidrs: broad, address: '2002:a01:203::1', reason: undefined },
    // Teredo: server in bits 32-63, the client's address XOR ffffffff in the last 32 bits.
    { name: 'Teredo with a loopback client', cidrs: broad, address: '2001:0:a00:2::80ff:fffe', reason: 'Teredo address with client 127.0.0.1 (loopback)' },
    { name: 'Teredo with a metadata-service client', cidrs: broad, address: '2001:0:a00:2::5601:5601', reason: 'Teredo address with client 169.254.169.254 (link-local)' },
    { name: 'Teredo with a loopback server', cidrs: broad, address: '2001:0:7f00:1::f5fe:fdfc', reason: 'Teredo address with server 127.0.0.1 (loopback)' },
    { name: 'Teredo with ordinary server and client', cidrs: broad, address: '2001:0:a00:2::f5fe:fdfc', reason: undefined },
    { name: 'Teredo with a client outside the IPv4 entries', cidrs: ['::/0', '10.0.0.2/32'], address: '2001:0:a00:2::f5fe:fdfc', reason: 'Teredo address with client 10.1.2.3, which is outside allowCidrs' },
    { name: 'IPv6 site-local', cidrs: broad, address: 'fec0::1', reason: 'site-local address' },
    { name: 'IPv6 discard-only', cidrs: broad, address: '100::1', reason: 'discard-only address' },
    { name: 'IPv6 unique local is a pod range', cidrs: broad, address: 'fd00::1', reason: undefined },
    { name: 'upper-case IPv6', cidrs: ['fc00::/7'], address: 'FD00::A', reason: undefined },
    { name: 'IPv6 link-local with a zone id', cidrs: ['fe80::/10'], address: 'fe80::1%eth0', reason: 'not an IP address' },
  ])('$name', ({ cidrs, address, reason }) => {
    expect(parseAllowList(cidrs).check(address)).toEqual(reason === undefined ? { allowed: true } : { allowed: false, reason });
  });

  // Loopback is allowed here: these are refused because nobody can tell which address they mean.
  it.each([
    { name: 'one decimal number', address: '2130706433' },
    { name: 'octal', address: '0177.0.0.1' },
    { name: 'hexadecimal', address: '0x7f.0.0.1' },
    { name: 'short form', address: '127.1' },
    { name: 'a leading zero', address: '127.0.0.01' },
    { name: 'a leading space', address: ' 127.0.0.1' },
    { name: 'a trailing newline', address: '127.0.0.1\n' },
    { name: 'a zone id', address: '::1%lo' },
  ])('refuses IPv4 spelled as $name', ({ address }) => {
    expect(parseAllowList(['127.0.0.0/8', '::1/128']).check(address)).toEqual({ allowed: false, reason: 'not an IP address' });
  });

  it('names what the address is, never a range to allow', () => {
    expect(parseAllowList(['0.0.0.0/0']).check('127.0.0.1')).toEqual({ allowed: false, reason: 'loopback address' });
    // The old advice, to allow ::ffff:0.0.0.0/96, would have reopened loopback.
    for (const address of ['127.0.0.1', '169.254.169.254', '::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', '64:ff9b::7f00:1']) {
      const decision = parseAllowList(broad).check(address);
      expect(decision.allowed).toBe(false);
      expect(decision.allowed ? '' : decision.reason).not.toMatch(/\/|allow it/);
    }
  });
});
