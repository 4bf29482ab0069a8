import { describe, expect, it } from 'vitest';
import { buildNodeView, sameView, type TargetState } from '../../src/report/view.js';
import { makeReport } from './fixtures.js';

const state = (address: string, value: TargetState['state'], owners = ['ns/svc']): TargetState => ({ address, owners, state: value });

describe('buildNodeView', () => {
  it('lists unreachable addresses per ServiceImport, sorted, and only ServiceImports with some', () => {
    const view = buildNodeView({
      suspectShare: 1,
      states: [
        state('10.0.0.2', 'unreachable', ['ns/b', 'ns/a']),
        state('10.0.0.1', 'unreachable', ['ns/b']),
        state('10.0.0.3', 'reachable', ['ns/c']),
      ],
    });
    expect(view.serviceImports).toEqual([
      { namespace: 'ns', name: 'a', unreachable: ['10.0.0.2'] },
      { namespace: 'ns', name: 'b', unreachable: ['10.0.0.1', '10.0.0.2'] },
    ]);
  });

  it('sorts ServiceImports by namespace, then name', () => {
    const view = buildNodeView({ suspectShare: 1, states: [state('10.0.0.1', 'unreachable', ['a/x', 'a-b/x'])] });
    expect(view.serviceImports.map((s) => s.namespace)).toEqual(['a', 'a-b']);
  });

  it('counts every target as probed, judged ones, and distinct unreachable addresses', () => {
    const states = [state('10.0.0.1', 'unreachable'), state('10.0.0.2', 'unknown'), state('10.0.0.3', 'reachable')];
    const view = buildNodeView({ suspectShare: 1, states });
    expect(view).toMatchObject({ targetsProbed: 3, targetsJudged: 2, unreachableCount: 1 });
  });

  it('lists targets without a verdict as unknown, so that they carry no vote', () => {
    const view = buildNodeView({
      suspectShare: 1,
      states: [state('10.0.0.2', 'unknown', ['ns/a']), state('10.0.0.1', 'unknown', ['ns/a']), state('10.0.0.3', 'unreachable', ['ns/b']), state('10.0.0.4', 'reachable', ['ns/c'])],
    });
    expect(view.serviceImports).toEqual([
      { namespace: 'ns', name: 'a', unreachable: [], unknown: ['10.0.0.1', '10.0.0.2'] },
      { namespace: 'ns', name: 'b', unreachable: ['10.0.0.3'] },
    ]);
  });

  it.each([
    { name: 'not suspect at or below the share', unreachable: 2, reachable: 2, unknown: 0, suspect: false },
    { name: 'suspect above the share', unreachable: 3, reachable: 1, unknown: 0, suspect: true },
    { name: 'suspect when everything known is unreachable', unreachable: 2, reachable: 0, unknown: 5, suspect: true },
    { name: 'not suspect with fewer known targets than the minimum', unreachable: 1, reachable: 0, unknown: 5, suspect: false },
    { name: 'not suspect with nothing known yet', unreachable: 0, reachable: 0, unknown: 3, suspect: false },
  ])('is $name', ({ unreachable, reachable, unknown, suspect }) => {
    const states = [
      ...Array.from({ length: unreachable }, (_, i) => state(`10.0.1.${i}`, 'unreachable')),
      ...Array.from({ length: reachable }, (_, i) => state(`10.0.2.${i}`, 'reachable')),
      ...Array.from({ length: unknown }, (_, i) => state(`10.0.3.${i}`, 'unknown')),
    ];
    const view = buildNodeView({ states, suspectShare: 0.5 });
    expect(view.suspect).toBe(suspect);
    expect(view.suspectReason !== undefined).toBe(suspect);
  });

  it('still lists what a suspect node sees', () => {
    const view = buildNodeView({ suspectShare: 0.5, states: [state('10.0.0.1', 'unreachable'), state('10.0.0.2', 'unreachable')] });
    expect(view).toMatchObject({ suspect: true, unreachableCount: 2 });
    expect(view.serviceImports[0]!.unreachable).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(view.suspectReason).toMatch(/^2 of 2 probed targets unreachable, more than 50%/);
  });

  it('honours minTargetsForSuspect', () => {
    const states = [state('10.0.0.1', 'unreachable'), state('10.0.0.2', 'unreachable')];
    expect(buildNodeView({ states, suspectShare: 0.5, minTargetsForSuspect: 3 }).suspect).toBe(false);
  });

  it('never suspects with suspectShare 1', () => {
    expect(buildNodeView({ suspectShare: 1, states: [state('10.0.0.1', 'unreachable'), state('10.0.0.2', 'unreachable')] }).suspect).toBe(false);
  });

  it.each([
    { name: 'suspectShare above 1', input: { suspectShare: 1.5 }, message: /^suspectShare: / },
    { name: 'suspectShare NaN', input: { suspectShare: Number.NaN }, message: /^suspectShare: / },
    { name: 'minTargetsForSuspect 0', input: { suspectShare: 0.5, minTargetsForSuspect: 0 }, message: /^minTargetsForSuspect: / },
  ])('rejects $name with a TypeError naming the option', ({ input, message }) => {
    expect(() => buildNodeView({ states: [], ...input })).toThrow(message);
  });
});

describe('sameView', () => {
  it.each([
    { name: 'the same view', a: makeReport('n1', ['10.0.0.1']), b: makeReport('n1', ['10.0.0.1']), same: true },
    { name: 'only a newer heartbeat', a: makeReport('n1', []), b: makeReport('n1', [], { heartbeatTime: '2030-01-01T00:00:00Z' }), same: true },
    { name: 'an undefined field against an absent one', a: makeReport('n1', [], { suspectReason: undefined }), b: makeReport('n1', []), same: true },
    { name: 'another unreachable address', a: makeReport('n1', ['10.0.0.1']), b: makeReport('n1', ['10.0.0.2']), same: false },
    { name: 'a suspect flag', a: makeReport('n1', []), b: makeReport('n1', [], { suspect: true }), same: false },
    { name: 'another config version', a: makeReport('n1', []), b: makeReport('n1', [], { configVersion: '42' }), same: false },
  ])('is $same for $name', ({ a, b, same }) => {
    expect(sameView(a, b)).toBe(same);
  });

  it('compares views built from the same states as equal', () => {
    const states = [state('10.0.0.1', 'unreachable'), state('10.0.0.2', 'reachable')];
    expect(sameView(buildNodeView({ states, suspectShare: 0.5 }), buildNodeView({ states: [...states].reverse(), suspectShare: 0.5 }))).toBe(true);
  });
});
