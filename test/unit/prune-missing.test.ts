import { describe, expect, it } from 'vitest';
import { missingFromSlices } from '../../src/report/prune.js';
import { makeEndpointSlice } from '../harness/fixtures.js';

const slice = (addresses: string[], addressType: 'IPv4' | 'IPv6' = 'IPv4') =>
  makeEndpointSlice({ name: 's', namespace: 'ns', service: 'web', addresses, addressType });

describe('missingFromSlices', () => {
  it.each([
    { name: 'nothing missing when every address is held', slices: [slice(['10.0.0.1', '10.0.0.2'])], addresses: ['10.0.0.1', '10.0.0.2'], disconnected: [], missing: [] },
    { name: 'an address neither held nor disconnected is missing', slices: [slice(['10.0.0.1'])], addresses: ['10.0.0.1', '10.0.0.2'], disconnected: [], missing: ['10.0.0.2'] },
    { name: 'a disconnected address is meant to be absent', slices: [slice(['10.0.0.1'])], addresses: ['10.0.0.1', '10.0.0.2'], disconnected: ['10.0.0.2'], missing: [] },
    { name: 'held by any of the slices counts', slices: [slice(['10.0.0.1']), slice(['10.0.0.2'])], addresses: ['10.0.0.1', '10.0.0.2'], disconnected: [], missing: [] },
    { name: 'a family no slice carries is left out (Kosmos keeps the leaf family)', slices: [slice(['10.0.0.1'])], addresses: ['10.0.0.1', 'fd00::1'], disconnected: [], missing: [] },
    { name: 'slice addresses are compared in canonical form', slices: [slice(['FD00:0::1'], 'IPv6')], addresses: ['fd00::1', 'fd00::2'], disconnected: [], missing: ['fd00::2'] },
    { name: 'no synced slices: nothing to compare with', slices: [], addresses: ['10.0.0.1'], disconnected: [], missing: [] },
  ])('$name', ({ slices, addresses, disconnected, missing }) => {
    expect([...missingFromSlices(slices, addresses, new Set(disconnected))].sort()).toEqual(missing);
  });
});
