import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { InformerMetrics, type TrackedInformer } from '../../src/kube/informer-metrics.js';
import { EventLoopLag } from '../../src/liveness.js';

describe('EventLoopLag', () => {
  function withClock(): { lag: EventLoopLag; advance: (ms: number) => void } {
    let now = 0;
    return { lag: new EventLoopLag(500, () => now), advance: (ms) => (now += ms) };
  }

  it('passes while ticks come on time', () => {
    const { lag, advance } = withClock();
    for (let i = 0; i < 10; i++) {
      advance(510);
      lag.tick();
    }
    expect(lag.lagMs()).toBe(10);
    expect(lag.check(5_000)).toBeUndefined();
  });

  it('fails after a tick more than the limit late, and recovers with the next tick on time', () => {
    const { lag, advance } = withClock();
    advance(500 + 6_000);
    lag.tick();
    expect(lag.check(5_000)).toBe('event loop stalled: timers 6000 ms late (limit 5000 ms)');
    advance(500);
    lag.tick();
    expect(lag.check(5_000)).toBeUndefined();
  });

  it('counts a tick that is overdue right now', () => {
    const { lag, advance } = withClock();
    advance(500);
    lag.tick();
    advance(500 + 5_001);
    expect(lag.check(5_000)).toBe('event loop stalled: timers 5001 ms late (limit 5000 ms)');
  });
});

describe('InformerMetrics.deadWatch', () => {
  function informer(resource: string, unansweredForMs: number, lastFailure?: string): TrackedInformer {
    return { resource, size: () => 0, lastActivityAgeMs: () => 0, unansweredForMs: () => unansweredForMs, lastFailure: () => lastFailure };
  }

  it('passes while every watch got an answer within the limit', () => {
    const metrics = new InformerMetrics(new Registry());
    metrics.track(informer('configmaps', 0));
    metrics.track(informer('endpointslices', 300_000));
    expect(metrics.deadWatch(300_000)).toBeUndefined();
  });

  it('names the first watch past the limit and its last error', () => {
    const metrics = new InformerMetrics(new Registry());
    metrics.track(informer('configmaps', 0));
    metrics.track(informer('serviceimports', 300_001, 'the apiserver does not serve /apis/x (404 Not Found)'));
    expect(metrics.deadWatch(300_000)).toBe(
      'watch of serviceimports without an answer from the apiserver for 300s (limit 300s); last error: the apiserver does not serve /apis/x (404 Not Found)',
    );
  });

  it('forgets a stopped informer', () => {
    const metrics = new InformerMetrics(new Registry());
    const dead = informer('serviceimports', 400_000);
    metrics.track(dead);
    metrics.untrack(dead);
    expect(metrics.deadWatch(300_000)).toBeUndefined();
  });
});
