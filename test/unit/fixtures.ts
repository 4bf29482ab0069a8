// Shared fixtures of the unit tests: typed ServiceImports, reports, and fast-check arbitraries.
// EndpointSlices come from the e2e fixtures so that both suites build the same objects.
import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import fc from 'fast-check';
import { makeServiceImport, type ServiceImportFixture } from '../harness/fixtures.js';
export { kosmosPrune } from '../harness/fixtures.js';
import type { ServiceImport } from '../../src/contract/kosmos.js';
import type { ProbeReportSpec } from '../../src/contract/probe-report.js';

export { makeEndpointSlice } from '../harness/fixtures.js';

/** A ServiceImport as Kosmos writes it, typed as the target builder reads it. */
export function serviceImport(f: ServiceImportFixture): ServiceImport {
  return makeServiceImport(f) as unknown as ServiceImport;
}

export const NOW = new Date('2025-01-01T00:00:00Z');

/** A live, non-suspect report of `nodeName` seeing `unreachable` down (all under one ServiceImport). */
export function makeReport(nodeName: string, unreachable: string[], overrides: Partial<ProbeReportSpec> = {}): ProbeReportSpec {
  return {
    nodeName,
    agentVersion: '0.1.0',
    heartbeatTime: NOW.toISOString(),
    heartbeatPeriodSeconds: 30,
    configVersion: '1',
    probeReplicas: 0,
    targetsProbed: 10,
    unreachableCount: unreachable.length,
    suspect: false,
    serviceImports: unreachable.length > 0 ? [{ namespace: 'ns', name: 'svc', unreachable }] : [],
    ...overrides,
  };
}

/** A deep copy through JSON, as the apiserver returns what we wrote. */
export function roundTrip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** A small address pool, so that random endpoints and disconnected sets overlap. */
export const ADDRESS_POOL = Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1}`);

const endpointArb: fc.Arbitrary<V1Endpoint> = fc.record(
  {
    addresses: fc.uniqueArray(fc.constantFrom(...ADDRESS_POOL), { minLength: 1, maxLength: 3 }),
    conditions: fc.record({ ready: fc.boolean(), serving: fc.boolean(), terminating: fc.boolean() }),
    nodeName: fc.constantFrom('member-node-0', 'member-node-1'),
    zone: fc.constantFrom('zone-a', 'zone-b'),
    targetRef: fc.record({ kind: fc.constant('Pod'), name: fc.string({ minLength: 1 }), namespace: fc.constant('ns') }),
    hints: fc.record({ forZones: fc.array(fc.record({ name: fc.constantFrom('zone-a', 'zone-b') }), { minLength: 1 }) }),
  },
  { requiredKeys: ['addresses'] },
);

/** A synced Kosmos slice with random endpoints (addresses may repeat across endpoints). */
export const sliceArb: fc.Arbitrary<V1EndpointSlice> = fc
  .array(endpointArb, { maxLength: 8 })
  .map((endpoints) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'svc-abc',
      namespace: 'ns',
      labels: { 'kubernetes.io/service-name': 'svc' },
      annotations: { 'kosmos.io/service-import': 'ture', 'example.com/other': 'kept' },
    },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
  }));

export const disconnectedArb: fc.Arbitrary<Set<string>> = fc
  .subarray(ADDRESS_POOL)
  .map((addresses) => new Set(addresses));
