// Round-trip times in the ProbeReport, for people (the status page), never for votes. Bounded: a
// node lists at most MAX_REPORTED_RTTS targets, the slowest when it has more (the ones worth a look),
// so a report stays small at 100k targets. They ride along with writes that happen anyway (a change
// or a heartbeat): an RTT that moves never causes a write by itself. Pure.
import type { TargetRtt } from '../contract/probe-report.js';

/** Targets a report gives an RTT for at the most. */
export const MAX_REPORTED_RTTS = 128;

/**
 * The RTTs to publish: targets answered by their last probe, the slowest `limit` when there are
 * more, sorted by address, rounded to 0.01 ms. Undefined when there is none. One pass over the
 * targets keeps the slowest in a min-heap of `limit` entries, so 100k targets cost no sort and no
 * object each.
 */
export function reportedRtts(targets: Iterable<{ address: string; lastRttMs?: number }>, limit = MAX_REPORTED_RTTS): TargetRtt[] | undefined {
  const slowest: TargetRtt[] = [];
  for (const { address, lastRttMs } of targets) {
    if (lastRttMs === undefined) continue;
    const rttMs = Math.round(lastRttMs * 100) / 100;
    if (slowest.length < limit) {
      slowest.push({ address, rttMs });
      siftUp(slowest, slowest.length - 1);
    } else if (limit > 0 && rttMs > slowest[0]!.rttMs) {
      slowest[0] = { address, rttMs };
      siftDown(slowest, 0);
    }
  }
  if (slowest.length === 0) return undefined;
  return slowest.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/** Min-heap by rttMs: the fastest kept RTT at the root, the first to give way. */
function siftUp(heap: TargetRtt[], index: number): void {
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (heap[parent]!.rttMs <= heap[index]!.rttMs) return;
    [heap[parent], heap[index]] = [heap[index]!, heap[parent]!];
    index = parent;
  }
}

function siftDown(heap: TargetRtt[], index: number): void {
  for (;;) {
    const left = 2 * index + 1;
    const right = left + 1;
    let smallest = index;
    if (left < heap.length && heap[left]!.rttMs < heap[smallest]!.rttMs) smallest = left;
    if (right < heap.length && heap[right]!.rttMs < heap[smallest]!.rttMs) smallest = right;
    if (smallest === index) return;
    [heap[smallest], heap[index]] = [heap[index]!, heap[smallest]!];
    index = smallest;
  }
}
