export type Protocol = 'tcp' | 'icmp';

/**
 * What one probe saw. `refused`: the host answered with a TCP RST. `failure`: the network said no
 * (ICMP unreachable, EHOSTUNREACH...). `error`: the probe could not be run here (EMFILE, EPERM...),
 * which says nothing about the target.
 */
export type ProbeResult = 'success' | 'refused' | 'failure' | 'timeout' | 'error';

export interface ProbeOutcome {
  protocol: Protocol;
  result: ProbeResult;
  durationMs: number;
  /** errno code or message, when the result is not a success. */
  error?: string;
}

/** A timeout decided after this many times its planned duration is counted as a local error. */
const LATE_VERDICT_FACTOR = 2;

/**
 * What a timeout after `elapsedMs` means. Reached far later than planned, it says that the event loop
 * was starved, not that the target is gone: an error (never a failure), so that an overloaded agent
 * cannot prune healthy endpoints (found by the 5,000-ServiceImport benchmark).
 */
export function timeoutResult(elapsedMs: number, timeoutMs: number): { result: ProbeResult; error: string } {
  return elapsedMs > timeoutMs * LATE_VERDICT_FACTOR ? { result: 'error', error: 'ELOOPLAG' } : { result: 'timeout', error: 'ETIMEDOUT' };
}

/** What one probe means for the target's hysteresis; errors are dropped, not counted as failures. */
export type ProbeVerdict = 'success' | 'failure' | 'error';

export function verdictOf(result: ProbeResult, refusedIsReachable: boolean): ProbeVerdict {
  switch (result) {
    case 'success':
      return 'success';
    case 'refused':
      return refusedIsReachable ? 'success' : 'failure';
    case 'failure':
    case 'timeout':
      return 'failure';
    case 'error':
      return 'error';
  }
}

const answersIfRefusedCounts = (result: ProbeResult): boolean => verdictOf(result, true) === 'success';
const answersIfRefusedFails = (result: ProbeResult): boolean => verdictOf(result, false) === 'success';

/** Whether a result settles a multi-port TCP probe (its other ports are then abandoned); one function per setting, made once. */
export function answersProbe(refusedIsReachable: boolean): (result: ProbeResult) => boolean {
  return refusedIsReachable ? answersIfRefusedCounts : answersIfRefusedFails;
}

/** Stronger evidence first: any answer beats any silence, and a real failure beats a local error. */
const RESULT_STRENGTH: readonly ProbeResult[] = ['success', 'refused', 'failure', 'timeout', 'error'];

/** The result of probing several ports (or protocols) of one target: the strongest evidence wins. */
export function strongestResult(results: readonly ProbeResult[]): ProbeResult {
  let best = RESULT_STRENGTH.length - 1;
  for (const result of results) best = Math.min(best, RESULT_STRENGTH.indexOf(result));
  return RESULT_STRENGTH[best]!;
}

/** The round-trip time of a probe: the quickest answer that counts as reachable, if any answered. */
export function answeredRttMs(outcomes: readonly ProbeOutcome[], refusedIsReachable: boolean): number | undefined {
  let rttMs: number | undefined;
  for (const { result, durationMs } of outcomes) {
    if (verdictOf(result, refusedIsReachable) === 'success' && (rttMs === undefined || durationMs < rttMs)) rttMs = durationMs;
  }
  return rttMs;
}

/**
 * One verdict from the outcomes of a probe's protocols (two in mode `both`): reachable if either
 * succeeds, since a false "unreachable" prunes a live endpoint. No arrays: it runs for every probe.
 */
export function verdictOfOutcomes(outcomes: readonly { result: ProbeResult }[], refusedIsReachable: boolean): ProbeVerdict {
  let verdict: ProbeVerdict = 'error';
  for (const { result } of outcomes) {
    const each = verdictOf(result, refusedIsReachable);
    if (each === 'success') return 'success';
    if (each === 'failure') verdict = 'failure';
  }
  return verdict;
}
