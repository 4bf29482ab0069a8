import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { desiredSlice, prunedAddresses } from '../../src/report/prune.js';
import { disconnectedArb, kosmosPrune, roundTrip, sliceArb } from './fixtures.js';

const stepsArb = fc.array(disconnectedArb, { maxLength: 6 });

describe('desiredSlice properties', () => {
  it('gives back the original slice exactly after any sequence of sets and a final empty set', () => {
    fc.assert(
      fc.property(sliceArb, stepsArb, (original, steps) => {
        let slice = roundTrip(original);
        for (const step of [...steps, new Set<string>()]) slice = roundTrip(desiredSlice(slice, step).slice);
        expect(slice).toEqual(original);
        expect(JSON.stringify(slice)).toBe(JSON.stringify(original));
      }),
    );
  });

  it('holds exactly the endpoints of Kosmos’ rule applied to the original after every step', () => {
    fc.assert(
      fc.property(sliceArb, stepsArb, (original, steps) => {
        let slice = roundTrip(original);
        for (const step of steps) {
          slice = roundTrip(desiredSlice(slice, step).slice);
          expect(slice.endpoints).toEqual(kosmosPrune(original.endpoints!, step));
        }
      }),
    );
  });

  it('agrees with a Kosmos re-sync that wiped its record, so the two never fight', () => {
    fc.assert(
      fc.property(sliceArb, stepsArb, disconnectedArb, (original, steps, last) => {
        let slice = roundTrip(original);
        for (const step of steps) slice = roundTrip(desiredSlice(slice, step).slice);
        const ours = roundTrip(desiredSlice(slice, last).slice);
        const resynced = { ...roundTrip(original), endpoints: kosmosPrune(original.endpoints!, last) };
        expect(ours.endpoints).toEqual(resynced.endpoints);
        expect(desiredSlice(resynced, last).changed).toBe(false);
      }),
    );
  });

  it('keeps every pruned address probed: current plus recorded addresses cover the original', () => {
    fc.assert(
      fc.property(sliceArb, stepsArb, (original, steps) => {
        let slice = roundTrip(original);
        for (const step of steps) slice = roundTrip(desiredSlice(slice, step).slice);
        const covered = new Set([...slice.endpoints!.flatMap((e) => e.addresses), ...prunedAddresses(slice)]);
        expect(covered).toEqual(new Set(original.endpoints!.flatMap((e) => e.addresses)));
      }),
    );
  });

  it('reports as changed exactly when the written slice differs from the current one', () => {
    fc.assert(
      fc.property(sliceArb, stepsArb, disconnectedArb, (original, steps, next) => {
        let slice = roundTrip(original);
        for (const step of steps) slice = roundTrip(desiredSlice(slice, step).slice);
        const result = desiredSlice(slice, next);
        expect(result.changed).toBe(JSON.stringify(result.slice) !== JSON.stringify(slice));
      }),
    );
  });
});
