import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { writeWithRetry, type WriteHooks } from '../../src/kube/write-policy.js';

const POLICY = { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 250 };

function apiError(code: number): ApiException<string> {
  return new ApiException(code, `HTTP ${code}`, '{}', {});
}

/** A request answering with `answers` in turn (undefined: success), and hooks that record what happened. */
function scenario(answers: Array<number | Error | undefined>, hooks: Partial<WriteHooks> = {}) {
  const sent: number[] = [];
  const slept: number[] = [];
  const attempts: string[] = [];
  const failed: number[] = [];
  const request = async (): Promise<void> => {
    sent.push(sent.length + 1);
    const answer = answers[sent.length - 1];
    if (typeof answer === 'number') throw apiError(answer);
    if (answer instanceof Error) throw answer;
  };
  const run = () =>
    writeWithRetry(request, {
      isLeader: () => true,
      onAttempt: (result) => attempts.push(result),
      onFailed: (_err, attempt) => failed.push(attempt),
      sleep: async (ms) => {
        slept.push(ms);
      },
      ...hooks,
    }, POLICY);
  return { run, sent, slept, attempts, failed };
}

describe('writeWithRetry', () => {
  it.each([
    { name: 'writes at once', answers: [undefined], outcome: 'written', attempts: ['success'], slept: [] },
    { name: 'gives up on a gone object (404) without retrying', answers: [404], outcome: 'gone', attempts: ['gone'], slept: [] },
    { name: 'never retries a refusal (403)', answers: [403], outcome: 'failed', attempts: ['error'], slept: [] },
    { name: 'retries 429 and 5xx with doubling backoff, capped', answers: [429, 503, 500, undefined], outcome: 'written', attempts: ['error', 'error', 'error', 'success'], slept: [100, 200, 250] },
    { name: 'retries an unanswered request', answers: [new Error('socket hang up'), undefined], outcome: 'written', attempts: ['error', 'success'], slept: [100] },
    { name: 'retries a conflict the caller does not handle', answers: [409, undefined], outcome: 'written', attempts: ['error', 'success'], slept: [100] },
    { name: 'stops after the last attempt', answers: [500, 500, 500, 500, undefined], outcome: 'failed', attempts: ['error', 'error', 'error', 'error'], slept: [100, 200, 250] },
  ])('$name', async ({ answers, outcome, attempts, slept }) => {
    const s = scenario(answers);
    expect(await s.run()).toBe(outcome);
    expect(s.attempts).toEqual(attempts);
    expect(s.slept).toEqual(slept);
    expect(s.failed).toEqual(outcome === 'failed' ? [attempts.length] : []);
  });

  it('hands a conflict to a caller that re-reads and recomputes', async () => {
    const s = scenario([409], { callerHandlesConflict: true });
    expect(await s.run()).toBe('conflict');
    expect(s.attempts).toEqual(['conflict']);
  });

  it('sends nothing when not leading', async () => {
    const s = scenario([undefined], { isLeader: () => false });
    expect(await s.run()).toBe('not-leader');
    expect(s.sent).toEqual([]);
  });

  it('stops retrying once leadership is lost between attempts (fencing)', async () => {
    let leading = true;
    const s = scenario([503, undefined], {
      isLeader: () => leading,
      sleep: async () => {
        leading = false;
      },
    });
    expect(await s.run()).toBe('not-leader');
    expect(s.sent).toEqual([1]);
  });
});
