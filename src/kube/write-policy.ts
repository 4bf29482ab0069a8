// How the controller writes: only while leading (checked before every attempt, so a replica that
// lost its Lease never writes again), retried with backoff on what may pass (no answer, 409 when
// the caller does not handle conflicts itself, 429, 5xx), never on what will not (other 4xx).
import { statusCodeOf } from './resources.js';

/** What became of a write. */
export type WriteOutcome =
  /** The apiserver accepted it. */
  | 'written'
  /** The object is gone (404): nothing to write to. */
  | 'gone'
  /** 409, returned to a caller that re-reads and recomputes. */
  | 'conflict'
  /** Not leading (any more): not sent. */
  | 'not-leader'
  /** Refused, or still failing after the last attempt; the next pass tries again. */
  | 'failed';

export interface WritePolicy {
  maxAttempts: number;
  /** Backoff before the 2nd attempt; doubles up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_WRITE_POLICY: Readonly<WritePolicy> = Object.freeze({ maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2000 });

export interface WriteHooks {
  isLeader(): boolean;
  /** 409 is the caller's to handle (optimistic concurrency on a resourceVersion). */
  callerHandlesConflict?: boolean;
  /** Each attempt's result, for a metric: success, gone, conflict or error. */
  onAttempt?(result: 'success' | 'gone' | 'conflict' | 'error'): void;
  /** The write gave up on an error. */
  onFailed?(err: unknown, attempt: number): void;
  sleep?(ms: number): Promise<void>;
}

export async function writeWithRetry(request: () => Promise<unknown>, hooks: WriteHooks, policy: WritePolicy = DEFAULT_WRITE_POLICY): Promise<WriteOutcome> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let delay = policy.initialDelayMs;
  for (let attempt = 1; ; attempt++) {
    if (!hooks.isLeader()) return 'not-leader';
    try {
      await request();
      hooks.onAttempt?.('success');
      return 'written';
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 404) {
        hooks.onAttempt?.('gone');
        return 'gone';
      }
      if (code === 409 && hooks.callerHandlesConflict) {
        hooks.onAttempt?.('conflict');
        return 'conflict';
      }
      hooks.onAttempt?.('error');
      const mayPass = code === undefined || code === 409 || code === 429 || code >= 500;
      if (!mayPass || attempt >= policy.maxAttempts) {
        hooks.onFailed?.(err, attempt);
        return 'failed';
      }
      await sleep(delay);
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}
