// Round-trip times in the ProbeReport, for people (the status page), never for votes. Bounded: a
// node lists at most MAX_REPORTED_RTTS targets, the slowest when it has more (the ones worth a look),
// so a report stays small at 100k targets. They ride along with writes that happen anyway (a change
// or a heartbeat): an RTT that moves never causes a write by itself. Pure.
import type { TargetRtt } from '../contract/probe-report.js';

/** Targets a report gives an RTT for at the most. */
export const MAX_REPORTED_RTTS = 128;

/**
 * The RTTs to publish: targets answered by their last probe, the slowest `limit` when there are
 * more, sorted by address, rounded to 0.01 ms. Undefined when there is none.
 */
export function reportedRtts(targets: Iterable<{ address: string; lastRttMs?: number }>, limit = MAX_REPORTED_RTTS): TargetRtt[] | undefined {
  let measured: TargetRtt[] = [];
  for (const { address, lastRttMs } of targets) {
    if (lastRttMs !== undefined) measured.push({ address, rttMs: Math.round(lastRttMs * 100) / 100 });
  }
  if (measured.length === 0) return undefined;
  if (measured.length > limit) measured = measured.sort((a, b) => b.rttMs - a.rttMs).slice(0, limit);
  return measured.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
