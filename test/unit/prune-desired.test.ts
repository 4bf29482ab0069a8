import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredSlice, prunedAddresses } from '../../src/report/prune.js';
import { ANNOTATION_PRUNED } from '../../src/contract/kosmos.js';
import { kosmosPrune, makeEndpointSlice, roundTrip } from './fixtures.js';

const original = (): V1EndpointSlice => {
  const slice = makeEndpointSlice({ name: 'svc-1', namespace: 'ns', service: 'svc', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] });
  slice.metadata!.annotations!['example.com/owner'] = 'someone';
  // A dual-address endpoint, to exercise partial pruning.
  slice.endpoints!.push({ addresses: ['10.0.0.4', '10.0.0.5'], conditions: { ready: true }, nodeName: 'member-node-3' });
  return slice;
};

/** Applies `desiredSlice` for each set in turn, reading back each written slice as the apiserver would. */
function applySteps(start: V1EndpointSlice, steps: ReadonlyArray<ReadonlySet<string>>): V1EndpointSlice {
  return steps.reduce((slice, step) => roundTrip(desiredSlice(slice, step).slice), start);
}

const addressesOf = (slice: V1EndpointSlice): string[][] => slice.endpoints!.map((e: V1Endpoint) => e.addresses);

describe('desiredSlice', () => {
  it.each([
    {
      name: 'drops an endpoint whose only address is disconnected',
      disconnected: ['10.0.0.2'],
      expected: [['10.0.0.1'], ['10.0.0.3'], ['10.0.0.4', '10.0.0.5']],
    },
    {
      name: 'trims one address of a dual-address endpoint',
      disconnected: ['10.0.0.4'],
      expected: [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3'], ['10.0.0.5']],
    },
    {
      name: 'drops a dual-address endpoint when both addresses are disconnected',
      disconnected: ['10.0.0.4', '10.0.0.5'],
      expected: [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3']],
    },
    {
      name: 'empties the slice when everything is disconnected',
      disconnected: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'],
      expected: [],
    },
    {
      name: 'ignores addresses the slice does not have',
      disconnected: ['10.9.9.9'],
      expected: [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3'], ['10.0.0.4', '10.0.0.5']],
    },
  ])('$name', ({ disconnected, expected }) => {
    expect(addressesOf(desiredSlice(original(), new Set(disconnected)).slice)).toEqual(expected);
  });

  it('reports removed addresses, sorted', () => {
    const result = desiredSlice(original(), new Set(['10.0.0.3', '10.0.0.1']));
    expect(result).toMatchObject({ changed: true, removed: ['10.0.0.1', '10.0.0.3'], restored: [] });
  });

  it('reports restored addresses when the set shrinks', () => {
    const pruned = applySteps(original(), [new Set(['10.0.0.1', '10.0.0.4'])]);
    expect(desiredSlice(pruned, new Set(['10.0.0.1']))).toMatchObject({ changed: true, removed: [], restored: ['10.0.0.4'] });
  });

  it('is unchanged, returning the same object, when nothing is disconnected and nothing was pruned', () => {
    const slice = original();
    expect(desiredSlice(slice, new Set())).toEqual({ slice, changed: false, removed: [], restored: [] });
  });

  it('is unchanged when applied twice with the same set', () => {
    const pruned = applySteps(original(), [new Set(['10.0.0.2'])]);
    const again = desiredSlice(pruned, new Set(['10.0.0.2']));
    expect(again.changed).toBe(false);
    expect(again.slice).toBe(pruned);
  });

  it('restores the original byte for byte, at the original positions', () => {
    const restored = applySteps(original(), [new Set(['10.0.0.2', '10.0.0.4']), new Set(['10.0.0.5']), new Set()]);
    expect(JSON.stringify(restored)).toBe(JSON.stringify(original()));
  });

  it('removes its annotation once nothing is pruned', () => {
    const restored = applySteps(original(), [new Set(['10.0.0.2']), new Set()]);
    expect(restored.metadata!.annotations).not.toHaveProperty([ANNOTATION_PRUNED]);
  });

  it('keeps other annotations, labels, ports and metadata as they are', () => {
    const slice = original();
    const { metadata, ports, addressType } = desiredSlice(slice, new Set(['10.0.0.1'])).slice;
    const { [ANNOTATION_PRUNED]: record, ...others } = metadata!.annotations!;
    expect(record).toBeDefined();
    expect(others).toEqual(slice.metadata!.annotations);
    expect({ ...metadata, annotations: others }).toEqual(slice.metadata);
    expect({ ports, addressType }).toEqual({ ports: slice.ports, addressType: slice.addressType });
  });

  it('does not modify its input', () => {
    const slice = original();
    desiredSlice(slice, new Set(['10.0.0.1', '10.0.0.4']));
    expect(slice).toEqual(original());
  });

  it('treats a read-back with another key order as unchanged', () => {
    const pruned = applySteps(original(), [new Set(['10.0.0.4'])]);
    // A client may rebuild objects with another key order; the record still fits.
    const reordered = { ...pruned, endpoints: pruned.endpoints!.map((e) => Object.fromEntries(Object.entries(e).reverse()) as V1Endpoint) };
    expect(desiredSlice(reordered, new Set(['10.0.0.4']))).toMatchObject({ changed: false });
    expect(desiredSlice(reordered, new Set()).slice.endpoints).toEqual(original().endpoints);
  });

  it('matches Kosmos after a Kosmos re-sync wiped its record', () => {
    const disconnected = new Set(['10.0.0.2', '10.0.0.4']);
    const resynced: V1EndpointSlice = { ...original(), endpoints: kosmosPrune(original().endpoints!, disconnected) };
    expect(desiredSlice(resynced, disconnected)).toMatchObject({ changed: false });
  });
});

describe('desiredSlice with a record that does not fit', () => {
  const withRecord = (slice: V1EndpointSlice, value: string): V1EndpointSlice => ({
    ...slice,
    metadata: { ...slice.metadata, annotations: { ...slice.metadata!.annotations, [ANNOTATION_PRUNED]: value } },
  });
  const validRecord = (): string => desiredSlice(original(), new Set(['10.0.0.1'])).slice.metadata!.annotations![ANNOTATION_PRUNED]!;

  it.each([
    { name: 'malformed JSON', value: () => '{not json', problem: /not valid JSON/ },
    { name: 'an unknown version', value: () => JSON.stringify({ ...JSON.parse(validRecord()), v: 2 }), problem: /expected format/ },
    {
      name: 'an entry without an endpoint',
      value: () => JSON.stringify({ ...JSON.parse(validRecord()), pruned: [{ index: 0, partial: false }] }),
      problem: /expected format/,
    },
    { name: 'a fingerprint of other endpoints', value: () => validRecord(), problem: /changed since we pruned/ },
  ])('ignores $name and takes the current endpoints as the original', ({ value, problem }) => {
    const result = desiredSlice(withRecord(original(), value()), new Set(['10.0.0.3']));
    expect(result.recordProblem).toMatch(problem);
    expect(addressesOf(result.slice)).toEqual([['10.0.0.1'], ['10.0.0.2'], ['10.0.0.4', '10.0.0.5']]);
  });

  it('ignores indices out of range', () => {
    const pruned = desiredSlice(original(), new Set(['10.0.0.1'])).slice;
    const record = JSON.parse(pruned.metadata!.annotations![ANNOTATION_PRUNED]!) as { pruned: Array<{ index: number }> };
    record.pruned[0]!.index = 99;
    const result = desiredSlice(withRecord(pruned, JSON.stringify(record)), new Set());
    expect(result.recordProblem).toMatch(/out of range/);
  });

  it('drops the unusable record when nothing is pruned', () => {
    const result = desiredSlice(withRecord(original(), '{not json'), new Set());
    expect(result.changed).toBe(true);
    expect(result.slice.metadata!.annotations).not.toHaveProperty([ANNOTATION_PRUNED]);
    expect(result.slice.endpoints).toEqual(original().endpoints);
  });
});

describe('prunedAddresses', () => {
  it.each([
    { name: 'is empty without a record', steps: [], expected: [] },
    { name: 'lists a dropped endpoint', steps: [['10.0.0.2']], expected: ['10.0.0.2'] },
    { name: 'lists the whole original of a trimmed endpoint', steps: [['10.0.0.4']], expected: ['10.0.0.4', '10.0.0.5'] },
    { name: 'is empty again after a restore', steps: [['10.0.0.2'], []], expected: [] },
  ])('$name', ({ steps, expected }) => {
    const slice = applySteps(original(), steps.map((step) => new Set(step)));
    expect(prunedAddresses(slice)).toEqual(expected);
  });

  it('is empty for an unusable record', () => {
    const slice = original();
    slice.metadata!.annotations![ANNOTATION_PRUNED] = '[]';
    expect(prunedAddresses(slice)).toEqual([]);
  });
});
