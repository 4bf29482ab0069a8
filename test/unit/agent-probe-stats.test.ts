import { describe, expect, it } from 'vitest';
import { ProbeStatsMeter } from '../../src/agent/probe-stats.js';

describe('ProbeStatsMeter', () => {
  it('has nothing to say at its first sample', () => {
    expect(new ProbeStatsMeter().sample({ started: 10, latenessMs: 50 }, 1000)).toBeUndefined();
  });

  it('gives the rate and mean lateness between two samples', () => {
    const meter = new ProbeStatsMeter();
    meter.sample({ started: 10, latenessMs: 50 }, 1000);
    expect(meter.sample({ started: 310, latenessMs: 650 }, 31_000)).toEqual({ probesPerSecond: 10, meanLatenessMs: 2 });
  });

  it('says 0 ms late when no probe started, and measures each interval from the previous sample', () => {
    const meter = new ProbeStatsMeter();
    meter.sample({ started: 0, latenessMs: 0 }, 0);
    expect(meter.sample({ started: 0, latenessMs: 0 }, 5000)).toEqual({ probesPerSecond: 0, meanLatenessMs: 0 });
    expect(meter.sample({ started: 3, latenessMs: 30 }, 6000)).toEqual({ probesPerSecond: 3, meanLatenessMs: 10 });
  });
});
