import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressProblem, formatAddressList, parseAddressList } from '../../src/contract/addresses.js';

describe('parseAddressList', () => {
  it.each([
    { name: 'an absent annotation is an empty list', value: undefined, addresses: [], invalid: [] },
    { name: 'an empty annotation is an empty list', value: '', addresses: [], invalid: [] },
    { name: 'a single address', value: '10.0.0.1', addresses: ['10.0.0.1'], invalid: [] },
    { name: 'keeps first-seen order', value: '10.0.0.2,10.0.0.1', addresses: ['10.0.0.2', '10.0.0.1'], invalid: [] },
    { name: 'drops duplicates', value: '10.0.0.1,10.0.0.2,10.0.0.1', addresses: ['10.0.0.1', '10.0.0.2'], invalid: [] },
    { name: 'an empty item is invalid', value: '10.0.0.1,,10.0.0.2', addresses: ['10.0.0.1', '10.0.0.2'], invalid: [''] },
    { name: 'a trailing comma is an empty item', value: '10.0.0.1,', addresses: ['10.0.0.1'], invalid: [''] },
    { name: 'a spaced item is invalid, not trimmed', value: '10.0.0.1, 10.0.0.2', addresses: ['10.0.0.1'], invalid: [' 10.0.0.2'] },
    { name: 'a non-IP is invalid', value: 'foo,10.0.0.1', addresses: ['10.0.0.1'], invalid: ['foo'] },
    { name: 'an out-of-range octet is invalid', value: '10.0.0.256', addresses: [], invalid: ['10.0.0.256'] },
    { name: 'a canonical IPv6 address is valid', value: 'fd00::1', addresses: ['fd00::1'], invalid: [] },
    { name: 'a non-canonical IPv6 spelling is invalid', value: 'FD00:0::1', addresses: [], invalid: ['FD00:0::1'] },
    { name: 'each bad item is listed once', value: 'foo,foo,,', addresses: [], invalid: ['foo', ''] },
  ])('$name', ({ value, addresses, invalid }) => {
    expect(parseAddressList(value)).toEqual({ addresses, invalid });
  });
});

describe('addressProblem', () => {
  it.each([
    { name: 'none for a canonical IPv4 address', item: '10.0.0.1', problem: undefined },
    { name: 'an empty item', item: '', problem: 'empty item' },
    { name: 'whitespace, since Kosmos does not trim', item: ' 10.0.0.1', problem: 'surrounding whitespace; Kosmos does not trim' },
    {
      name: 'the canonical form of a non-canonical IPv6 address',
      item: 'fd00:0:0::1',
      problem: 'not in canonical form (fd00::1); Kosmos matches exact strings',
    },
    { name: 'not an IP address', item: '10.0.0.1/32', problem: 'not an IP address' },
  ])('$name', ({ item, problem }) => {
    expect(addressProblem(item)).toBe(problem);
  });
});

describe('formatAddressList', () => {
  it.each([
    { name: 'is empty for no address', addresses: [], value: '' },
    { name: 'joins with commas and no spaces', addresses: ['10.0.0.1', '10.0.0.2'], value: '10.0.0.1,10.0.0.2' },
    { name: 'sorts by plain string order', addresses: ['10.0.0.10', '10.0.0.9', 'fd00::1'], value: '10.0.0.10,10.0.0.9,fd00::1' },
    { name: 'drops duplicates', addresses: ['10.0.0.2', '10.0.0.1', '10.0.0.2'], value: '10.0.0.1,10.0.0.2' },
  ])('$name', ({ addresses, value }) => {
    expect(formatAddressList(addresses)).toBe(value);
  });

  it('accepts any iterable, such as a Set', () => {
    expect(formatAddressList(new Set(['10.0.0.2', '10.0.0.1']))).toBe('10.0.0.1,10.0.0.2');
  });

  it('round-trips through parseAddressList for any set of valid addresses', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6().map((text) => new URL(`http://[${text}]`).hostname.slice(1, -1)));
    fc.assert(
      fc.property(fc.array(address), (addresses) => {
        const valid = addresses.filter((a) => addressProblem(a) === undefined);
        const value = formatAddressList(valid);
        expect(parseAddressList(value).addresses).toEqual([...new Set(valid)].sort());
        expect(formatAddressList(parseAddressList(value).addresses)).toBe(value);
      }),
    );
  });
});
