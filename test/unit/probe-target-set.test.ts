import { describe, expect, it } from 'vitest';
import type { Target } from '../../src/contract/target.js';
import { parseAllowList } from '../../src/probe/address.js';
import { admitTargets, TargetSet } from '../../src/probe/target-set.js';
import type { TargetProbeState } from '../../src/probe/target-state.js';

const ALLOW = parseAllowList(['10.0.0.0/8', 'fd00::/8']);

function target(address: string, owners = ['ns/svc'], ports = [80]): Target {
  return { address, ports, owners };
}

/** A set whose hooks write what they are told into `events`. */
function setup() {
  const events: string[] = [];
  const set = new TargetSet(ALLOW, {
    refused: (address, reason) => events.push(`refused ${address} (${reason})`),
    added: (state) => events.push(`added ${state.target.address}`),
    removed: (state) => events.push(`removed ${state.target.address}${state.stopped ? ' stopped' : ''}`),
  });
  const states = (): Map<string, TargetProbeState> => new Map(Array.from(set, (state) => [state.target.address, state]));
  return { set, events, states };
}

describe('admitTargets', () => {
  it('canonicalises addresses and merges one address into one target with sorted unique ports and owners', () => {
    const { accepted, refused } = admitTargets(
      [target('FD00:0::1', ['ns/b'], [443, 80]), target('fd00::1', ['ns/a', 'ns/b'], [80]), target('10.0.0.1', ['ns/b'], [443])],
      ALLOW,
    );
    expect(refused).toEqual([]);
    expect([...accepted.values()]).toEqual([
      { address: 'fd00::1', owners: ['ns/a', 'ns/b'], ports: [80, 443] },
      { address: '10.0.0.1', owners: ['ns/b'], ports: [443] },
    ]);
  });

  it('gives targets with equal lists of ports or owners one shared, frozen array', () => {
    const { accepted } = admitTargets([target('10.0.0.1', ['ns/a'], [443, 80]), target('10.0.0.2', ['ns/a'], [443, 80])], ALLOW);
    const [a, b] = [...accepted.values()];
    expect(b!.ports).toBe(a!.ports);
    expect(b!.owners).toBe(a!.owners);
    expect(Object.isFrozen(a!.ports)).toBe(true);
  });

  it('refuses what the allow-list does not permit and what is no IP address, as given, with why', () => {
    const refusedTarget = target('192.0.2.1');
    const { accepted, refused } = admitTargets([refusedTarget, target('127.0.0.1'), target('not-an-ip'), target('10.0.0.1')], ALLOW);
    expect([...accepted.keys()]).toEqual(['10.0.0.1']);
    expect(refused).toEqual([
      { target: refusedTarget, reason: 'outside allowCidrs' },
      { target: target('127.0.0.1'), reason: 'loopback address' },
      { target: target('not-an-ip'), reason: 'not an IP address' },
    ]);
    expect(refused[0]!.target).toBe(refusedTarget);
  });
});

describe('TargetSet', () => {
  it('counts added, removed and changed targets; unchanged and changed ones keep their state', () => {
    const { set, events, states } = setup();
    expect(set.set([target('10.0.0.1'), target('10.0.0.2'), target('10.0.0.3')])).toEqual({ added: 3, removed: 0, changed: 0, refused: [] });
    const before = states();
    events.length = 0;
    const diff = set.set([target('10.0.0.1'), target('10.0.0.2', ['ns/svc', 'ns/other']), target('10.0.0.4'), target('192.0.2.1')]);
    expect(diff).toEqual({ added: 1, removed: 1, changed: 1, refused: ['192.0.2.1'] });
    // Refusals first, then removals, then additions.
    expect(events).toEqual(['refused 192.0.2.1 (outside allowCidrs)', 'removed 10.0.0.3 stopped', 'added 10.0.0.4']);
    const after = states();
    expect([...after.keys()]).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.4']);
    expect(after.get('10.0.0.1')).toBe(before.get('10.0.0.1'));
    expect(after.get('10.0.0.2')).toBe(before.get('10.0.0.2'));
    expect(after.get('10.0.0.2')!.target.owners).toEqual(['ns/other', 'ns/svc']);
    expect(before.get('10.0.0.3')!.stopped).toBe(true);
    expect(set.size).toBe(3);
    expect([...set.addresses()]).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.4']);
  });

  it('counts a reordered or repeated input as no change', () => {
    const { set } = setup();
    set.set([target('10.0.0.1', ['ns/a', 'ns/b'], [80, 443])]);
    expect(set.set([target('10.0.0.1', ['ns/b'], [443]), target('10.0.0.1', ['ns/a'], [80, 443])])).toEqual({ added: 0, removed: 0, changed: 0, refused: [] });
  });

  it('reports a refused address once while it stays in the input, and again after it left and came back', () => {
    const { set, events } = setup();
    const refused = [target('10.0.0.1'), target('192.0.2.1'), target('192.0.2.1', ['ns/other'])];
    expect(set.set(refused).refused).toEqual(['192.0.2.1', '192.0.2.1']);
    set.set(refused);
    set.set([target('10.0.0.1')]);
    set.set(refused);
    expect(events.filter((event) => event.startsWith('refused'))).toEqual(['refused 192.0.2.1 (outside allowCidrs)', 'refused 192.0.2.1 (outside allowCidrs)']);
  });

  it('applies the last input again under a new allow-list', () => {
    const { set, states } = setup();
    set.set([target('10.0.0.1', ['ns/b'], [443]), target('10.0.0.1', ['ns/a']), target('192.168.0.1'), target('10.1.0.1')]);
    set.allowList = parseAllowList(['10.0.0.0/16', '192.168.0.0/16']);
    expect(set.reapply()).toEqual({ added: 1, removed: 1, changed: 0, refused: ['10.1.0.1'] });
    expect(Array.from(states().values(), (state) => state.target)).toEqual([
      { address: '10.0.0.1', owners: ['ns/a', 'ns/b'], ports: [80, 443] },
      { address: '192.168.0.1', owners: ['ns/svc'], ports: [80] },
    ]);
  });
});
