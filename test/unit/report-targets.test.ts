import type { V1EndpointSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredSlice } from '../../src/report/prune.js';
import {
  addressesByServiceImport,
  buildTargets,
  indexSyncedSlices,
  isSyncedSlice,
  namespaceAllowed,
  serviceImportNameOf,
  syncedSliceChangeFilter,
  type NamespaceFilter,
} from '../../src/report/targets.js';
import { makeEndpointSlice, serviceImport } from './fixtures.js';

const ALL: NamespaceFilter = { include: [], exclude: [] };
const slice = (overrides: Partial<Parameters<typeof makeEndpointSlice>[0]> = {}): V1EndpointSlice =>
  makeEndpointSlice({ name: 'svc-1', namespace: 'ns', service: 'svc', addresses: ['10.0.0.1'], ...overrides });

describe('serviceImportNameOf and isSyncedSlice', () => {
  const withoutAnnotation = slice();
  withoutAnnotation.metadata!.annotations = {};
  const otherValue = slice();
  otherValue.metadata!.annotations = { 'kosmos.io/service-import': 'true' };

  it.each([
    { name: 'a Kosmos slice (annotation and service-name label)', input: slice(), expected: 'svc' },
    { name: 'a Kosmos slice whatever the annotation value', input: otherValue, expected: 'svc' },
    { name: 'a KEP-1645 slice (multicluster label)', input: slice({ style: 'kep1645' }), expected: 'svc' },
    { name: 'a plain Service slice', input: slice({ style: 'plain' }), expected: undefined },
    { name: 'a service-name label without the Kosmos annotation', input: withoutAnnotation, expected: undefined },
  ])('$name', ({ input, expected }) => {
    expect(serviceImportNameOf(input)).toBe(expected);
    expect(isSyncedSlice(input)).toBe(expected !== undefined);
  });

  it('prefers the KEP-1645 label on a slice that has both', () => {
    const both = slice();
    both.metadata!.labels!['multicluster.kubernetes.io/service-name'] = 'imported';
    expect(serviceImportNameOf(both)).toBe('imported');
  });
});

describe('namespaceAllowed', () => {
  it.each([
    { name: 'allows everything with empty lists', filter: ALL, expected: true },
    { name: 'allows an included namespace', filter: { include: ['ns'], exclude: [] }, expected: true },
    { name: 'refuses a namespace not included', filter: { include: ['other'], exclude: [] }, expected: false },
    { name: 'refuses an excluded namespace', filter: { include: [], exclude: ['ns'] }, expected: false },
    { name: 'lets exclude win over include', filter: { include: ['ns'], exclude: ['ns'] }, expected: false },
  ])('$name', ({ filter, expected }) => {
    expect(namespaceAllowed('ns', filter)).toBe(expected);
  });
});

describe('indexSyncedSlices', () => {
  it('groups synced slices by namespace/name and skips the others', () => {
    const a = slice({ name: 'a' });
    const b = slice({ name: 'b', style: 'kep1645' });
    const c = slice({ name: 'c', namespace: 'other' });
    const index = indexSyncedSlices([a, b, c, slice({ name: 'd', style: 'plain' })]);
    expect([...index]).toEqual([['ns/svc', [a, b]], ['other/svc', [c]]]);
  });
});

describe('buildTargets', () => {
  const build = (slices: V1EndpointSlice[], annotation?: string[], filter = ALL) =>
    buildTargets({
      serviceImports: [serviceImport({ name: 'svc', namespace: 'ns', addresses: annotation, ports: [8080] })],
      slices,
      namespaceFilter: filter,
    });

  it('takes slice addresses with the slice TCP ports', () => {
    expect(build([slice({ addresses: ['10.0.0.2', '10.0.0.1'], port: 80 })]).targets).toEqual([
      { address: '10.0.0.1', ports: [80], owners: ['ns/svc'] },
      { address: '10.0.0.2', ports: [80], owners: ['ns/svc'] },
    ]);
  });

  it('takes annotation addresses with the ServiceImport TCP ports', () => {
    expect(build([], ['10.0.0.3']).targets).toEqual([{ address: '10.0.0.3', ports: [8080], owners: ['ns/svc'] }]);
  });

  it('merges the ports of an address found in a slice and in the annotation', () => {
    expect(build([slice({ port: 80 })], ['10.0.0.1']).targets).toEqual([{ address: '10.0.0.1', ports: [80, 8080], owners: ['ns/svc'] }]);
  });

  it('uses the ServiceImport ports for a slice without TCP ports', () => {
    const udp = slice();
    udp.ports = [{ port: 53, protocol: 'UDP' }];
    expect(build([udp]).targets[0]!.ports).toEqual([8080]);
  });

  it('keeps probing endpoints our controller pruned', () => {
    const pruned = desiredSlice(slice({ addresses: ['10.0.0.1', '10.0.0.2'] }), new Set(['10.0.0.2'])).slice;
    expect(build([pruned]).targets.map((t) => t.address)).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('gives one target per address across ServiceImports, with sorted owners', () => {
    const { targets } = buildTargets({
      serviceImports: [
        serviceImport({ name: 'b', namespace: 'ns', addresses: ['10.0.0.1'], ports: [81] }),
        serviceImport({ name: 'a', namespace: 'ns', addresses: ['10.0.0.1'], ports: [80] }),
      ],
      slices: [],
      namespaceFilter: ALL,
    });
    expect(targets).toEqual([{ address: '10.0.0.1', ports: [80, 81], owners: ['ns/a', 'ns/b'] }]);
  });

  it('ignores slices of another namespace with the same service name', () => {
    expect(build([slice({ namespace: 'other' })]).targets).toEqual([]);
  });

  it('applies the namespace filter', () => {
    expect(build([slice()], ['10.0.0.3'], { include: [], exclude: ['ns'] }).targets).toEqual([]);
  });

  it.each([
    {
      name: 'an IPv6 address in an IPv4 slice',
      input: slice({ addresses: ['fd00::1'] }),
      value: 'fd00::1',
      reason: 'not an IPv4 address',
    },
    {
      name: 'an IPv4 address in an IPv6 slice',
      input: slice({ addresses: ['10.0.0.1'], addressType: 'IPv6' }),
      value: '10.0.0.1',
      reason: 'not an IPv6 address',
    },
    {
      name: 'a non-canonical IPv6 address',
      input: slice({ addresses: ['FD00::1'], addressType: 'IPv6' }),
      value: 'FD00::1',
      reason: 'not in canonical form (fd00::1); Kosmos matches exact strings',
    },
    {
      name: 'an FQDN slice',
      input: slice({ addresses: ['db.example.com'], addressType: 'FQDN' }),
      value: 'FQDN',
      reason: 'only IPv4 and IPv6 slices can be probed',
    },
  ])('refuses $name, naming the slice', ({ input, value, reason }) => {
    const { targets, invalid } = build([input]);
    expect(targets).toEqual([]);
    expect(invalid).toEqual([{ object: 'EndpointSlice ns/svc-1', value, reason }]);
  });

  it('refuses bad annotation items once each, naming the ServiceImport, and keeps the good ones', () => {
    const { targets, invalid } = buildTargets({
      serviceImports: [{ metadata: { namespace: 'ns', name: 'svc', annotations: { 'kosmos.io/address': 'foo,10.0.0.1,foo, 10.0.0.2,' } } }],
      slices: [],
      namespaceFilter: ALL,
    });
    expect(targets.map((t) => t.address)).toEqual(['10.0.0.1']);
    expect(invalid.map(({ object, value }) => [object, value])).toEqual([
      ['ServiceImport ns/svc', 'foo'],
      ['ServiceImport ns/svc', ' 10.0.0.2'],
      ['ServiceImport ns/svc', ''],
    ]);
  });

  it('builds 100k targets from 5,000 ServiceImports × 20 endpoints in linear time', () => {
    const serviceImports = [];
    const slices = [];
    for (let i = 0; i < 5000; i++) {
      const addresses = Array.from({ length: 20 }, (_, j) => `10.${i >> 8}.${i & 255}.${j + 1}`);
      serviceImports.push(serviceImport({ name: `svc-${i}`, namespace: `ns-${i % 50}`, addresses }));
      slices.push(makeEndpointSlice({ name: `svc-${i}-x`, namespace: `ns-${i % 50}`, service: `svc-${i}`, addresses }));
    }
    const started = performance.now();
    const { targets, invalid } = buildTargets({ serviceImports, slices, namespaceFilter: ALL });
    const elapsedMs = performance.now() - started;
    expect(targets).toHaveLength(100_000);
    expect(invalid).toEqual([]);
    // Typically 250-400 ms on 2 slow cores; the bound is loose so a busy CI passes, while quadratic work would take minutes.
    expect(elapsedMs).toBeLessThan(3000);
  });
});

describe('addressesByServiceImport', () => {
  it('lists the addresses of each owner', () => {
    const map = addressesByServiceImport([
      { address: '10.0.0.1', ports: [], owners: ['ns/a', 'ns/b'] },
      { address: '10.0.0.2', ports: [], owners: ['ns/a'] },
    ]);
    expect([...map]).toEqual([['ns/a', ['10.0.0.1', '10.0.0.2']], ['ns/b', ['10.0.0.1']]]);
  });
});

describe('syncedSliceChangeFilter', () => {
  const synced = makeEndpointSlice({ name: 'web-1', namespace: 'ns', service: 'web', addresses: ['10.0.0.1'] });
  const unrelated = makeEndpointSlice({ name: 'other-1', namespace: 'ns', service: 'other', addresses: ['10.0.0.2'], style: 'plain' });

  it('passes changes of synced slices and re-lists', () => {
    const relevant = syncedSliceChangeFilter();
    expect(relevant(synced)).toBe(true);
    expect(relevant(undefined)).toBe(true);
  });

  it('drops changes of slices that never were synced', () => {
    expect(syncedSliceChangeFilter()(unrelated)).toBe(false);
  });

  it('passes the change that makes a synced slice unrelated, once', () => {
    const relevant = syncedSliceChangeFilter();
    relevant(synced);
    const stripped: V1EndpointSlice = { ...synced, metadata: { ...synced.metadata, labels: {}, annotations: {} } };
    expect(relevant(stripped)).toBe(true);
    expect(relevant(stripped)).toBe(false);
  });
});
