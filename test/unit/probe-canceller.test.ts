import { describe, expect, it } from 'vitest';
import { ProbeCanceller } from '../../src/probe/tcp.js';

/** Whether `promise` has settled once the microtasks queued so far have run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('ProbeCanceller', () => {
  it('tells when the last probe in flight is gone, at once when none is', async () => {
    const canceller = new ProbeCanceller();
    expect(await settled(canceller.whenEmpty())).toBe(true);
    const [a, b] = [(): void => undefined, (): void => undefined];
    canceller.add(a);
    canceller.add(b);
    const empty = canceller.whenEmpty();
    expect(canceller.whenEmpty()).toBe(empty);
    canceller.delete(a);
    expect(await settled(empty)).toBe(false);
    canceller.delete(b);
    expect(await settled(empty)).toBe(true);
  });

  it('cancels every probe in flight once, and is then empty', async () => {
    const canceller = new ProbeCanceller();
    const cancelled: string[] = [];
    // A probe deletes itself when cancelled, as tcpConnect does; one that does not is dropped all the same.
    const a = (): void => {
      cancelled.push('a');
      canceller.delete(a);
    };
    canceller.add(a);
    canceller.add(() => cancelled.push('b'));
    const empty = canceller.whenEmpty();
    canceller.cancelAll();
    canceller.cancelAll();
    expect(cancelled).toEqual(['a', 'b']);
    expect(await settled(empty)).toBe(true);
  });
});
